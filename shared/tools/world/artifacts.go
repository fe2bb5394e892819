package world

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"

	"golang.org/x/sync/errgroup"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// markLocks sets what GitLab derives from pipelines on each build: Locked
// when its pipeline is the newest successful one of its ref (a branch and a
// tag of one name are two refs, as GitLab's ci_refs), the default "keep
// artifacts from the most recent successful jobs"; LatestForRef when it is
// the newest successful one of its ref name, branch or tag alike, which the
// by-ref downloads look up. Child pipelines (a same-project downstream
// pipeline of source parent_pipeline) are never candidates themselves:
// their builds count as their root pipeline's, as GitLab looks in a
// pipeline's same-project descendants. Other dangling sources are left out.
func markLocks(js []*importedJob, pipelines map[int64]*jobs.Pipeline) error {
	type refKey struct {
		project int64
		ref     string
		tag     bool
	}
	type doc struct {
		Status, Ref, Source string
	}
	docs := map[int64]doc{}
	for id, p := range pipelines {
		var d doc
		if err := json.Unmarshal(p.Doc, &d); err != nil {
			return fmt.Errorf("pipeline %d: %w", id, err)
		}
		docs[id] = d
	}
	parent := map[int64]int64{} // child pipeline -> the pipeline of the bridge that made it
	for _, ij := range js {
		j := ij.job
		if c := j.DownstreamPipelineID; j.IsBridge() && c != 0 && docs[c].Source == "parent_pipeline" &&
			pipelines[c] != nil && pipelines[c].ProjectID == j.ProjectID {
			parent[c] = j.PipelineID
		}
	}
	root := func(pl int64) int64 {
		for range len(parent) + 1 { // a cycle in a bad document ends here
			up, ok := parent[pl]
			if !ok {
				break
			}
			pl = up
		}
		return pl
	}
	newestByRef := map[refKey]int64{}
	newestByName := map[refKey]int64{}
	for _, ij := range js {
		j := ij.job
		d, ok := docs[j.PipelineID]
		if !ok || d.Status != string(jobs.Success) || d.Ref == "" || dangling[d.Source] {
			continue
		}
		byRef, byName := refKey{j.ProjectID, d.Ref, j.Tag}, refKey{j.ProjectID, d.Ref, false}
		newestByRef[byRef] = max(newestByRef[byRef], j.PipelineID)
		newestByName[byName] = max(newestByName[byName], j.PipelineID)
	}
	for _, ij := range js {
		j := ij.job
		pl := root(j.PipelineID)
		d := docs[pl]
		j.Locked = newestByRef[refKey{j.ProjectID, d.Ref, j.Tag}] == pl
		j.LatestForRef = newestByName[refKey{j.ProjectID, d.Ref, false}] == pl
		if d.Status == string(jobs.Success) && !dangling[d.Source] && d.Ref != "" {
			j.RefPipelineID = pl
		}
	}
	return nil
}

// dangling are the pipeline sources that Project#ci_pipelines leaves out.
var dangling = map[string]bool{"parent_pipeline": true, "webide": true, "ondemand_dast_scan": true,
	"ondemand_dast_validation": true, "security_orchestration_policy": true, "container_registry_push": true,
	"duo_workflow": true, "pipeline_execution_policy_schedule": true}

// putArchives uploads each job's artifacts_archive from dir to the job's
// S3 prefix, eight at a time, and records it on the job.
func (im *Importer) putArchives(ctx context.Context, dir fs.FS, js []*importedJob) (int, error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	n := 0
	for _, ij := range js {
		if ij.archive == "" {
			continue
		}
		if dir == nil {
			return 0, fmt.Errorf("job %d: artifacts_archive %q, but the document has no directory", ij.job.ID, ij.archive)
		}
		n++
		g.Go(func() error {
			data, err := fs.ReadFile(dir, ij.archive)
			if err != nil {
				return fmt.Errorf("job %d: artifacts_archive: %w", ij.job.ID, err)
			}
			ij.job.Archive = &jobs.Archive{Size: int64(len(data))}
			return im.Files.Put(ctx, jobfiles.ArchiveKey(ij.job.ProjectID, ij.job.ID), data, "application/zip")
		})
	}
	return n, g.Wait()
}
