package api

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/paginate"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// scopeForms says which of Rack's encodings of an array `scope` takes.
type scopeForms int

const (
	scopeList   scopeForms = iota // `scope` or `scope[]`; a hash (`scope[k]`) is invalid
	scopeOrHash                   // those, or a hash whose values are the list
)

// parseScope reads `scope` in the forms allowed; every value must be a
// status. An empty list means no filter.
func parseScope(q url.Values, forms scopeForms) ([]jobs.Status, error) {
	var values []string
	for k, vs := range q {
		switch {
		case k == "scope" || k == "scope[]":
			values = append(values, vs...)
		case strings.HasPrefix(k, "scope[") && strings.HasSuffix(k, "]"):
			if forms != scopeOrHash {
				return nil, paramInvalid("scope")
			}
			values = append(values, vs...)
		}
	}
	var out []jobs.Status
	seen := map[jobs.Status]bool{}
	for _, v := range values {
		if v == "" {
			continue
		}
		st, ok := jobs.ParseStatus(v)
		if !ok {
			return nil, paramValue("scope")
		}
		if !seen[st] {
			seen[st] = true
			out = append(out, st)
		}
	}
	return out, nil
}

// parseRef reads `ref`, a String: the last value given, "" when absent,
// blank or only whitespace (GitLab ignores those). An array or hash form
// is not a String (Grape's 400).
func parseRef(q url.Values) (string, error) {
	for k := range q {
		if strings.HasPrefix(k, "ref[") {
			return "", paramInvalid("ref")
		}
	}
	vs := q["ref"]
	if len(vs) == 0 || strings.TrimSpace(vs[len(vs)-1]) == "" {
		return "", nil
	}
	return vs[len(vs)-1], nil
}

// projectJobsQuery is what GET /projects/:id/jobs asks for.
type projectJobsQuery struct {
	scopes []jobs.Status
	ref    string
	pg     paginate.Params
}

// parseProjectJobs reads the list's parameters in Grape's order: scope,
// ref, then pagination.
func parseProjectJobs(q url.Values) (projectJobsQuery, error) {
	var pq projectJobsQuery
	var err error
	if pq.scopes, err = parseScope(q, scopeOrHash); err != nil {
		return pq, err
	}
	if pq.ref, err = parseRef(q); err != nil {
		return pq, err
	}
	pq.pg, err = paginate.Parse(q)
	return pq, err
}

// countsDown says whether the page is an offset page past the first of an
// ordinal index (no scope): its key range counts down from the list's
// exact build count.
func (pq projectJobsQuery) countsDown() bool {
	return len(pq.scopes) == 0 && !pq.pg.Keyset && pq.pg.Offset() > 0
}

// pageLink is the base of a list's page links: this request's URL with its
// project path re-encoded (API Gateway decoded it) and every parameter,
// path parameters included, as GitLab builds them.
func (rq *request) pageLink(pathParams map[string]string) paginate.Link {
	scheme := rq.Header.Get("X-Forwarded-Proto")
	if scheme == "" {
		scheme = "https"
	}
	rest := strings.TrimPrefix(rq.URL.Path, projectsPrefix+rq.projectID)
	params := rq.URL.Query()
	params.Set("id", rq.projectID)
	for k, v := range pathParams {
		params.Set(k, v)
	}
	return paginate.Link{Base: scheme + "://" + rq.Host + projectsPrefix + url.PathEscape(rq.projectID) + rest, Params: params}
}

// listProjectJobs serves GET /projects/:id/jobs.
func listProjectJobs(w http.ResponseWriter, rq *request) error {
	pq, err := parseProjectJobs(rq.URL.Query())
	if err != nil {
		return err
	}
	p, err := rq.buildsProject()
	if err != nil {
		return err
	}
	rng, err := pq.projectJobsRange()
	if err != nil {
		return err
	}
	rng.RefBuilds = rq.found.RefBuilds
	page, err := rq.deps.Store.ProjectBuildsWith(rq.ctx(), rq.spec, p, rng)
	if err != nil {
		return err
	}
	// Cursors without scope carry the ordinal, the key of their index: the
	// build ordinal, or with ref the ref ordinal.
	cursor := cursorID
	switch {
	case len(pq.scopes) > 0:
	case pq.ref != "":
		cursor = cursorRefOrdinal
	default:
		cursor = cursorOrdinal
	}
	return rq.writeList(w, p, page.Jobs, render.AppendJob, func() {
		pageHeaders(w.Header(), rq.pageLink(nil), pq.pg, page, cursor, paginate.Uncounted)
	})
}

