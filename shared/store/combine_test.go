package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// A combiner's batch is cut to what one transaction takes: requests of as
// many pipelines and refs as requests share no item but the project's.
func TestCombinedBatchFitsOneTransaction(t *testing.T) {
	s := New(nil, "jobs")
	p := &jobs.Project{ID: 1, Builds: 100, MaxBuildID: 1000, IDsEnd: 2000, RefCounts: refsApart, Shards: 4}
	refs := map[string]refCount{}
	var batch []*request
	now := time.Now()
	for i := range combineBatch {
		ref := fmt.Sprintf("ref-%d", i)
		refs[ref] = refCount{n: 3, apart: true}
		cur := &jobs.Job{ID: int64(900 + i), ProjectID: 1, PipelineID: int64(50 + i), Kind: jobs.Build, Status: jobs.Failed, Ref: ref, Ordinal: int64(1 + i), RefOrdinal: 3, Version: 1}
		tr, err := jobs.Retry(2, now)(cur)
		if err != nil {
			t.Fatal(err)
		}
		once := Once{Key: fmt.Sprintf("key-%d", i), At: now, Expires: now.Add(time.Hour)}
		batch = append(batch, &request{key: requestKey(1, fmt.Sprintf("%032d", i), now), b: placing{cur, tr, fmt.Sprintf("%032d", i), once}})
	}
	c := &combiner{s: s, pid: 1, token: fmt.Sprintf("%032d", 0), placed: map[int64]bool{}}
	ops, _, head, err := c.fit(context.Background(), p, refs, batch, now)
	if err != nil {
		t.Fatal(err)
	}
	// Each request writes its two jobs, its record, its ref's count and
	// its pipeline's counts; the project item is shared.
	if want := (maxTransactItems - 1) / 5; len(head) != want || len(ops) != 5*want+1 {
		t.Errorf("%d requests in %d writes, want %d in %d", len(head), len(ops), want, 5*want+1)
	}
	for i, r := range head {
		if c := r.b.t.Created; c.ID != int64(1001+i) || c.Ordinal != int64(101+i) || c.RefOrdinal != 4 {
			t.Errorf("request %d creates id %d, ordinal %d, ref ordinal %d", i, c.ID, c.Ordinal, c.RefOrdinal)
		}
	}
}
