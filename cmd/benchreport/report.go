package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// results are a benchmark run's metrics: benchmark name (without the
// GOMAXPROCS suffix) → unit → one value per -count repetition.
type results map[string]map[string][]float64

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads `go test -bench` output; lines that are no benchmark
// result (package headers, PASS, logs) are skipped.
func parseBench(r io.Reader) (results, error) {
	out := results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a log line that starts with a benchmark's name
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		if out[name] == nil {
			out[name] = map[string][]float64{}
		}
		for i := 2; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is no number", f[0], f[i])
			}
			out[name][f[i+1]] = append(out[name][f[i+1]], v)
		}
	}
	return out, sc.Err()
}

// median of a benchmark's unit over its repetitions, NaN when not measured.
func (r results) median(name, unit string) float64 {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return math.NaN()
	}
	sort.Float64s(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// request is one row of the report: a budget case of one function.
type request struct {
	function, name string
}

// requests are the cases BenchmarkReadEndpoints and BenchmarkHandlerCPU
// ran, named <function>/<request>, in name order.
func (r results) requests() []request {
	seen := map[request]bool{}
	var out []request
	for name := range r {
		parts := strings.Split(name, "/")
		if len(parts) < 3 || (parts[0] != "BenchmarkReadEndpoints" && parts[0] != "BenchmarkHandlerCPU") {
			continue
		}
		if q := (request{parts[1], parts[2]}); !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	slices.SortFunc(out, func(a, b request) int { return strings.Compare(a.function+"/"+a.name, b.function+"/"+b.name) })
	return out
}

// coldRatios reads cmd/lambdabench's table (make bench-coldstart):
// function → its "cold × hello" column.
func coldRatios(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	col := -1
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if i := slices.Index(cells, "cold × hello"); i >= 0 {
			col = i
			continue
		}
		if col >= 0 && col < len(cells) && !strings.HasPrefix(cells[0], "-") {
			out[cells[0]] = cells[col]
		}
	}
	return out, sc.Err()
}

// prices are AWS's us-east-1 list prices, in dollars.
type prices struct {
	httpAPI, lambdaRequest float64 // per request
	gbSecond               float64 // Lambda arm64 duration
	readUnit               float64 // DynamoDB on demand, per read request unit
}

var usEast1 = prices{httpAPI: 1.00e-6, lambdaRequest: 0.20e-6, gbSecond: 0.0000133334, readUnit: 0.125e-6}

// fullCPU is the memory size at which Lambda gives a function one whole
// vCPU; below it, CPU time stretches by fullCPU/memory.
const fullCPU = 1769

// model is how a request's duration on Lambda is estimated: each
// sequential round trip takes rtt ms in the region, the handler's CPU
// time (measured here, on one core) stretches with the memory size's CPU
// share, and Lambda bills whole milliseconds.
type model struct {
	rtt float64 // ms per sequential round trip
	p   prices
}

// billedMS is the billed duration of a request at memory MB.
func (m model) billedMS(trips, cpuMS float64, memory int) float64 {
	return math.Ceil(trips*m.rtt + cpuMS*max(1, float64(fullCPU)/float64(memory)))
}

// costPerMillion is what a million such requests cost: the gateway, the
// Lambda request and duration, and the read units.
func (m model) costPerMillion(trips, cpuMS, units float64, memory int) (total, duration, reads float64) {
	duration = m.billedMS(trips, cpuMS, memory) / 1000 * float64(memory) / 1024 * m.p.gbSecond * 1e6
	reads = units * m.p.readUnit * 1e6
	total = (m.p.httpAPI+m.p.lambdaRequest)*1e6 + duration + reads
	return total, duration, reads
}

func num(v float64, format string) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

// report writes the table of every request and the cost per million of
// each list page at the template's memory size and at others.
func report(w io.Writer, r results, cold map[string]string, memory map[string]int, m model, sizes []int) {
	fmt.Fprintln(w, "| function | request | trips | calls | items | RU | handler µs/op | handler CPU µs/op | allocs/op | marshal CPU µs/op | CPU ÷ marshal | page cache hit CPU µs/op | cold × hello |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, q := range r.requests() {
		store := "BenchmarkReadEndpoints/" + q.function + "/" + q.name
		cpu := "BenchmarkHandlerCPU/" + q.function + "/" + q.name
		handler, marshal := r.median(cpu+"/handler", "cpu-ns/op"), r.median(cpu+"/marshal", "cpu-ns/op")
		c := cold[q.function]
		if c == "" {
			c = "–"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", q.function, q.name,
			num(r.median(store, "trips/op"), "%.2f"), num(r.median(store, "calls/op"), "%.2f"),
			num(r.median(store, "items/op"), "%.0f"), num(r.median(store, "RU/op"), "%.2f"),
			num(r.median(cpu+"/handler", "ns/op")/1e3, "%.0f"), num(handler/1e3, "%.0f"),
			num(r.median(cpu+"/handler", "allocs/op"), "%.0f"), num(marshal/1e3, "%.0f"), num(handler/marshal, "%.2f×"),
			num(r.median(cpu+"/cached", "cpu-ns/op")/1e3, "%.0f"), c)
	}
	fmt.Fprintf(w, "\nCost per million requests (HTTP API $%.2f + Lambda requests $%.2f + arm64 duration + DynamoDB reads;\n",
		m.p.httpAPI*1e6, m.p.lambdaRequest*1e6)
	fmt.Fprintf(w, "duration = trips × %.1f ms + handler CPU × max(1, %d MB / memory), billed in whole ms):\n\n", m.rtt, fullCPU)
	fmt.Fprint(w, "| function | request | template MB |")
	for _, s := range sizes {
		fmt.Fprintf(w, " %d MB: ms, $ |", s)
	}
	fmt.Fprintln(w, " reads $ |")
	fmt.Fprint(w, "|---|---|--:|")
	for range sizes {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w, "--:|")
	for _, q := range r.requests() {
		if !strings.HasPrefix(q.function, "list-") {
			continue
		}
		trips := r.median("BenchmarkReadEndpoints/"+q.function+"/"+q.name, "trips/op")
		units := r.median("BenchmarkReadEndpoints/"+q.function+"/"+q.name, "RU/op")
		cpuMS := r.median("BenchmarkHandlerCPU/"+q.function+"/"+q.name+"/handler", "cpu-ns/op") / 1e6
		if math.IsNaN(trips + units + cpuMS) {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d |", q.function, q.name, memory[q.function])
		var reads float64
		for _, s := range sizes {
			var total float64
			total, _, reads = m.costPerMillion(trips, cpuMS, units, s)
			fmt.Fprintf(w, " %.0f, %.3f |", m.billedMS(trips, cpuMS, s), total)
		}
		fmt.Fprintf(w, " %.3f |\n", reads)
	}
}
