package world

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Locks and by-ref candidates: the newest successful pipeline per ref
// (branch and tag apart for locks, alike for by-ref), never a running or
// failed one, and a child pipeline's builds as their parent's.
func TestMarkLocks(t *testing.T) {
	l := newLocks()
	add := func(id int64, ref, status, source string) {
		if err := l.pipeline(&jobs.Pipeline{ID: id, ProjectID: 1,
			Doc: json.RawMessage(fmt.Sprintf(`{"id":%d,"ref":%q,"status":%q,"source":%q}`, id, ref, status, source))}); err != nil {
			t.Fatal(err)
		}
	}
	add(10, "main", "success", "push")
	add(11, "main", "success", "push")
	add(12, "main", "failed", "push")
	add(13, "main", "success", "parent_pipeline") // child of 11
	add(20, "v1", "success", "push")              // a branch v1
	add(21, "v1", "success", "push")              // and a tag v1, newer
	build := func(id, pl int64, tag bool) *importedJob {
		return &importedJob{job: &jobs.Job{ID: id, ProjectID: 1, PipelineID: pl, Kind: jobs.Build, Tag: tag}}
	}
	bridge := &importedJob{job: &jobs.Job{ID: 5, ProjectID: 1, PipelineID: 11, Kind: jobs.Bridge, DownstreamPipelineID: 13}}
	js := []*importedJob{build(1, 10, false), build(2, 11, false), build(3, 12, false), bridge, build(4, 13, false),
		build(6, 20, false), build(7, 21, true)}
	for _, ij := range js {
		l.see(ij.job)
	}
	for _, ij := range js {
		l.mark(ij.job)
	}
	want := map[int64][2]bool{ // id -> locked, latest for its ref name
		1: {false, false}, 2: {true, true}, 3: {false, false}, 4: {true, true}, 6: {true, false}, 7: {true, true},
	}
	for _, ij := range js {
		if w, ok := want[ij.job.ID]; ok && (ij.job.Locked != w[0] || ij.job.LatestForRef != w[1]) {
			t.Errorf("job %d: locked %v, latest %v; want %v", ij.job.ID, ij.job.Locked, ij.job.LatestForRef, w)
		}
	}
	// The search of recent successful pipelines orders by the root pipeline.
	for id, want := range map[int64]int64{1: 10, 2: 11, 3: 0, 4: 11, 7: 21} {
		for _, ij := range js {
			if ij.job.ID == id && ij.job.RefPipelineID != want {
				t.Errorf("job %d: ref pipeline %d, want %d", id, ij.job.RefPipelineID, want)
			}
		}
	}
}
