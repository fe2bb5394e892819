package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// deleteProjectArtifacts serves DELETE /projects/:id/artifacts: 202 once
// the request is recorded; the cleanup function, started by the record's
// stream event, deletes the project's unlocked artifacts (GitLab's worker
// expires them for its regular cleanup; here one function does both).
func deleteProjectArtifacts(w http.ResponseWriter, rq *request) error {
	p, err := rq.readableProject()
	if err != nil {
		return err
	}
	if !rq.caller.CanDestroyArtifacts() {
		return errForbidden
	}
	if err := rq.deps.Store.PutExpireRequest(rq.ctx(), p.ID, rq.deps.Now()); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"message": "202 Accepted"})
	return nil
}

// cleanupArtifacts is the cleanup function. The table's stream hands it
// the expire requests (SK "XR"), for CleanupProject, and every job written
// with files still to delete (an erase's FilesPending, an artifacts
// deletion's ArchivePending: template.yaml filters the stream to those),
// whose deletion it finishes: files never stay in S3 after their job says
// they are gone, whether or not anyone asks for the job again. A failure
// fails the batch, which Lambda retries; every step is safe to run again.
func cleanupArtifacts(ctx context.Context, d *Deps, ev events.DynamoDBEvent) error {
	for _, r := range ev.Records {
		pk, sk := r.Change.Keys["PK"], r.Change.Keys["SK"]
		if r.EventName == "REMOVE" || sk.DataType() != events.DataTypeString || pk.DataType() != events.DataTypeString {
			continue
		}
		var err error
		switch {
		case sk.String() == store.ExpireRequestSK:
			var id int64
			if id, err = strconv.ParseInt(strings.TrimPrefix(pk.String(), "P#"), 10, 64); err != nil {
				return fmt.Errorf("expire request %q: %w", pk.String(), err)
			}
			err = CleanupProject(ctx, d, id)
		case sk.String() == store.JobSK && strings.HasPrefix(pk.String(), "J#"):
			var id int64
			if id, err = strconv.ParseInt(strings.TrimPrefix(pk.String(), "J#"), 10, 64); err != nil {
				return fmt.Errorf("job %q: %w", pk.String(), err)
			}
			err = finishPendingJob(ctx, d, id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// finishPendingJob reads a job, strongly consistent, and finishes what its
// marks say is still to delete.
func finishPendingJob(ctx context.Context, d *Deps, jobID int64) error {
	f, err := d.Store.Lookup(ctx, store.Lookup{JobID: jobID})
	if err != nil || f.Job == nil {
		return err
	}
	_, err = finishPending(ctx, d, f.Job)
	return err
}

// finishPending deletes the files a job's marks say are pending (all of an
// erased job's, or a deleted archive) and clears the marks, returning the
// job as it then is.
func finishPending(ctx context.Context, d *Deps, j *jobs.Job) (*jobs.Job, error) {
	p := &jobs.Project{ID: j.ProjectID} // the marks' writes create no job: only the id counts
	if j.FilesPending {
		if err := d.Files.DeleteAll(ctx, j.ProjectID, j.ID); err != nil {
			return j, err
		}
		done, err := d.Store.Apply(ctx, p, j, jobs.FilesErased)
		if err != nil {
			return j, err
		}
		j = done
	}
	if j.ArchivePending {
		if err := d.Files.DeleteArchive(ctx, j.ProjectID, j.ID); err != nil {
			return j, err
		}
		return d.Store.Apply(ctx, p, j, jobs.ArchiveDeleted)
	}
	return j, nil
}

// CleanupProject deletes the artifacts (not the logs) of every build of a
// project whose pipeline is not locked, each as DELETE job artifacts does
// (the job first, then its zip), then clears the request, unless a newer
// one came meanwhile. Locked pipelines, the newest successful one of each
// ref, keep theirs, as GitLab's default.
func CleanupProject(ctx context.Context, d *Deps, projectID int64) error {
	at, err := d.Store.ExpireRequest(ctx, projectID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // done by an earlier run
	}
	if err != nil {
		return err
	}
	f, err := d.Store.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: projectID}})
	if err != nil {
		return err
	}
	if f.Project == nil {
		return d.Store.DoneExpireRequest(ctx, projectID, at)
	}
	var after store.Position
	for {
		page, err := d.Store.ProjectBuilds(ctx, f.Project, store.Range{Limit: 100, After: after, Whole: true})
		if err != nil {
			return err
		}
		for _, j := range page.Jobs {
			if expirable(j) {
				if err := DeleteArtifacts(ctx, d, f.Project, j); err != nil {
					return fmt.Errorf("cleanup of job %d: %w", j.ID, err)
				}
			}
		}
		if !page.More || len(page.Jobs) == 0 {
			break
		}
		last := page.Jobs[len(page.Jobs)-1]
		after = store.Position{ID: last.ID, Ordinal: last.Ordinal}
	}
	return d.Store.DoneExpireRequest(ctx, projectID, at)
}

// expirable: an unlocked build with artifacts but its log, or with a zip
// whose removal is pending.
func expirable(j *jobs.Job) bool {
	return !j.Locked && (j.Downloadable() || j.ArchivePending)
}
