package store

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// A queued request holds the retried job once: the transition's two jobs
// are what they change of it, and no copy holds index keys. Decoded, it is
// the placing that was queued.
func TestRequestHoldsTheRetriedJobOnce(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	size, cov, dur := int64(4096), 87.5, 61.2
	cur := &jobs.Job{ID: 9001, ProjectID: 1, PipelineID: 70, Kind: jobs.Build, Status: jobs.Failed, Stage: "test",
		Name: "rspec 3/4", Ref: "feature/login", Coverage: &cov, CreatedAt: now.Add(-time.Hour), QueuedAt: at(-59 * time.Minute),
		StartedAt: at(-58 * time.Minute), FinishedAt: at(-57 * time.Minute), Duration: &dur, UserID: 3, RunnerID: 12,
		RunnerManager: []byte(`{"id":4,"system_id":"s_0e6850b2bce1","version":"17.5.0"}`), FailureReason: "script_failure",
		Artifacts: []jobs.Artifact{{FileType: "archive", Size: &size, Filename: "artifacts.zip", FileFormat: "zip"}},
		TagList:   []string{"docker", "linux"}, Environment: []byte(`{"name":"review/login","action":"start"}`),
		Variables: []jobs.Variable{{Key: "SUITE", Value: "3"}}, Extra: []byte(`{"custom":true}`),
		HasTrace: true, TraceSize: 18000, Ordinal: 40, RefOrdinal: 7, Version: 5}
	tr, err := jobs.Retry(2, now)(cur)
	if err != nil {
		t.Fatal(err)
	}
	tr.Created.ID, tr.Created.Ordinal, tr.Created.RefOrdinal = 9100, 90, 12
	once := Once{Key: "key-1", At: now, Expires: now.Add(time.Hour)}
	r := &request{key: requestKey(1, "token-1", now), b: placing{cur, tr, "token-1", once}, deadline: now.Add(9 * time.Second)}
	it, err := requestItem(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cur", "jd", "nd"} {
		m := it[name].(*types.AttributeValueMemberM).Value
		for _, n := range indexOnlyAttrs {
			if _, ok := m[n]; ok {
				t.Errorf("%s holds the index key %s", name, n)
			}
		}
	}
	if jd := it["jd"].(*types.AttributeValueMemberM).Value; len(jd) != 1 || jd["rt"] == nil {
		t.Errorf("the retried job's changes: %v, want rt", slices.Sorted(maps.Keys(jd)))
	}
	if nd := it["nd"].(*types.AttributeValueMemberM).Value; nd["env"] != nil || nd["var"] != nil || nd["x"] != nil {
		t.Errorf("the new job's changes hold what it copies: %v", slices.Sorted(maps.Keys(nd)))
	}
	got, err := decodeRequest(it)
	if err != nil {
		t.Fatal(err)
	}
	if got.b.token != r.b.token || got.b.once.Key != once.Key || !got.b.once.At.Equal(once.At) || !got.b.once.Expires.Equal(once.Expires) || !got.deadline.Equal(r.deadline) || keyString(got.key) != keyString(r.key) {
		t.Errorf("decoded %+v, want %+v", got, r)
	}
	for name, pair := range map[string][2]*jobs.Job{"cur": {got.b.cur, cur}, "job": {got.b.t.Job, tr.Job}, "new": {got.b.t.Created, tr.Created}} {
		a, errA := jobItem(pair[0], 4)
		b, errB := jobItem(pair[1], 4)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s decoded as %+v, want %+v (%v %v)", name, pair[0], pair[1], errA, errB)
		}
	}
}
