package heat

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DynamoDB's published limits per partition key, of the table or of a GSI.
const (
	ReadLimit  = 3000.0 // read units a second
	WriteLimit = 1000.0 // write units a second
	// Alarm is the share of a limit the heat test allows.
	Alarm = 0.8
	// TxnLimit is the transactions a second one item takes. DynamoDB
	// publishes none: a transaction holds each of its items from their
	// prepare to its commit and cancels any other that names one of them
	// meanwhile (TransactionConflict), so an item's transactions go one at
	// a time. The hold is taken as 10 ms, about a round trip inside the
	// region and a replicated write (an estimate).
	TxnLimit = 100.0
)

// Kind is one kind of operation of a mix: its recorded samples (each the
// calls one operation made) and how many a second the mix runs.
type Kind struct {
	Name    string
	Rate    float64 // operations a second
	Samples [][]Call
}

// Row is one partition key's load a second under a mix.
type Row struct {
	Index, Key string
	RCU, WCU   float64
	By         map[string]float64 // the share of the row's worst unit each kind brings, by kind
}

// Share is the row's load as a share of its limit: the worse of reads and writes.
func (r Row) Share() float64 { return max(r.RCU/ReadLimit, r.WCU/WriteLimit) }

// Over reports whether the row is above the alarm share of its limit.
func (r Row) Over() bool { return r.Share() > Alarm }

// Where names the row's partition: the table's or an index's.
func (r Row) Where() string { return cmp.Or(r.Index, "table") }

// Heat sums each kind's average touches per operation, times its rate, per
// partition key; rows come hottest first.
func Heat(kinds []Kind) []Row {
	type pk struct{ index, key string }
	rows := map[pk]*Row{}
	type contrib struct{ r, w float64 }
	by := map[pk]map[string]contrib{}
	for _, k := range kinds {
		if len(k.Samples) == 0 || k.Rate == 0 {
			continue
		}
		per := k.Rate / float64(len(k.Samples))
		for _, calls := range k.Samples {
			for _, c := range calls {
				for _, t := range c.Touches {
					p := pk{t.Index, t.Key}
					if rows[p] == nil {
						rows[p] = &Row{Index: t.Index, Key: t.Key, By: map[string]float64{}}
						by[p] = map[string]contrib{}
					}
					rows[p].RCU += t.RCU * per
					rows[p].WCU += t.WCU * per
					b := by[p][k.Name]
					b.r, b.w = b.r+t.RCU*per, b.w+t.WCU*per
					by[p][k.Name] = b
				}
			}
		}
	}
	out := make([]Row, 0, len(rows))
	for p, r := range rows {
		for name, b := range by[p] {
			r.By[name] = max(b.r/ReadLimit, b.w/WriteLimit)
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(b.Share(), a.Share()), cmp.Compare(a.Where(), b.Where()), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// ItemRow is one item's transactions a second under a mix.
type ItemRow struct {
	Key string             // the item's table key, "partition|sort"
	TPS float64            // transactions a second that name it
	By  map[string]float64 // of them, by kind
}

// Over reports whether the item takes more than the alarm share of TxnLimit.
func (r ItemRow) Over() bool { return r.TPS > Alarm*TxnLimit }

// Serial sums each kind's transactions per item, times its rate; rows come
// busiest first.
func Serial(kinds []Kind) []ItemRow {
	rows := map[string]*ItemRow{}
	for _, k := range kinds {
		if len(k.Samples) == 0 {
			continue
		}
		per := k.Rate / float64(len(k.Samples))
		for _, calls := range k.Samples {
			for _, c := range calls {
				for _, key := range c.Items {
					if rows[key] == nil {
						rows[key] = &ItemRow{Key: key, By: map[string]float64{}}
					}
					rows[key].TPS += per
					rows[key].By[k.Name] += per
				}
			}
		}
	}
	out := make([]ItemRow, 0, len(rows))
	for _, r := range rows {
		if r.TPS > 0 {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b ItemRow) int { return cmp.Or(cmp.Compare(b.TPS, a.TPS), cmp.Compare(a.Key, b.Key)) })
	return out
}

// PrintItems writes the busiest top items (all when top <= 0) against
// TxnLimit, alike neighbours on one line as Print does.
func PrintItems(w io.Writer, rows []ItemRow, top int) {
	fmt.Fprintf(w, "| item | transactions/s | of %.0f | from |\n|---|---:|---:|---|\n", TxnLimit)
	for lines := 0; len(rows) > 0 && (top <= 0 || lines < top); lines++ {
		r := rows[0]
		n := run(rows, func(a, b ItemRow) bool { return a.TPS == b.TPS && from(a.By) == from(b.By) })
		rows = rows[n:]
		mark := ""
		if r.Over() {
			mark = " **over 80%**"
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f%%%s | %s |\n", keyCell(r.Key, n), r.TPS, 100*r.TPS/TxnLimit, mark, from(r.By))
	}
}

// run is how many rows from the first are alike it, to print as one line.
func run[T any](rows []T, same func(a, b T) bool) int {
	n := 1
	for n < len(rows) && same(rows[0], rows[n]) {
		n++
	}
	return n
}

func keyCell(key string, alike int) string {
	if alike > 1 {
		return fmt.Sprintf("`%s` and %d alike", key, alike-1)
	}
	return "`" + key + "`"
}

// Print writes the hottest top lines (all when top <= 0) against the
// limits; keys next to each other with the same load from the same kinds
// (the same key of ten projects) are one line.
func Print(w io.Writer, rows []Row, top int) {
	fmt.Fprintf(w, "| where | partition key | RCU/s | of 3,000 | WCU/s | of 1,000 | from |\n|---|---|---:|---:|---:|---:|---|\n")
	for lines := 0; len(rows) > 0 && (top <= 0 || lines < top); lines++ {
		r := rows[0]
		n := run(rows, func(a, b Row) bool {
			return a.Where() == b.Where() && a.RCU == b.RCU && a.WCU == b.WCU && from(a.By) == from(b.By)
		})
		rows = rows[n:]
		mark := ""
		if r.Over() {
			mark = " **over 80%**"
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f%% | %.0f | %.0f%%%s | %s |\n", r.Where(), keyCell(r.Key, n),
			r.RCU, 100*r.RCU/ReadLimit, r.WCU, 100*r.WCU/WriteLimit, mark, from(r.By))
	}
}

// from names the kinds behind a row, biggest first.
func from(by map[string]float64) string {
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(by[b], by[a]), cmp.Compare(a, b)) })
	return strings.Join(names, ", ")
}

// PerOperation is a kind's average calls and units per operation, from its
// samples: what the model scales by the rate.
func PerOperation(k Kind) (calls map[string]float64, rcu, wcu, reported float64) {
	calls = map[string]float64{}
	n := float64(max(len(k.Samples), 1))
	for _, s := range k.Samples {
		for _, c := range s {
			calls[c.Op] += 1 / n
			reported += c.Reported / n
			for _, t := range c.Touches {
				rcu += t.RCU / n
				wcu += t.WCU / n
			}
		}
	}
	return calls, rcu, wcu, reported
}
