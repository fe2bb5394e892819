package jobs

import (
	"errors"
	"slices"
	"time"
)

// Errors of the job actions; the API maps each to GitLab's status and body.
var (
	ErrNotRetryable = errors.New("Job is not retryable")
	ErrNotErasable  = errors.New("Job is not erasable!")
	ErrUnplayable   = errors.New("Unplayable Job")
)

// Transition is what an action makes of a job: the job as it becomes and,
// for a retry, the new job that replaces it. The store gives a new job its
// id and ordinal.
type Transition struct {
	Job     *Job // the job after the action; nil when the action changes nothing
	Created *Job // the job the action creates, or nil
}

// Action decides a transition from the job as stored. It must not change
// the job it is given, so that it can be asked again after a lost race.
type Action func(*Job) (Transition, error)

// Retryable is GitLab's retryable?: a finished (or canceling) job that is
// not retried yet, not archived and not rejected by a deployment approval.
func (j *Job) Retryable() bool {
	switch {
	case j.Retried, j.Archived, j.FailureReason == "deployment_rejected":
		return false
	case j.IsBridge() && j.Status == Failed &&
		(j.FailureReason == "pipeline_loop_detected" || j.FailureReason == "reached_max_descendant_pipelines_depth"):
		return false
	}
	switch j.Status {
	case Success, Failed, Canceled, Canceling:
		return true
	}
	return false
}

// action reports whether the job waits for a person: `when: manual` or
// `when: delayed`.
func (j *Job) action() bool { return j.When == "manual" || j.When == "delayed" }

// Playable is GitLab's playable?: a manual bridge waiting to be played, or
// a manual or delayed build that waits (manual, scheduled) or that can be
// retried.
func (j *Job) Playable() bool {
	if j.Archived {
		return false
	}
	if j.IsBridge() {
		return j.When == "manual" && j.Status == Manual
	}
	return j.action() && (j.Status == Manual || j.Status == Scheduled || j.Retryable())
}

// Erasable is GitLab's erasable?: a finished job with a log or artifacts.
func (j *Job) Erasable() bool {
	return j.Status.Completed() && (j.HasTrace || len(j.Artifacts) > 0 || j.ArtifactsFile != nil)
}

// Cancel is GitLab's cancel event: a running job whose runner runs
// after_script on cancel goes to canceling, any other cancelable job to
// canceled; finished and canceling jobs stay as they are. Force moves only
// canceling jobs to canceled (force_cancel): it never falls back to a
// normal cancel.
func Cancel(force bool, now time.Time) Action {
	return func(j *Job) (Transition, error) {
		c := *j
		switch {
		case force && j.Status == Canceling, !force && j.Status.Cancelable() && !(j.Status == Running && j.SupportsCanceling):
			c.Status, c.FinishedAt = Canceled, &now
		case !force && j.Status == Running:
			c.Status = Canceling
		default:
			return Transition{}, nil
		}
		return Transition{Job: &c}, nil
	}
}

// Retry is GitLab's RetryJobService: the job is marked retried and keeps its
// status; a clone of it, started by user, takes its place and is enqueued
// (manual and delayed jobs too: a retry is their play).
func Retry(user int64, now time.Time) Action {
	return func(j *Job) (Transition, error) {
		if !j.Retryable() {
			return Transition{}, ErrNotRetryable
		}
		old := *j
		old.Retried = true
		return Transition{Job: &old, Created: j.clone(user, now)}, nil
	}
}

// clone is a new try of j with what GitLab's clone accessors copy. Imported
// pass-through fields are copied too, so the new job has the same shape.
func (j *Job) clone(user int64, now time.Time) *Job {
	c := &Job{
		ProjectID: j.ProjectID, PipelineID: j.PipelineID, Kind: j.Kind, Stage: j.Stage, Name: j.Name,
		Ref: j.Ref, Tag: j.Tag, AllowFailure: j.AllowFailure, CreatedAt: now, UserID: user, When: j.When,
		Environment: j.Environment, DebugTrace: j.DebugTrace, TagList: slices.Clone(j.TagList),
		Variables: slices.Clone(j.Variables), Extra: j.Extra,
	}
	c.enqueue(now)
	return c
}

// enqueue moves a job to pending, as GitLab's enqueue event does. A bridge
// starts when it is pending: that is when it triggers its downstream
// pipeline.
func (j *Job) enqueue(now time.Time) {
	j.Status, j.QueuedAt = Pending, &now
	if j.IsBridge() {
		j.StartedAt = &now
	}
}

// Play is GitLab's PlayBuildService and PlayBridgeService: a waiting manual
// or scheduled job is enqueued with user as its user and the variables
// given (nil keeps the stored ones); a finished playable build is retried.
func Play(user int64, vars []Variable, now time.Time) Action {
	return func(j *Job) (Transition, error) {
		if !j.Playable() {
			return Transition{}, ErrUnplayable
		}
		if j.Status != Manual && j.Status != Scheduled {
			return Retry(user, now)(j)
		}
		c := *j
		c.UserID = user
		if vars != nil {
			c.Variables = vars
		}
		c.enqueue(now)
		return Transition{Job: &c}, nil
	}
}

// Erase is GitLab's BuildEraseService: the job keeps its status and loses
// its log and artifacts. The job is marked first, with FilesPending, and
// its files are deleted after (see FilesErased): a job that shows erased
// never shows files. An erased job is not erasable, files pending or not:
// the mark is finished by the next request that reads the job's log
// (api), so
// of concurrent erases exactly one wins.
func Erase(now time.Time) Action {
	return func(j *Job) (Transition, error) {
		if !j.Erasable() {
			return Transition{}, ErrNotErasable
		}
		c := *j
		c.ErasedAt, c.ArtifactsExpireAt = &now, nil
		c.Artifacts, c.ArtifactsFile, c.HasTrace = nil, nil, false
		// The job's whole prefix goes, its archive with it.
		c.Archive, c.ArchivePending = nil, false
		c.FilesPending = true
		return Transition{Job: &c}, nil
	}
}

// FilesErased records that every file of an erased job is deleted.
func FilesErased(j *Job) (Transition, error) {
	if !j.FilesPending {
		return Transition{}, nil
	}
	c := *j
	c.FilesPending = false
	return Transition{Job: &c}, nil
}

// CanCancelJob is GitLab's cancel_build on a job; force needs
// force_cancel_build, Maintainer and up.
func (c Caller) CanCancelJob(p *Project, j *Job, force bool) bool {
	if force {
		return c.AtLeast(Maintainer)
	}
	return c.CanUpdateJob(p, j)
}

// CanRetryOrPlay is GitLab's retry_job and play_job: update_build, and
// never on an archived job.
func (c Caller) CanRetryOrPlay(p *Project, j *Job) bool {
	return !j.Archived && c.CanUpdateJob(p, j)
}

// CanEraseJob is GitLab's erase_build: Maintainers erase any job,
// Developers their own jobs on unprotected refs.
func (c Caller) CanEraseJob(p *Project, j *Job) bool {
	if c.AtLeast(Maintainer) {
		return true
	}
	return c.User != nil && j.UserID == c.User.ID && c.CanUpdateJob(p, j)
}
