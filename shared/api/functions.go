package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/auth"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Function names one Lambda function: its folder under functions/. The Go
// name of its constant is the folder in camel case (get-job: GetJob), and
// template.yaml's logical id adds "Function" (GetJobFunction).
type Function string

// The functions, one per endpoint, and the artifacts cleanup.
const (
	ListProjectJobs     Function = "list-project-jobs"
	GetJob              Function = "get-job"
	GetJobTrace         Function = "get-job-trace"
	CancelJob           Function = "cancel-job"
	RetryJob            Function = "retry-job"
	EraseJob            Function = "erase-job"
	PlayJob             Function = "play-job"
	ListPipelineJobs    Function = "list-pipeline-jobs"
	ListPipelineBridges Function = "list-pipeline-bridges"
	GetJobByToken       Function = "get-job-by-token"
	ListAllowedAgents   Function = "list-allowed-agents"

	GetJobArtifacts     Function = "get-job-artifacts"
	GetJobArtifactFile  Function = "get-job-artifact-file"
	GetJobArtifactsTree Function = "get-job-artifacts-tree"
	GetRefArtifacts     Function = "get-ref-artifacts"
	KeepJobArtifacts    Function = "keep-job-artifacts"
	DeleteJobArtifacts  Function = "delete-job-artifacts"

	DeleteProjectArtifacts Function = "delete-project-artifacts"
	// CleanupArtifacts is the one function no route reaches: the table's
	// stream starts it with each expire request.
	CleanupArtifacts Function = "cleanup-artifacts"

	NotFound Function = "not-found"
)

// endpoints is the one table of what each function serves: its route, who
// may call it, what the lookup reads besides the credentials and the
// project, and the handler proper. Path ids ({job_id}, {pipeline_id}) are
// parsed, and the job or pipeline they name read, by the endpoint itself.
var endpoints = map[Function]endpoint{
	ListProjectJobs: {route: projectRoute(http.MethodGet, "jobs"),
		rule: auth.Rule{JobTokens: true}, serve: listProjectJobs, speculate: speculateProjectJobs,
		cachedProject: projectJobsCached, countedRef: projectJobsRef},
	GetJob: {route: projectRoute(http.MethodGet, "jobs", "{job_id}"),
		related: true, serve: getJob, cachedProject: always},
	GetJobTrace: {route: projectRoute(http.MethodGet, "jobs", "{job_id}", "trace"),
		serve: getJobTrace, cachedProject: always},

	// Actions need the api scope and take no job token (its headers and
	// parameters are not even read); they render the job they act on.
	CancelJob: {route: projectRoute(http.MethodPost, "jobs", "{job_id}", "cancel"),
		rule: auth.Rule{Write: true}, related: true, serve: cancelJob},
	RetryJob: {route: projectRoute(http.MethodPost, "jobs", "{job_id}", "retry"),
		rule: auth.Rule{Write: true}, related: true, createsBuild: true, serve: retryJob},
	EraseJob: {route: projectRoute(http.MethodPost, "jobs", "{job_id}", "erase"),
		rule: auth.Rule{Write: true}, related: true, finishesErase: true, serve: eraseJob},
	PlayJob: {route: projectRoute(http.MethodPost, "jobs", "{job_id}", "play"),
		rule: auth.Rule{Write: true}, related: true, createsBuild: true, serve: playJob},

	ListPipelineJobs: {route: projectRoute(http.MethodGet, "pipelines", "{pipeline_id}", "jobs"),
		rule: auth.Rule{JobTokens: true}, public: true, serve: listPipelineJobs,
		speculate: speculatePipeline(jobs.Build), cachedProject: always},
	// GitLab's older name for trigger_jobs, bridges, is the same endpoint.
	ListPipelineBridges: {route: projectRoute(http.MethodGet, "pipelines", "{pipeline_id}", "bridges|trigger_jobs"),
		rule: auth.Rule{JobTokens: true}, public: true, serve: listPipelineBridges,
		speculate: speculatePipeline(jobs.Bridge), cachedProject: always},

	// The job-token routes have no project: the token's job names it.
	GetJobByToken: {route: Route{Method: http.MethodGet, Exact: "/api/v4/job"},
		rule: auth.Rule{JobTokens: true}, tokenProject: true, serve: getJobByToken, cachedProject: always},
	ListAllowedAgents: {route: Route{Method: http.MethodGet, Exact: "/api/v4/job/allowed_agents"},
		rule: auth.Rule{JobTokens: true}, tokenProject: true, serve: listAllowedAgents},

	// Artifacts downloads take job tokens and anonymous callers (public
	// projects, public pipelines). A file path and a ref hold slashes, so
	// they are greedy variables; both by-ref routes collapse into one
	// gateway route, so one function serves them.
	GetJobArtifacts: {route: projectRoute(http.MethodGet, "jobs", "{job_id}", "artifacts"),
		rule: auth.Rule{JobTokens: true}, public: true, serve: getJobArtifacts},
	GetJobArtifactFile: {route: projectRoute(http.MethodGet, "jobs", "{job_id}", "artifacts", "{artifact_path+}"),
		rule: auth.Rule{JobTokens: true}, public: true, serve: getJobArtifactFile},
	// Declared before the file glob on GitLab, as here a full match beats
	// the greedy route: a root-level file named tree is not served.
	GetJobArtifactsTree: {route: projectRoute(http.MethodGet, "jobs", "{job_id}", "artifacts", "tree"),
		rule: auth.Rule{JobTokens: true}, public: true, serve: getJobArtifactsTree},
	GetRefArtifacts: {route: projectRoute(http.MethodGet, "jobs", "artifacts", "{ref_path+}"),
		rule: auth.Rule{JobTokens: true}, public: true, serve: getRefArtifacts},
	KeepJobArtifacts: {route: projectRoute(http.MethodPost, "jobs", "{job_id}", "artifacts", "keep"),
		rule: auth.Rule{Write: true}, related: true, serve: keepJobArtifacts},
	DeleteJobArtifacts: {route: projectRoute(http.MethodDelete, "jobs", "{job_id}", "artifacts"),
		rule: auth.Rule{Write: true}, serve: deleteJobArtifacts},

	DeleteProjectArtifacts: {route: projectRoute(http.MethodDelete, "artifacts"),
		rule: auth.Rule{Write: true}, serve: deleteProjectArtifacts},
	// Started by the table's stream (an expire request), not by API Gateway.
	CleanupArtifacts: {route: Route{Stream: true}, stream: cleanupArtifacts},

	// API Gateway's $default route: every request no other function
	// claims gets GitLab's catch-all 404.
	NotFound: {route: Route{Default: true}},
}