// projectJobsRange is the page of a project's builds that the parameters
// select; its errors come after the project's checks.
func (pq projectJobsQuery) projectJobsRange() (store.Range, error) {
	pg := pq.pg
	rng := store.Range{Statuses: pq.scopes, Ref: pq.ref, Limit: pg.PerPage}
	if pg.Keyset {
		// A cursor of another list lacks the ordinal this one's index needs.
		switch {
		case pg.After.ID == 0 || len(pq.scopes) > 0:
		case pq.ref != "":
			if pg.After.RefOrdinal == 0 {
				return rng, paginate.ErrCursorInvalid
			}
			rng.After.Ordinal = pg.After.RefOrdinal
		default:
			if pg.After.Ordinal == 0 {
				return rng, paginate.ErrCursorInvalid
			}
			rng.After.Ordinal = pg.After.Ordinal
		}
		rng.After.ID = pg.After.ID
		return rng, nil
	}
	// A filtered offset page reads every row before it; past GitLab's
	// limit the client is sent to keyset pages, as GitLab does.
	// Unfiltered pages, a ref's too, cost the same at any depth and keep
	// no limit.
	if len(pq.scopes) > 0 {
		if err := pg.CheckOffset(); err != nil {
			return rng, err
		}
	}
	rng.Skip = pg.Offset()
	return rng, nil
}

// projectJobsCached: only an unfiltered offset page past the first needs
// the project's exact build count (its key range counts from the top); a
// ref's count is its own item (projectJobsRef).
func projectJobsCached(rq *request) bool {
	pq, err := parseProjectJobs(rq.URL.Query())
	return err == nil && (pq.ref != "" || !pq.countsDown())
}

// projectJobsRef names the ref whose build count a ref's offset page past
// the first counts down from, for the lookup to read fresh.
func projectJobsRef(rq *request) string {
	pq, err := parseProjectJobs(rq.URL.Query())
	if err != nil || !pq.countsDown() {
		return ""
	}
	return pq.ref
}

// speculateProjectJobs starts the page's Query when the parameters are
// valid (else the list fails before any Query).
func speculateProjectJobs(rq *request, project store.ProjectRef) *store.Speculation {
	pq, err := parseProjectJobs(rq.URL.Query())
	if err != nil {
		return nil
	}
	rng, err := pq.projectJobsRange()
	if err != nil {
		return nil
	}
	return rq.deps.Store.SpeculateProjectBuilds(rq.ctx(), project, rng)
}

// cursorKey is what a keyset cursor carries of the page's last job.
type cursorKey int

const (
	cursorID         cursorKey = iota // the id, the sort key of every id-ordered index
	cursorOrdinal                     // the id and the build ordinal (a project's unfiltered builds)
	cursorRefOrdinal                  // the id and the ref ordinal (a ref's builds without scope)
)

// pageHeaders writes a list page's pagination headers: in keyset mode the
// cursor after the page's last job, else the offset headers with the total
// (or paginate.Uncounted).
func pageHeaders(h http.Header, link paginate.Link, pg paginate.Params, page *store.Page, cursor cursorKey, total int64) {
	if !pg.Keyset {
		paginate.OffsetHeaders(h, link, pg, page.More, total)
		return
	}
	var next *paginate.Cursor
	if page.More {
		last := page.Jobs[len(page.Jobs)-1]
		next = &paginate.Cursor{ID: last.ID}
		switch cursor {
		case cursorOrdinal:
			next.Ordinal = last.Ordinal
		case cursorRefOrdinal:
			next.RefOrdinal = last.RefOrdinal
		}
	}
	paginate.KeysetHeaders(h, link, pg, next)
}

// appendEntity appends one job's entity (render.AppendJob, AppendBridge).
type appendEntity func([]byte, *jobs.Job, *jobs.Project, *jobs.Related, time.Time) ([]byte, error)

// pageBuffers recycles the buffers pages are rendered into: a page is tens
// of kilobytes, garbage on every request otherwise.
var pageBuffers = sync.Pool{New: func() any { return new([]byte) }}

// writeList renders a page of jobs as a JSON array of entities, reading
// what they share (see store.Related), and writes it with status 200 and
// the headers that headers sets, once the page rendered.
func (rq *request) writeList(w http.ResponseWriter, p *jobs.Project, js []*jobs.Job, entity appendEntity, headers func()) error {
	rel, err := rq.deps.Store.Related(rq.ctx(), js...)
	if err != nil {
		return err
	}
	now := rq.deps.Now()
	buf := pageBuffers.Get().(*[]byte)
	defer pageBuffers.Put(buf)
	out := append((*buf)[:0], '[')
	for i, j := range js {
		if i > 0 {
			out = append(out, ',')
		}
		if out, err = entity(out, j, p, rel, now); err != nil {
			return err
		}
	}
	out = append(out, ']')
	*buf = out
	headers()
	writeTagged(w, rq.Request, out)
	return nil
}
