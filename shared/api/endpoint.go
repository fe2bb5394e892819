// Package api holds the HTTP handlers of the Jobs API, one per endpoint (and
// so one per Lambda function): each parses and authorizes the request, calls
// the store and the domain, and renders GitLab's response.
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/auth"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/files"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// Deps are what handlers work with, built once per cold start.
type Deps struct {
	Store *store.Store
	Files files.Store // nil in the functions that read no file (their bootstraps link no S3)
	Now   func() time.Time
	Log   *slog.Logger
	// Budget bounds the time a request's DynamoDB and S3 calls may take.
	Budget Budget
}

// Budget is how long a request may wait on its dependencies: Max after it
// began (0: no bound of its own), and in any case Reserve before the
// function's deadline (the invocation context's), so that a stalled
// dependency still gets GitLab's 503 out before Lambda ends the function.
type Budget struct {
	Max, Reserve time.Duration
}

// bound is ctx with the budget's deadline.
func (b Budget) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if ok {
		deadline = deadline.Add(-b.Reserve)
	}
	if b.Max > 0 {
		if d := time.Now().Add(b.Max); !ok || d.Before(deadline) {
			deadline, ok = d, true
		}
	}
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline)
}

// endpoint is one row of the endpoints table.
type endpoint struct {
	route   Route
	rule    auth.Rule
	public  bool // anonymous callers reach serve (else 401)
	related bool // the lookup reads what the {job_id} job refers to (users, pipeline, runner)
	// tokenProject makes a job token's own project the request's project,
	// for routes without one (GET /job).
	tokenProject bool
	// finishesErase makes a request that reads a job whose erase left its
	// files pending delete them (finishErase); the function needs the
	// erase's grants for it.
	finishesErase bool
	serve         func(w http.ResponseWriter, rq *request) error // nil: GitLab's 404 (the $default route)
	// stream handles the table's stream events, for a function that no
	// route reaches.
	stream func(ctx context.Context, d *Deps, ev events.DynamoDBEvent) error
	// speculate, for lists, starts the page's Query alongside the lookup
	// (nil when the request does not say enough to guess it).
	speculate func(rq *request, project store.ProjectRef) *store.Speculation
	// cachedProject says whether the request may work with the project as
	// the warm cache holds it (read up to store.WarmTTL ago): reads that
	// need no exact build count. Nil: never (actions).
	cachedProject func(rq *request) bool
	// countedRef names a ref whose build count the lookup reads with the
	// project (store.Lookup.Ref), or "" (nil: never).
	countedRef func(rq *request) string
	// createsBuild: the action may create a build of the {job_id} job's
	// ref, so the lookup reads that ref's build count too
	// (store.Lookup.JobRef).
	createsBuild bool
}

// always is cachedProject for reads that never need the build count.
func always(*request) bool { return true }

// handler serves one function's endpoint.
type handler struct {
	name Function
	endpoint
	deps *Deps
}

// request is one request on its way through an endpoint.
type request struct {
	*http.Request
	deps       *Deps
	params     map[string]string
	creds      auth.Credentials
	found      *store.Found
	caller     jobs.Caller
	projectID  string     // the :id parameter as given, decoded
	jobID      int64      // the {job_id} parameter, parsed
	pipelineID int64      // the {pipeline_id} parameter, parsed
	once       store.Once // the action's Idempotency-Key record, if the client sent one
	// spec is the list page's Query, started before authorization; only
	// serve, after it, may take its page.
	spec *store.Speculation
}

var numericID = regexp.MustCompile(`^-?\d+$`)

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

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.deps.Budget.bound(r.Context())
	defer cancel()
	observe(w, r.WithContext(ctx), string(h.name), h.deps.Log, h.handle)
}

// handle serves a request in GitLab's order of checks: the route, the
// credentials (401), the path ids' types (Grape's 400), then the handler's
// own parameters, project, job and abilities.
func (h *handler) handle(w http.ResponseWriter, r *http.Request) error {
	project, params, ok := h.route.match(r.Method, r.URL.Path)
	if !ok || h.serve == nil {
		return errRouteNotFound
	}
	rq := &request{Request: r, deps: h.deps, params: params, projectID: project,
		creds: auth.FromRequest(r, h.rule.JobTokens)}
	jobID, badJob := pathID(params, "job_id")
	pipelineID, badPipeline := pathID(params, "pipeline_id")
	once, badOnce := h.idempotencyKey(r, rq.creds, jobID)
	lookup := store.Lookup{TokenHash: rq.creds.Hash(), Project: projectRef(project), JobID: jobID,
		PipelineID: pipelineID, Related: h.related, TokenProject: h.tokenProject, Once: once.Key, JobRef: h.createsBuild}
	lookup.CachedProject = h.cachedProject != nil && h.cachedProject(rq)
	if h.countedRef != nil {
		lookup.Ref = h.countedRef(rq)
	}
	if h.speculate != nil && badJob == nil && badPipeline == nil && !lookup.Project.IsZero() {
		rq.pipelineID = pipelineID
		rq.spec = h.speculate(rq, lookup.Project)
		// A request turned away does not wait for the Query: its answer
		// takes no longer, and says no more, than without it.
		defer rq.spec.Cancel()
	}
	var err error
	if rq.found, err = h.deps.Store.Lookup(r.Context(), lookup); err != nil {
		return err
	}
	if rq.caller, err = auth.Authenticate(rq.creds, rq.found.Identity, h.rule, h.deps.Now()); err != nil {
		return err
	}
	if rq.caller.Anonymous() && !h.public {
		return errUnauthorized
	}
	if err := cmp.Or(badJob, badPipeline, badOnce); err != nil {
		return err
	}
	rq.jobID, rq.pipelineID, rq.once = jobID, pipelineID, once
	// An erase that could not delete the job's files left them pending:
	// reading its log or erasing it finishes it (no cost for other jobs).
	if h.finishesErase {
		rq.found.Job = rq.finishErase(rq.found.Job)
	}
	return h.serve(w, rq)
}

// IdempotencyKeyHeader names an action's repeat (beyond GitLab; README
// "Idempotent actions"): at most maxIdempotencyKey bytes.
const (
	IdempotencyKeyHeader = "Idempotency-Key"
	maxIdempotencyKey    = 255
	onceTTL              = 24 * time.Hour
)

// idempotencyKey is the Once of an action request that carries the header,
// scoped to its credential, job and action; other routes ignore it.
func (h *handler) idempotencyKey(r *http.Request, c auth.Credentials, jobID int64) (store.Once, error) {
	k := r.Header.Get(IdempotencyKeyHeader)
	if !h.rule.Write || k == "" || c.Secret == "" {
		return store.Once{}, nil
	}
	if len(k) > maxIdempotencyKey {
		return store.Once{}, paramInvalid(IdempotencyKeyHeader)
	}
	now := h.deps.Now()
	return store.Once{Key: store.OnceKey(c.Hash(), jobID, string(h.name), k), At: now, Expires: now.Add(onceTTL)}, nil
}

// pathID parses the integer path parameter name, if the route has it; a
// non-integer is Grape's "<name> is invalid" (and reads nothing). An
// integer beyond int64 is still an Integer to Grape, one that names no
// record: 0, which reads nothing and so finds nothing (GitLab's 404).
func pathID(params map[string]string, name string) (int64, error) {
	v, ok := params[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, nil
	}
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
	if text, ok := e.Body.(plainText); ok {
		writeBody(w, e.Status, "text/plain; charset=utf-8", []byte(text))
		return
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