// Functions lists every function, in name order.
func Functions() []Function {
	out := make([]Function, 0, len(endpoints))
	for f := range endpoints {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Named finds the function of a folder under functions/.
func Named(folder string) (Function, bool) {
	_, ok := endpoints[Function(folder)]
	return Function(folder), ok
}

// Handler is f's handler with its dependencies. A name no function has
// serves GitLab's 404 to every request (the agreement test keeps every
// folder, main.go and template function on a real one).
func (f Function) Handler(d *Deps) http.Handler {
	e, ok := endpoints[f]
	if !ok {
		e = endpoints[NotFound]
	}
	return &handler{name: f, endpoint: e, deps: d}
}

// Route is where API Gateway must send f's requests.
func (f Function) Route() Route { return endpoints[f].route }

// StreamHandler is f's handler of the table's stream events, with its
// dependencies; nil for the functions API Gateway invokes.
func (f Function) StreamHandler(d *Deps) func(context.Context, events.DynamoDBEvent) error {
	s := endpoints[f].stream
	if s == nil {
		return nil
	}
	return func(ctx context.Context, ev events.DynamoDBEvent) error { return s(ctx, d, ev) }
}

// Route is what a function serves, as API Gateway routes it: nothing (a
// Stream function, invoked by the table's stream), everything no other
// route takes (Default), a fixed path (Exact), or a project route
// whose Suffix are the segments after /api/v4/projects/<project> ("{x}"
// captures one, "a|b" matches either, and a last "{x+}" captures one or
// more: a greedy path variable). GET routes serve HEAD too.
type Route struct {
	Stream  bool
	Default bool
	Method  string
	Exact   string
	Suffix  []string
}

func projectRoute(method string, suffix ...string) Route {
	return Route{Method: method, Suffix: suffix}
}

const projectsPrefix = "/api/v4/projects/"

// greedy reports whether the route ends in a greedy path variable.
func (r Route) greedy() bool {
	return len(r.Suffix) > 0 && strings.HasSuffix(r.Suffix[len(r.Suffix)-1], "+}")
}

// match splits the decoded path into the project and the path parameters.
// API Gateway hands over the path decoded, so `group%2Fproject` arrives as
// two segments: the project is whatever stands between the prefix and the
// route's fixed suffix. With a greedy variable the suffix's length varies:
// the project ends at the first place the fixed segments match, as the
// gateway prefers the route whose literal segments come first (the one of
// the smallest depth).
func (r Route) match(method, path string) (project string, params map[string]string, ok bool) {
	if r.Stream || r.Default || !(method == r.Method || (r.Method == http.MethodGet && method == http.MethodHead)) {
		return "", nil, false
	}
	if r.Exact != "" {
		return "", map[string]string{}, path == r.Exact
	}
	rest, ok := strings.CutPrefix(path, projectsPrefix)
	if !ok {
		return "", nil, false
	}
	segs := strings.Split(rest, "/")
	if !r.greedy() {
		return r.matchAt(segs, len(segs)-len(r.Suffix))
	}
	for n := 1; n+len(r.Suffix) <= len(segs); n++ {
		if project, params, ok := r.matchAt(segs, n); ok {
			return project, params, true
		}
	}
	return "", nil, false
}

// matchAt matches the suffix from segment n on: segs[:n] is the project.
func (r Route) matchAt(segs []string, n int) (string, map[string]string, bool) {
	if n < 1 {
		return "", nil, false
	}
	params := map[string]string{}
	for i, want := range r.Suffix {
		got := segs[n+i]
		if name, ok := strings.CutSuffix(want, "+}"); ok {
			got = strings.Join(segs[n+i:], "/")
			params[strings.TrimPrefix(name, "{")] = got
		} else if name, ok := strings.CutPrefix(want, "{"); ok {
			params[strings.TrimSuffix(name, "}")] = got
		} else if !slices.Contains(strings.Split(want, "|"), got) {
			return "", nil, false
		}
		if got == "" && r.greedy() {
			return "", nil, false // a gateway variable is never empty
		}
	}
	project := strings.Join(segs[:n], "/")
	return project, params, project != ""
}
