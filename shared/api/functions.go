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

// NotFound serves API Gateway's $default route: every request no function
// claims gets GitLab's catch-all 404.
func NotFound(*Deps) http.Handler { return notFoundHandler{} }

// notFoundHandler answers every route API Gateway has no function for, as
// GitLab's catch-all route does.
type notFoundHandler struct{}

func (notFoundHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "SAMEORIGIN")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeError(w, errRouteNotFound)
}
