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

// listOf reads a list's pagination parameters, then the project whose jobs
// the caller may read, in GitLab's order of checks.
func (rq *request) listOf(q url.Values) (paginate.Params, *jobs.Project, error) {
	pg, err := paginate.Parse(q)
	if err != nil {
		return pg, nil, err
	}
	p, err := rq.buildsProject()
	return pg, p, err
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
	q := rq.URL.Query()
	scopes, err := parseScope(q, scopeOrHash)
	if err != nil {
		return err
	}
	pg, p, err := rq.listOf(q)
	if err != nil {
		return err
	}
	rng, err := projectJobsRange(scopes, pg)
	if err != nil {
		return err
	}
	page, err := rq.deps.Store.ProjectBuildsWith(rq.ctx(), rq.spec, p, rng)
	if err != nil {
		return err
	}
	// Unfiltered keyset cursors carry the ordinal, the key of their index.
	cursor := cursorID
	if len(scopes) == 0 {
		cursor = cursorOrdinal
	}
	return rq.writeList(w, p, page.Jobs, render.AppendJob, func() {
		pageHeaders(w.Header(), rq.pageLink(nil), pg, page, cursor, paginate.Uncounted)
	})
}

// projectJobsRange is the page of a project's builds that the parameters
// select; its errors come after the project's checks.
func projectJobsRange(scopes []jobs.Status, pg paginate.Params) (store.Range, error) {
	rng := store.Range{Statuses: scopes, Limit: pg.PerPage}
	if pg.Keyset {
		if pg.After.ID != 0 && pg.After.Ordinal == 0 && len(scopes) == 0 {
			return rng, paginate.ErrCursorInvalid
		}
		rng.After = store.Position(pg.After)
		return rng, nil
	}
	// A filtered offset page reads every row before it; past GitLab's
	// limit the client is sent to keyset pages, as GitLab does.
	// Unfiltered pages cost the same at any depth and keep no limit.
	if len(scopes) > 0 {
		if err := pg.CheckOffset(); err != nil {
			return rng, err
		}
	}
	rng.Skip = pg.Offset()
	return rng, nil
}

// projectJobsCached: only an unfiltered offset page past the first needs
// the project's exact build count (its key range counts from the top).
func projectJobsCached(rq *request) bool {
	q := rq.URL.Query()
	scopes, err := parseScope(q, scopeOrHash)
	if err != nil {
		return false
	}
	pg, err := paginate.Parse(q)
	return err == nil && (len(scopes) > 0 || pg.Keyset || pg.Offset() == 0)
}

// speculateProjectJobs starts the page's Query when the parameters are
// valid (else the list fails before any Query).
func speculateProjectJobs(rq *request, project store.ProjectRef) *store.Speculation {
	q := rq.URL.Query()
	scopes, err := parseScope(q, scopeOrHash)
	if err != nil {
		return nil
	}
	pg, err := paginate.Parse(q)
	if err != nil {
		return nil
	}
	rng, err := projectJobsRange(scopes, pg)
	if err != nil {
		return nil
	}
	return rq.deps.Store.SpeculateProjectBuilds(rq.ctx(), project, rng)
}

// cursorKey is what a keyset cursor carries of the page's last job.
type cursorKey int

const (
	cursorID      cursorKey = iota // the id, the sort key of every id-ordered index
	cursorOrdinal                  // the id and the build ordinal (a project's unfiltered builds)
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
		if cursor == cursorOrdinal {
			next.Ordinal = last.Ordinal
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
