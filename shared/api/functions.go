package api

import (
	"net/http"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/auth"
)

// Functions maps each Lambda function, by its folder under functions/, to its
// handler. The local API and the event-payload tests serve every function
// from here; each Lambda binary serves one.
var Functions = map[string]func(*Deps) http.Handler{
	"list-project-jobs": ListProjectJobs,
	"get-job":           GetJob,
	"get-job-trace":     GetJobTrace,
	"not-found":         NotFound,
	"cancel-job":        CancelJob,
	"retry-job":         RetryJob,
	"erase-job":         EraseJob,
	"play-job":          PlayJob,

	"list-pipeline-jobs":    ListPipelineJobs,
	"list-pipeline-bridges": ListPipelineBridges,
	"get-job-by-token":      GetJobByToken,
	"list-allowed-agents":   ListAllowedAgents,
}

// ListProjectJobs serves GET /projects/:id/jobs.
func ListProjectJobs(d *Deps) http.Handler {
	return &endpoint{name: "list-project-jobs", method: http.MethodGet, path: []string{"jobs"},
		rule: auth.Rule{JobTokens: true}, serve: listProjectJobs, deps: d}
}

// GetJob serves GET /projects/:id/jobs/:job_id.
func GetJob(d *Deps) http.Handler {
	return &endpoint{name: "get-job", method: http.MethodGet, path: []string{"jobs", "{job_id}"},
		jobID: "job_id", related: true, serve: getJob, deps: d}
}

// GetJobTrace serves GET /projects/:id/jobs/:job_id/trace.
func GetJobTrace(d *Deps) http.Handler {
	return &endpoint{name: "get-job-trace", method: http.MethodGet, path: []string{"jobs", "{job_id}", "trace"},
		jobID: "job_id", serve: getJobTrace, deps: d}
}

// ListPipelineJobs serves GET /projects/:id/pipelines/:pipeline_id/jobs.
func ListPipelineJobs(d *Deps) http.Handler {
	return &endpoint{name: "list-pipeline-jobs", method: http.MethodGet, path: []string{"pipelines", "{pipeline_id}", "jobs"},
		rule: auth.Rule{JobTokens: true}, public: true, pipelineID: "pipeline_id", serve: listPipelineJobs, deps: d}
}

// ListPipelineBridges serves GET /projects/:id/pipelines/:pipeline_id/bridges
// and GitLab's newer name for it, .../trigger_jobs.
func ListPipelineBridges(d *Deps) http.Handler {
	return &endpoint{name: "list-pipeline-bridges", method: http.MethodGet,
		path: []string{"pipelines", "{pipeline_id}", "bridges|trigger_jobs"},
		rule: auth.Rule{JobTokens: true}, public: true, pipelineID: "pipeline_id", serve: listPipelineBridges, deps: d}
}

// GetJobByToken serves GET /job: the job of the request's job token.
func GetJobByToken(d *Deps) http.Handler {
	return &endpoint{name: "get-job-by-token", method: http.MethodGet, exact: "/api/v4/job",
		rule: auth.Rule{JobTokens: true}, tokenProject: true, serve: getJobByToken, deps: d}
}

// ListAllowedAgents serves GET /job/allowed_agents.
func ListAllowedAgents(d *Deps) http.Handler {
	return &endpoint{name: "list-allowed-agents", method: http.MethodGet, exact: "/api/v4/job/allowed_agents",
		rule: auth.Rule{JobTokens: true}, tokenProject: true, serve: listAllowedAgents, deps: d}
}

// NotFound serves API Gateway's $default route: every request no function
// claims gets GitLab's catch-all 404.
func NotFound(d *Deps) http.Handler { return notFoundHandler{d} }

// notFoundHandler answers every route API Gateway has no function for, as
// GitLab's catch-all route does.
type notFoundHandler struct{ deps *Deps }

func (h notFoundHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	observe(w, r, "not-found", h.deps.Log, func(http.ResponseWriter, *http.Request) error { return errRouteNotFound })
}
