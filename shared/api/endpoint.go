// Package api holds the HTTP handlers of the Jobs API, one per endpoint (and
// so one per Lambda function): each parses and authorizes the request, calls
// the store and the domain, and renders GitLab's response.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/auth"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// Deps are what handlers work with, built once per cold start.
type Deps struct {
	Store *store.Store
	Files *jobfiles.Store
	Now   func() time.Time
	Log   *slog.Logger
}

const projectsPrefix = "/api/v4/projects/"

// endpoint describes one route and how to serve it.
type endpoint struct {
	name    string   // the function folder, for logs
	method  string   // GET (which serves HEAD too) or POST
	path    []string // segments after /api/v4/projects/<project>; "{x}" captures one, "a|b" matches either
	exact   string   // or a fixed path, for routes without a project
	rule    auth.Rule
	public  bool   // anonymous callers reach serve (else 401)
	jobID   string // the path parameter naming a job to read during lookup
	related bool   // read that job's users, pipeline and runner during lookup
	serve   func(w http.ResponseWriter, rq *request) error
	deps    *Deps

	pipelineID   string // the path parameter naming a pipeline to read during lookup
	tokenProject bool   // a job token's own project is the request's project (GET /job)
}

// request is one request on its way through an endpoint.
type request struct {
	*http.Request
	deps      *Deps
	params    map[string]string
	creds     auth.Credentials
	found     *store.Found
	caller    jobs.Caller
	projectID string // the :id parameter as given, decoded
}

var numericID = regexp.MustCompile(`^-?\d+$`)

// match splits the decoded path into the project and the path parameters.
// API Gateway hands over the path decoded, so `group%2Fproject` arrives as
// two segments: the project is whatever stands between the prefix and the
// route's fixed suffix.
func (e *endpoint) match(path string) (project string, params map[string]string, ok bool) {
	params = map[string]string{}
	if e.exact != "" {
		return "", params, path == e.exact
	}
	rest, ok := strings.CutPrefix(path, projectsPrefix)
	if !ok {
		return "", nil, false
	}
	segs := strings.Split(rest, "/")
	n := len(segs) - len(e.path)
	if n < 1 {
		return "", nil, false
	}
	for i, want := range e.path {
		got := segs[n+i]
		if name, ok := strings.CutPrefix(want, "{"); ok {
			params[strings.TrimSuffix(name, "}")] = got
		} else if !slices.Contains(strings.Split(want, "|"), got) {
			return "", nil, false
		}
	}
	project = strings.Join(segs[:n], "/")
	return project, params, project != ""
}

// projectRef reads the :id parameter as GitLab's find_project does: an
// integer is an id, anything with a slash a full path; anything else finds
// nothing (the zero ref).
func projectRef(id string) store.ProjectRef {
	if numericID.MatchString(id) {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			return store.ProjectRef{}
		}
		return store.ProjectRef{ID: n}
	}
	if strings.Contains(id, "/") {
		return store.ProjectRef{Path: id}
	}
	return store.ProjectRef{}
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	observe(w, r, e.name, e.deps.Log, e.handle)
}

func (e *endpoint) handle(w http.ResponseWriter, r *http.Request) error {
	methodOK := r.Method == e.method || (e.method == http.MethodGet && r.Method == http.MethodHead)
	project, params, ok := e.match(r.URL.Path)
	if !methodOK || !ok {
		return errRouteNotFound
	}
	rq := &request{Request: r, deps: e.deps, params: params, projectID: project,
		creds: auth.FromRequest(r, e.rule.JobTokens)}
	lookup := store.Lookup{TokenHash: rq.creds.Hash(), Project: projectRef(project), Related: e.related,
		TokenProject: e.tokenProject}
	if e.jobID != "" {
		lookup.JobID, _ = strconv.ParseInt(params[e.jobID], 10, 64)
	}
	if e.pipelineID != "" {
		lookup.PipelineID, _ = strconv.ParseInt(params[e.pipelineID], 10, 64)
	}
	var err error
	if rq.found, err = e.deps.Store.Lookup(r.Context(), lookup); err != nil {
		return err
	}
	if rq.caller, err = auth.Authenticate(rq.creds, rq.found, e.rule, e.deps.Now()); err != nil {
		return err
	}
	if rq.caller.Anonymous() && !e.public {
		return errUnauthorized
	}
	return e.serve(w, rq)
}

// intParam reads an integer path parameter; Grape answers "<name> is invalid".
func (rq *request) intParam(name string) (int64, error) {
	n, err := strconv.ParseInt(rq.params[name], 10, 64)
	if err != nil {
		return 0, paramInvalid(name)
	}
	return n, nil
}

// readableProject is GitLab's find_project!: a project the caller cannot see
// is as missing as one that does not exist. A job token works only in its
// own project.
func (rq *request) readableProject() (*jobs.Project, error) {
	p := rq.found.Project
	if p == nil || !rq.caller.CanReadProject(p) {
		return nil, errProjectNotFound
	}
	if t := rq.caller.Token; t != nil && t.IsJobToken() && t.ProjectID != p.ID {
		source := t.ProjectPath
		if source == "" {
			source = "project #" + strconv.FormatInt(t.ProjectID, 10)
		}
		return nil, forbidden(fmt.Sprintf("Authentication by CI/CD job token not allowed from %s to project #%d.", source, p.ID))
	}
	return p, nil
}

// buildsProject is a readable project whose jobs the caller may read.
func (rq *request) buildsProject() (*jobs.Project, error) {
	p, err := rq.readableProject()
	if err != nil {
		return nil, err
	}
	if !rq.caller.CanReadBuilds(p) {
		return nil, errForbidden
	}
	return p, nil
}

func (rq *request) ctx() context.Context { return rq.Context() }

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, errInternal)
		return
	}
	writeBody(w, status, "application/json", b)
}

func writeBody(w http.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *Error) {
	for k, v := range e.Header {
		w.Header().Set(k, v)
	}
	b, _ := json.Marshal(e.Body)
	writeBody(w, e.Status, "application/json", b)
}

// headWriter answers HEAD as GET without the body, as Grape does.
type headWriter struct{ http.ResponseWriter }

func (headWriter) Write(b []byte) (int, error) { return len(b), nil }

// statusWriter remembers the status for the request log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
