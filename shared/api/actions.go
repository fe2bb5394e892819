package api

import (
	"net/http"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// projectJob is GitLab's find_job!: a build or a bridge of the project.
func (rq *request) projectJob(p *jobs.Project) (*jobs.Job, error) {
	j := rq.found.Job
	if j == nil || j.ProjectID != p.ID {
		return nil, errRecordNotFound
	}
	return j, nil
}

// actionTarget finds the job an action is on, in GitLab's order of checks:
// the project (each action asks its own ability of it), the job, then the
// caller's ability on that job (403).
func (rq *request) actionTarget(project func() (*jobs.Project, error), find func(*jobs.Project) (*jobs.Job, error),
	may func(*jobs.Project, *jobs.Job) bool) (*jobs.Project, *jobs.Job, error) {
	p, err := project()
	if err != nil {
		return nil, nil, err
	}
	j, err := find(p)
	if err != nil {
		return nil, nil, err
	}
	if !may(p, j) {
		return nil, nil, errForbidden
	}
	return p, j, nil
}

// cancelJob answers 201 with the job after the attempt, changed or not.
// Checks in GitLab's order: the project's cancel_build, the build, the
// build's cancel_build, then force_cancel_build for force=true.
func cancelJob(w http.ResponseWriter, rq *request) error {
	params, err := rq.postParams()
	if err != nil {
		return err
	}
	force, err := params.boolean("force")
	if err != nil {
		return err
	}
	developerProject := func() (*jobs.Project, error) {
		p, err := rq.readableProject()
		if err == nil && !rq.caller.AtLeast(jobs.Developer) {
			return nil, errForbidden
		}
		return p, err
	}
	p, j, err := rq.actionTarget(developerProject, rq.projectBuild, func(p *jobs.Project, j *jobs.Job) bool {
		return rq.caller.CanCancelJob(p, j, false) && rq.caller.CanCancelJob(p, j, force)
	})
	if err != nil {
		return err
	}
	return rq.act(w, http.StatusCreated, p, j, jobs.Cancel(force, rq.deps.Now()), asJob)
}

// retryJob answers 201 with the new job, a bridge's too as a Job entity.
func retryJob(w http.ResponseWriter, rq *request) error {
	p, j, err := rq.actionTarget(rq.readableProject, rq.projectJob, rq.caller.CanRetryOrPlay)
	if err != nil {
		return err
	}
	return rq.act(w, http.StatusCreated, p, j, jobs.Retry(rq.caller.User.ID, rq.deps.Now()), asJob)
}

// playJob answers 200 with the played job, or the new one when playing
// retried it; a bridge as a Bridge entity.
func playJob(w http.ResponseWriter, rq *request) error {
	params, err := rq.postParams()
	if err != nil {
		return err
	}
	vars, err := params.variables("job_variables_attributes")
	if err != nil {
		return err
	}
	p, j, err := rq.actionTarget(rq.buildsProject, rq.projectJob, rq.caller.CanRetryOrPlay)
	if err != nil {
		return err
	}
	return rq.act(w, http.StatusOK, p, j, jobs.Play(rq.caller.User.ID, vars, rq.deps.Now()), asOwnKind)
}

// eraseJob answers 201 with the erased job. The job is marked erased first
// and its files deleted after (see jobs.Erase). The mark is the erase: when
// the deletion fails the answer is still 201, as GitLab's, whose object
// storage files go in a background worker after the database commit; the
// mark's stream record makes the cleanup function delete them (see
// cleanupArtifacts). Only the mark's own write failing fails the request,
// with the job unchanged.
func eraseJob(w http.ResponseWriter, rq *request) error {
	p, j, err := rq.actionTarget(rq.readableProject, rq.projectBuild, rq.caller.CanEraseJob)
	if err != nil {
		return err
	}
	if j, err = rq.apply(p, j, jobs.Erase(rq.deps.Now())); err != nil {
		return err
	}
	return rq.renderJob(w, http.StatusCreated, p, rq.finishErase(j), asJob)
}

// finishErase deletes the files of a job whose erase left them pending and
// clears the mark, returning the job as it then is. A failure leaves the
// mark to the cleanup function (and is logged, with no request data): the
// request goes on, since the job already shows erased.
func (rq *request) finishErase(j *jobs.Job) *jobs.Job {
	if j == nil || !j.FilesPending {
		return j
	}
	done, err := finishPending(rq.ctx(), rq.deps, j)
	if err != nil {
		rq.deps.Log.WarnContext(rq.ctx(), "erase pending", "job_id", j.ID, "error", err.Error())
	}
	return done
}

// entity is the GitLab entity a job is rendered as.
type entity int

const (
	asJob     entity = iota // the Job entity, bridges too (retry's answer)
	asOwnKind               // the Bridge entity for a bridge, else the Job entity
)

// act applies an action to the job and renders the job it shows.
func (rq *request) act(w http.ResponseWriter, status int, p *jobs.Project, j *jobs.Job, a jobs.Action, as entity) error {
	shown, err := rq.apply(p, j, a)
	if err != nil {
		return err
	}
	return rq.renderJob(w, status, p, shown, as)
}

// apply runs the action once per Idempotency-Key: a repeat within the
// key's lifetime shows, as it now is, the job the first request showed,
// and acts no more.
func (rq *request) apply(p *jobs.Project, j *jobs.Job, a jobs.Action) (*jobs.Job, error) {
	if d := rq.found.Once; d != nil && d.Live(rq.deps.Now()) {
		if d.JobID == j.ID {
			return j, nil
		}
		f, err := rq.deps.Store.Lookup(rq.ctx(), store.Lookup{JobID: d.JobID})
		if err != nil {
			return nil, err
		}
		if f.Job == nil {
			return nil, errRecordNotFound
		}
		return f.Job, nil
	}
	return rq.deps.Store.ApplyOnce(rq.ctx(), p, j, a, rq.once)
}

// renderJob writes j as the entity as, with what the lookup read of the
// job it came from and the caller's user; only a job that refers to
// something else (another writer's user, after a lost race) costs one
// more read.
func (rq *request) renderJob(w http.ResponseWriter, status int, p *jobs.Project, j *jobs.Job, as entity) error {
	rel := rq.found.Related
	if u := rq.caller.User; u != nil {
		rel.Users[u.ID] = u
	}
	if !rel.Covers(j) {
		var err error
		if rel, err = rq.deps.Store.Related(rq.ctx(), j); err != nil {
			return err
		}
	}
	var shown any = render.NewJob(j, p, rel, rq.deps.Now())
	if as == asOwnKind && j.IsBridge() {
		shown = render.NewBridge(j, p, rel, rq.deps.Now())
	}
	b, err := render.Marshal(shown, j.Extra)
	if err != nil {
		return err
	}
	writeBody(w, status, "application/json", b)
	return nil
}
