package world

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// locks decide what GitLab derives from pipelines on each build: Locked
// when its pipeline is the newest successful one of its ref (a branch and a
// tag of one name are two refs, as GitLab's ci_refs), the default "keep
// artifacts from the most recent successful jobs"; LatestForRef when it is
// the newest successful one of its ref name, branch or tag alike, which the
// by-ref downloads look up. Child pipelines (a same-project downstream
// pipeline of source parent_pipeline) are never candidates themselves:
// their builds count as their root pipeline's, as GitLab looks in a
// pipeline's same-project descendants. Other dangling sources are left out.
// The import sees every job of the document first (see), then marks each as
// it writes it (mark). Fields are exported for the checkpoint.
type locks struct {
	Docs         map[int64]lockDoc // the pipelines of the document
	Parent       map[int64]int64   // child pipeline -> the pipeline of the bridge that made it
	NewestByRef  map[refKey]int64
	NewestByName map[refKey]int64
	refs         map[string]string // each ref once, however many pipelines name it
}

type refKey struct {
	Project int64
	Ref     string
	Tag     bool
}

// lockDoc is what locks read of a pipeline's document, in a few bytes: one
// is held for every pipeline.
type lockDoc struct {
	Ref     string
	Project int64
	Success bool // its status
	Child   bool // of source parent_pipeline
	// Dangling: of a source that Project#ci_pipelines leaves out.
	Dangling bool
}

func newLocks() *locks {
	return &locks{Docs: map[int64]lockDoc{}, Parent: map[int64]int64{}, NewestByRef: map[refKey]int64{},
		NewestByName: map[refKey]int64{}, refs: map[string]string{}}
}

// pipeline notes a pipeline of the document.
func (l *locks) pipeline(p *jobs.Pipeline) error {
	var d struct{ Status, Ref, Source string }
	if err := json.Unmarshal(p.Doc, &d); err != nil {
		return fmt.Errorf("pipeline %d: %w", p.ID, err)
	}
	ref, ok := l.refs[d.Ref]
	if !ok {
		ref, l.refs[d.Ref] = d.Ref, d.Ref
	}
	l.Docs[p.ID] = lockDoc{Ref: ref, Project: p.ProjectID, Success: d.Status == string(jobs.Success),
		Child: d.Source == "parent_pipeline", Dangling: dangling[d.Source]}
	return nil
}

// see notes a job of the document, its pipelines noted.
func (l *locks) see(j *jobs.Job) {
	if c := j.DownstreamPipelineID; j.IsBridge() && c != 0 {
		if d, ok := l.Docs[c]; ok && d.Child && d.Project == j.ProjectID {
			l.Parent[c] = j.PipelineID
		}
	}
	d, ok := l.Docs[j.PipelineID]
	if !ok || !d.Success || d.Ref == "" || d.Dangling {
		return
	}
	byRef, byName := refKey{j.ProjectID, d.Ref, j.Tag}, refKey{j.ProjectID, d.Ref, false}
	l.NewestByRef[byRef] = max(l.NewestByRef[byRef], j.PipelineID)
	l.NewestByName[byName] = max(l.NewestByName[byName], j.PipelineID)
}

// mark sets a job's marks, every job of the document seen.
func (l *locks) mark(j *jobs.Job) {
	pl := j.PipelineID
	for range len(l.Parent) + 1 { // a cycle in a bad document ends here
		up, ok := l.Parent[pl]
		if !ok {
			break
		}
		pl = up
	}
	d := l.Docs[pl]
	j.Locked = l.NewestByRef[refKey{j.ProjectID, d.Ref, j.Tag}] == pl
	j.LatestForRef = l.NewestByName[refKey{j.ProjectID, d.Ref, false}] == pl
	if d.Success && !d.Dangling && d.Ref != "" {
		j.RefPipelineID = pl
	}
}

// dangling are the pipeline sources that Project#ci_pipelines leaves out.
var dangling = map[string]bool{"parent_pipeline": true, "webide": true, "ondemand_dast_scan": true,
	"ondemand_dast_validation": true, "security_orchestration_policy": true, "container_registry_push": true,
	"duo_workflow": true, "pipeline_execution_policy_schedule": true}

// putFiles uploads a job's log and its artifacts_archive (read from dir) to
// the job's S3 prefix, and records the archive on the job.
func (im *Importer) putFiles(ctx context.Context, dir fs.FS, ij *importedJob) error {
	j := ij.job
	if ij.trace != nil {
		if err := im.Files.Put(ctx, jobfiles.TraceKey(j.ProjectID, j.ID), []byte(*ij.trace), "text/plain"); err != nil {
			return err
		}
	}
	if ij.archive == "" {
		return nil
	}
	if dir == nil {
		return fmt.Errorf("job %d: artifacts_archive %q, but the document has no directory", j.ID, ij.archive)
	}
	data, err := fs.ReadFile(dir, ij.archive)
	if err != nil {
		return fmt.Errorf("job %d: artifacts_archive: %w", j.ID, err)
	}
	j.Archive = &jobs.Archive{Size: int64(len(data))}
	return im.Files.Put(ctx, jobfiles.ArchiveKey(j.ProjectID, j.ID), data, "application/zip")
}
