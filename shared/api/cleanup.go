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

// cleanupArtifacts is the cleanup function: for each expire request the
// table's stream reports, it runs CleanupProject. A failure fails the batch,
// which Lambda retries; every step is safe to run again.
func cleanupArtifacts(ctx context.Context, d *Deps, ev events.DynamoDBEvent) error {
	for _, r := range ev.Records {
		pk, sk := r.Change.Keys["PK"], r.Change.Keys["SK"]
		if r.EventName == "REMOVE" || sk.DataType() != events.DataTypeString || sk.String() != store.ExpireRequestSK ||
			pk.DataType() != events.DataTypeString {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(pk.String(), "P#"), 10, 64)
		if err != nil {
			return fmt.Errorf("expire request %q: %w", pk.String(), err)
		}
		if err := CleanupProject(ctx, d, id); err != nil {
			return err
		}
	}
	return nil
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
		page, err := d.Store.ProjectBuilds(ctx, f.Project, store.Range{Limit: 100, After: after})
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
