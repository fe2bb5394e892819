package api

import (
	"net/http"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/auth"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
)

// jobAction is the endpoint of POST /projects/:id/jobs/:job_id/<verb>: a
// write that needs the api scope, takes no job token (its headers and
// parameters are not even read) and reads the job with what it refers to
// during lookup.
func jobAction(d *Deps, name, verb string, serve func(http.ResponseWriter, *request) error) http.Handler {
	return &endpoint{name: name, method: http.MethodPost, path: []string{"jobs", "{job_id}", verb},
		rule: auth.Rule{Write: true}, jobID: "job_id", related: true, serve: serve, deps: d}
}

// CancelJob serves POST /projects/:id/jobs/:job_id/cancel.
func CancelJob(d *Deps) http.Handler { return jobAction(d, "cancel-job", "cancel", cancelJob) }

// RetryJob serves POST /projects/:id/jobs/:job_id/retry.
func RetryJob(d *Deps) http.Handler { return jobAction(d, "retry-job", "retry", retryJob) }

// EraseJob serves POST /projects/:id/jobs/:job_id/erase.
func EraseJob(d *Deps) http.Handler { return jobAction(d, "erase-job", "erase", eraseJob) }

// PlayJob serves POST /projects/:id/jobs/:job_id/play.
func PlayJob(d *Deps) http.Handler { return jobAction(d, "play-job", "play", playJob) }

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
	if _, err := rq.intParam("job_id"); err != nil {
		return err
	}
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
	return rq.act(w, http.StatusCreated, p, j, jobs.Cancel(force, rq.deps.Now()), false)
}

// retryJob answers 201 with the new job, a bridge's too as a Job entity.
func retryJob(w http.ResponseWriter, rq *request) error {
	if _, err := rq.intParam("job_id"); err != nil {
		return err
	}
	p, j, err := rq.actionTarget(rq.readableProject, rq.projectJob, rq.caller.CanRetryOrPlay)
	if err != nil {
		return err
	}
	return rq.act(w, http.StatusCreated, p, j, jobs.Retry(rq.caller.User.ID, rq.deps.Now()), false)
}

// playJob answers 200 with the played job, or the new one when playing
// retried it; a bridge as a Bridge entity.
func playJob(w http.ResponseWriter, rq *request) error {
	if _, err := rq.intParam("job_id"); err != nil {
		return err
	}
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
	return rq.act(w, http.StatusOK, p, j, jobs.Play(rq.caller.User.ID, vars, rq.deps.Now()), true)
}

// eraseJob answers 201 with the erased job. The job is marked erased first
// and its files deleted after (see jobs.Erase): when the deletion fails the
// request fails with a 500, the job already shows erased, and the next
// erase of it deletes the files again and clears the mark.
func eraseJob(w http.ResponseWriter, rq *request) error {
	if _, err := rq.intParam("job_id"); err != nil {
		return err
	}
	p, j, err := rq.actionTarget(rq.readableProject, rq.projectBuild, rq.caller.CanEraseJob)
	if err != nil {
		return err
	}
	st := rq.deps.Store
	if j, err = st.Apply(rq.ctx(), p, j, jobs.Erase(rq.deps.Now())); err != nil {
		return err
	}
	if j.FilesPending {
		if err := rq.deps.Files.DeleteAll(rq.ctx(), p.ID, j.ID); err != nil {
			return err
		}
		if j, err = st.Apply(rq.ctx(), p, j, jobs.FilesErased); err != nil {
			return err
		}
	}
	return rq.renderJob(w, http.StatusCreated, p, j, false)
}

// act applies an action to the job and renders the job it shows.
func (rq *request) act(w http.ResponseWriter, status int, p *jobs.Project, j *jobs.Job, a jobs.Action, bridgeEntity bool) error {
	shown, err := rq.deps.Store.Apply(rq.ctx(), p, j, a)
	if err != nil {
		return err
	}
	return rq.renderJob(w, status, p, shown, bridgeEntity)
}

// renderJob writes j as a Job entity (a Bridge entity for bridges when
// bridgeEntity), with what the lookup read of the job it came from and the
// caller's user; only a job that refers to something else (another
// writer's user, after a lost race) costs one more read.
func (rq *request) renderJob(w http.ResponseWriter, status int, p *jobs.Project, j *jobs.Job, bridgeEntity bool) error {
	rel := rq.found.Related
	if u := rq.caller.User; u != nil {
		rel.Users[u.ID] = u
	}
	if (j.UserID != 0 && rel.Users[j.UserID] == nil) || (j.RunnerID != 0 && rel.Runners[j.RunnerID] == nil) {
		var err error
		if rel, err = rq.deps.Store.Related(rq.ctx(), j); err != nil {
			return err
		}
	}
	var entity any = render.NewJob(j, p, rel, rq.deps.Now())
	if bridgeEntity && j.IsBridge() {
		entity = render.NewBridge(j, p, rel, rq.deps.Now())
	}
	b, err := render.Marshal(entity, j.Extra)
	if err != nil {
		return err
	}
	writeBody(w, status, "application/json", b)
	return nil
}
