package heat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/heat"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// The model's arithmetic on synthetic records, no DynamoDB: units per
// item and request, index writes as DynamoDB maintains them, and the sums
// per partition key scaled by each kind's rate.
func TestModelArithmetic(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"eventually consistent read of 1 byte", heat.ReadUnits(1, false), 0.5},
		{"strongly consistent read of 4 KB", heat.ReadUnits(4096, true), 1},
		{"strongly consistent read of 4 KB + 1", heat.ReadUnits(4097, true), 2},
		{"missing item", heat.ReadUnits(0, true), 1},
		{"write of 1 KB", heat.WriteUnits(1024, false), 1},
		{"write of 1 KB + 1", heat.WriteUnits(1025, false), 2},
		{"transactional write of 1.5 KB", heat.WriteUnits(1536, true), 4},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v units, want %v", tc.name, tc.got, tc.want)
		}
	}

	schema := heat.Schema{PK: "PK", SK: "SK", GSIs: map[string]string{"G1": "G1PK", "G2": "G2PK"}}
	pad := s(strings.Repeat("x", 1500)) // makes the item 2 KB units
	old := map[string]types.AttributeValue{"PK": s("J#1"), "SK": s("J"), "G1PK": s("P#1#B"), "G2PK": s("P#1#B#running"), "d": pad}
	moved := map[string]types.AttributeValue{"PK": s("J#1"), "SK": s("J"), "G1PK": s("P#1#B"), "G2PK": s("P#1#B#success"), "d": pad}
	got := map[string]float64{}
	for _, tc := range schema.WriteTouches(old, moved, true) {
		got[tc.Index+" "+tc.Key] += tc.WCU
	}
	want := map[string]float64{" J#1": 4, "G1 P#1#B": 4, "G2 P#1#B#running": 4, "G2 P#1#B#success": 4}
	if len(got) != len(want) {
		t.Errorf("a status change touches %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("a status change: %q %v WCU, want %v (all %v)", k, got[k], v, got)
		}
	}
	if n := len(schema.WriteTouches(nil, map[string]types.AttributeValue{"PK": s("C"), "SK": s("C")}, false)); n != 1 {
		t.Errorf("an item without index keys touches %d partitions, want 1", n)
	}

	// Two kinds: 100 ops/s touching key A (2 WCU each) in one sample of
	// two, and 1,000 ops/s reading A (1 RCU) and B (0.5 RCU).
	a := heat.Call{Op: "PutItem", Touches: []heat.Touch{{Key: "A", WCU: 2}}}
	rows := heat.Heat([]heat.Kind{
		{Name: "w", Rate: 100, Samples: [][]heat.Call{{a}, {}}},
		{Name: "r", Rate: 1000, Samples: [][]heat.Call{{{Op: "Query", Touches: []heat.Touch{{Key: "A", RCU: 1}, {Index: "G1", Key: "B", RCU: 0.5}}}}}},
	})
	if len(rows) != 2 || rows[0].Key != "A" || rows[0].WCU != 100 || rows[0].RCU != 1000 ||
		rows[1].Where() != "G1" || rows[1].RCU != 500 || rows[1].WCU != 0 {
		t.Fatalf("rows %+v", rows)
	}
	if share := rows[0].Share(); share != 1000/heat.ReadLimit {
		t.Errorf("A's share %v, want the worse of 1000/3000 and 100/1000", share)
	}
	if rows[0].Over() || !(heat.Row{WCU: 801}).Over() || (heat.Row{RCU: 2400}).Over() {
		t.Error("the alarm is above 80% of a limit")
	}

	// Transactions per item: 100 ops/s naming A and B in one sample of
	// two and A alone in the other, and 30 ops/s naming B; a single write
	// holds nothing.
	items := heat.Serial([]heat.Kind{
		{Name: "t", Rate: 100, Samples: [][]heat.Call{
			{{Op: "TransactWriteItems", Items: []string{"A|a", "B|b"}}},
			{{Op: "TransactWriteItems", Items: []string{"A|a"}}, {Op: "PutItem", Touches: []heat.Touch{{Key: "C", WCU: 1}}}},
		}},
		{Name: "u", Rate: 30, Samples: [][]heat.Call{{{Op: "TransactWriteItems", Items: []string{"B|b"}}}}},
	})
	if len(items) != 2 || items[0].Key != "A|a" || items[0].TPS != 100 || items[1].Key != "B|b" || items[1].TPS != 80 ||
		items[1].By["t"] != 50 || items[1].By["u"] != 30 {
		t.Fatalf("items %+v", items)
	}
	if !items[0].Over() || items[1].Over() {
		t.Errorf("the alarm is above 80%% of %v transactions a second: %+v", heat.TxnLimit, items)
	}
}

