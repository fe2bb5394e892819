package world

import (
	"maps"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// A tally counts by the same keys as the store: every kind, status and
// try has its own index, and the delta names it by its jobs.CountKey.
func TestTallyCountsByCountKey(t *testing.T) {
	var tl tally
	want := map[string]int64{}
	for _, k := range []jobs.Kind{jobs.Build, jobs.Bridge} {
		for n, st := range jobs.Statuses {
			for _, retried := range []bool{false, true} {
				j := &jobs.Job{Kind: k, Status: st, Retried: retried}
				key := jobs.CountKey(k, st, retried)
				if got := countKeys[countIndex(j)]; got != key {
					t.Fatalf("%s at index %d, want %s", got, countIndex(j), key)
				}
				for range n + 1 { // every count different
					tl.add(countIndex(j))
					want[key]++
				}
			}
		}
	}
	if got := tl.delta(); !maps.Equal(got, want) {
		t.Errorf("delta %v, want %v", got, want)
	}
	if len(tl) != len(countKeys) || len(countKeys) != 4*len(jobs.Statuses) {
		t.Errorf("%d counts of %d keys, want one per key, %d", len(tl), len(countKeys), 4*len(jobs.Statuses))
	}
	if (tally{}).delta() != nil {
		t.Error("an empty tally is a delta")
	}
}
