package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// BatchWriteItem cannot be conditional, so an import writes the fresh jobs
// whose ids may sit leased and unused (at or below what RaiseJobCounter
// answered) one conditional PutItem each: a job an action created with
// such an id after the import checked it stays as it is and the import
// fails naming it; a job only imported there before (a crash's) is
// replaced as a batch put would; a whole import below the counter writes
// its jobs so.
func TestImportLeavesJobsActionsCreated(t *testing.T) {
	env := testenv.New(t)
	st, ctx := env.Deps.Store, context.Background()
	w := demo.Seed(20)
	im := &world.Importer{Store: st, Files: env.Files, Now: time.Now}
	if _, err := im.Import(ctx, w); err != nil {
		t.Fatal(err)
	}
	f, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: demo.ProjectBackend}})
	if err != nil || f.Project == nil {
		t.Fatal(err)
	}
	p := f.Project
	failed, err := st.ProjectBuilds(ctx, p, store.Range{Statuses: []jobs.Status{jobs.Failed}, Limit: 2, Whole: true})
	if err != nil || len(failed.Jobs) < 2 {
		t.Fatalf("failed builds %v: %v", failed, err)
	}
	created, err := st.Apply(ctx, p, failed.Jobs[0], jobs.Retry(1, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	leased, err := st.RaiseJobCounter(ctx, created.ID+1000)
	if err != nil || leased < created.ID {
		t.Fatalf("leased up to %d (%v), want at least the created job's id %d", leased, err, created.ID)
	}

	clash := *created
	clash.Name, clash.Status = "imported over a created job", jobs.Success
	wr := st.NewWriter(ctx, leased)
	if err := wr.PutJob(&clash, 1); err != nil {
		t.Fatal(err)
	}
	if err := wr.Wait(); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("writing an imported job over a created one: %v, want ErrConflict", err)
	}
	again := *failed.Jobs[1]
	again.Name = "imported again"
	wr = st.NewWriter(ctx, leased)
	env.Counter.Reset()
	if err := wr.PutJob(&again, 1); err != nil {
		t.Fatal(err)
	}
	if err := wr.Wait(); err != nil {
		t.Fatalf("writing an imported job over an imported one: %v", err)
	}
	if n := env.Counter.Calls()["PutItem"]; n != 1 || env.Counter.Calls()["BatchWriteItem"] != 0 {
		t.Errorf("calls %v, want one PutItem", env.Counter.Calls())
	}
	for id, want := range map[int64]string{created.ID: created.Name, again.ID: "imported again"} {
		got, err := st.Lookup(ctx, store.Lookup{JobID: id})
		if err != nil || got.Job == nil || got.Job.Name != want {
			t.Errorf("job %d: %+v, %v; want named %q", id, got.Job, err, want)
		}
	}

	// A document of jobs below the counter: each its own PutItem, all written.
	var doc map[string]any
	if err := json.Unmarshal(w.Jobs[0], &doc); err != nil {
		t.Fatal(err)
	}
	w.Jobs = nil
	for _, id := range []int64{created.ID + 100, created.ID + 101, created.ID + 102} {
		doc["id"] = id
		b, _ := json.Marshal(doc)
		w.Jobs = append(w.Jobs, b)
	}
	env.Counter.Reset()
	sum, err := im.Import(ctx, w)
	if err != nil || sum.NewJobs != 3 {
		t.Fatalf("import below the counter: %+v, %v", sum, err)
	}
	if n := env.Counter.Calls()["PutItem"]; n < 3 {
		t.Errorf("%d PutItems for 3 jobs below the counter, want one each", n)
	}
	for _, id := range []int64{created.ID + 100, created.ID + 102} {
		if got, err := st.Lookup(ctx, store.Lookup{JobID: id}); err != nil || got.Job == nil {
			t.Errorf("job %d not imported: %v", id, err)
		}
	}
}
