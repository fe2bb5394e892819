package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// A filtered page deeper than one Query's worth (here 25 rows) reads its
// partitions in step and answers what reading every partition whole and
// sorting gives, for several statuses, in 1 and 4 shards, at every depth
// up to past the end; and reads about the rows it passes over, not that
// many from every partition.
func TestDeepFilteredPagesReadInStep(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(300)
	w.Projects[0].Shards = 4 // demo/backend; demo/platform/frontend stays in 1
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	st, ctx := env.Deps.Store, context.Background()
	for _, pid := range []int64{demo.ProjectBackend, demo.ProjectFrontend} {
		f, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: pid}})
		if err != nil || f.Project == nil {
			t.Fatal(pid, err)
		}
		p := f.Project
		for _, statuses := range [][]jobs.Status{{jobs.Success, jobs.Failed}, {jobs.Success}, {jobs.Success, jobs.Failed, jobs.Canceled, jobs.Skipped}} {
			// The whole list, each partition read through in one Query.
			ref, err := st.ProjectBuilds(ctx, p, store.Range{Statuses: statuses, Limit: 900})
			if err != nil {
				t.Fatal(err)
			}
			all := ids(ref.Jobs)
			parts := len(statuses) * max(1, p.Shards)
			for _, r := range []store.Range{{Skip: 30, Limit: 20}, {Skip: 120, Limit: 20}, {Skip: 200, Limit: 100}, {Skip: len(all) - 10, Limit: 20}, {Skip: len(all) + 5, Limit: 20}} {
				t.Run(fmt.Sprintf("project %d %v skip %d", pid, statuses, r.Skip), func(t *testing.T) {
					store.SetQueryRows(t, 25)
					st.ForgetPages()
					env.Counter.Reset()
					r.Statuses = statuses
					pg, err := st.ProjectBuilds(ctx, p, r)
					if err != nil {
						t.Fatal(err)
					}
					want := all[min(r.Skip, len(all)):min(r.Skip+r.Limit, len(all))]
					if got := ids(pg.Jobs); !slices.Equal(got, want) || pg.More != (r.Skip+r.Limit < len(all)) {
						t.Fatalf("got %v more %v, want %v more %v", got, pg.More, want, r.Skip+r.Limit < len(all))
					}
					need := min(r.Skip+r.Limit+1, len(all))
					// What the last Query of each partition reads past the
					// page: at most one Query's worth.
					if rows := env.Counter.Scanned(); rows > need+25*parts {
						t.Errorf("read %d rows for %d in %d partitions, want at most %d (each of them whole: %d)", rows, need, parts, need+25*parts, parts*need)
					}
				})
			}
		}
	}
}

func ids(js []*jobs.Job) []int64 {
	out := make([]int64, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}
