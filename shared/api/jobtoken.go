package api

import (
	"net/http"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
)

var errJobNotFound = notFound("Job")

// tokenJob is the job that owns the request's job token, with its project.
// Authentication already refused a token whose job is not running; any
// other credential gets GitLab's 404 Job Not Found.
func (rq *request) tokenJob() (*jobs.Job, *jobs.Project, error) {
	if t := rq.caller.Token; t == nil || !t.IsJobToken() {
		return nil, nil, errJobNotFound
	}
	j, p := rq.found.TokenJob, rq.found.Project
	if j == nil || p == nil || p.ID != j.ProjectID {
		// GitLab's "Project has been deleted!": the token no longer authenticates.
		return nil, nil, errUnauthorized
	}
	return j, p, nil
}

// getJobByToken serves GET /job in three BatchGetItem round trips: the
// token, then its job, project and user, then what the job refers to.
func getJobByToken(w http.ResponseWriter, rq *request) error {
	j, p, err := rq.tokenJob()
	if err != nil {
		return err
	}
	rel, err := rq.deps.Store.Related(rq.ctx(), j)
	if err != nil {
		return err
	}
	b, err := render.Marshal(render.NewJob(j, p, rel, rq.deps.Now()), j.Extra)
	if err != nil {
		return err
	}
	writeTagged(w, rq.Request, b)
	return nil
}

// listAllowedAgents serves GET /job/allowed_agents: the agents for
// Kubernetes authorized for the token's project or one of its groups.
func listAllowedAgents(w http.ResponseWriter, rq *request) error {
	j, p, err := rq.tokenJob()
	if err != nil {
		return err
	}
	access, err := rq.deps.Store.AgentAccess(rq.ctx(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, render.NewAllowedAgents(j, p, rq.found.User, rq.found.Access,
		access.Groups, access.Agents, access.ConfigProjects))
	return nil
}