// The default mix of issue 10 replayed through the real store and list
// handler on DynamoDB Local: every partition key must stay under 80% of
// its limit. Until the project's build index keys are sharded and job ids
// come without a hot counter (other branches), this fails: see
// BENCHMARKS.md "Partition heat (issue 10)" for which keys and by how much.
func TestDefaultMixUnderLimits(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	st, err := heat.NewStack(ctx, testenv.Config(t), env.DynamoURL, env.Table)
	if err != nil {
		t.Fatal(err)
	}
	r, err := heat.Replay(ctx, st, heat.DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	heat.Print(&out, r.Rows, 25)
	heat.PrintItems(&out, r.Items, 10)
	t.Logf("%d partition keys; job item %d bytes; warm cached page %v\n%s", len(r.Rows), r.JobItem, r.WarmPage, out.String())
	for _, row := range r.Rows {
		if row.Over() {
			t.Errorf("%s %s: %.0f RCU/s, %.0f WCU/s: %.0f%% of its limit (from %s)", row.Where(), row.Key,
				row.RCU, row.WCU, 100*row.Share(), strings.Join(keys(row.By), ", "))
		}
	}
	for _, k := range r.Kinds {
		for _, sample := range k.Samples {
			for _, c := range sample {
				if len(c.Touches) == 0 {
					t.Errorf("%s: a %s call the model does not know", k.Name, c.Op)
				}
			}
		}
	}
	for _, calls := range r.Kinds[2].Samples {
		if len(calls) != 0 {
			t.Errorf("a warm repeat of page 1 within the page TTL made %d calls, want 0", len(calls))
		}
	}
}

// The import alone, at issue 10's 10,000 jobs/s into one project: the
// model records it through the importer and finds the shards it needs
// (every imported build writes its GSI1 and GSI7 rows once: 10,000 / S
// units a second on each shard's key).
func TestImportNeedsItsShards(t *testing.T) {
	// The other kinds at rate 0, recorded on a world as small as it gets.
	m := heat.Mix{Pipelines: 1, CreationProjects: 1, CreationPipelines: 2, Callers: 2, ContainerRPS: 100, Samples: 1,
		HotShards: 1, CreationShards: 1, Imports: 10000, ImportJobs: 400, ImportPipelineJobs: 8}
	for _, tc := range []struct {
		shards  int
		hottest float64 // share of its limit
	}{{1, 10}, {8, 1.25}, {16, 0.625}} {
		t.Run(fmt.Sprintf("%d shards", tc.shards), func(t *testing.T) {
			env := testenv.New(t) // a table of its own: shards are set before a project's builds
			ctx := context.Background()
			st, err := heat.NewStack(ctx, testenv.Config(t), env.DynamoURL, env.Table)
			if err != nil {
				t.Fatal(err)
			}
			m.ImportShards = tc.shards
			r, err := heat.Replay(ctx, st, m)
			if err != nil {
				t.Fatal(err)
			}
			top := r.Rows[0]
			if top.Index != "GSI1" && top.Index != "GSI7" || !strings.HasPrefix(top.Key, "P#3#") || top.By["import of 400 jobs"] == 0 {
				t.Errorf("the hottest key is %s %s (from %v), want the import project's build index", top.Where(), top.Key, top.By)
			}
			if got := top.Share(); got < tc.hottest*0.99 || got > tc.hottest*1.01 {
				t.Errorf("the hottest key at %.1f%% of its limit, want %.1f%%", 100*got, 100*tc.hottest)
			}
		})
	}
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Keys with the same load from the same kinds print as one line.
func TestPrintFoldsAlikeKeys(t *testing.T) {
	by := map[string]float64{"w": 1}
	rows := []heat.Row{{Key: "A", WCU: 900, By: by}, {Key: "B", WCU: 900, By: by}, {Index: "G1", Key: "C", WCU: 900, By: by}, {Key: "D", WCU: 10, By: by}}
	var out strings.Builder
	heat.Print(&out, rows, 2)
	want := "| table | `A` and 1 alike | 0 | 0% | 900 | 90% **over 80%** | w |\n| G1 | `C` | 0 | 0% | 900 | 90% **over 80%** | w |\n"
	if got := out.String(); !strings.HasSuffix(got, want) || strings.Contains(got, "`D`") {
		t.Errorf("printed\n%s\nwant the lines\n%s", got, want)
	}
}
