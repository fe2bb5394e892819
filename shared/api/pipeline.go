package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/paginate"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// maxCountedTotal is Kaminari's MAX_COUNT_LIMIT: GitLab leaves out X-Total,
// X-Total-Pages and rel="last" when a list has more rows than this. We count
// for free (the pipeline item keeps the counts) but answer as GitLab does.
const maxCountedTotal = 10000

// listPipelineJobs serves GET /projects/:id/pipelines/:pipeline_id/jobs.
func listPipelineJobs(w http.ResponseWriter, rq *request) error {
	return rq.listPipeline(w, jobs.Build, func(j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) any {
		return render.NewJob(j, p, rel, now)
	})
}

// listPipelineBridges serves GET /projects/:id/pipelines/:pipeline_id/bridges
// and its newer name, .../trigger_jobs.
func listPipelineBridges(w http.ResponseWriter, rq *request) error {
	return rq.listPipeline(w, jobs.Bridge, func(j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) any {
		return render.NewBridge(j, p, rel, now)
	})
}

// listPipeline lists the jobs of one kind of the pipeline read during lookup:
// one Query per index partition, then one BatchGetItem for what the page
// refers to. Totals come from the counts kept on the pipeline item.
func (rq *request) listPipeline(w http.ResponseWriter, kind jobs.Kind,
	entity func(*jobs.Job, *jobs.Project, *jobs.Related, time.Time) any) error {
	q := rq.URL.Query()
	scopes, err := parseScope(q, scopeList)
	if err != nil {
		return err
	}
	includeRetried, err := queryBool(q, "include_retried")
	if err != nil {
		return err
	}
	pg, p, err := rq.listOf(q)
	if err != nil {
		return err
	}
	pl := rq.found.Pipeline
	if pl == nil || pl.ProjectID != p.ID {
		return errRecordNotFound
	}
	rng := store.Range{Statuses: scopes, Limit: pg.PerPage, After: store.Position{ID: pg.After.ID},
		IncludeRetried: includeRetried}
	if !pg.Keyset {
		rng.Skip = pg.Offset()
	}
	page, err := rq.deps.Store.PipelineJobs(rq.ctx(), pl.ID, kind, rng)
	if err != nil {
		return err
	}
	body, err := rq.renderList(p, page.Jobs, entity)
	if err != nil {
		return err
	}
	// Grape's params, which GitLab's links carry, hold the declared defaults.
	pathParams := map[string]string{"pipeline_id": rq.params["pipeline_id"]}
	if kind == jobs.Build {
		pathParams["include_retried"] = strconv.FormatBool(includeRetried)
	}
	total := pl.Count(kind, scopes, includeRetried)
	if total > maxCountedTotal {
		total = paginate.Uncounted
	}
	pageHeaders(w.Header(), rq.pageLink(pathParams), pg, page, cursorID, total)
	writeTagged(w, rq.Request, body)
	return nil
}

// queryBool reads an optional Boolean parameter as Grape coerces it; absent
// or empty is false.
func queryBool(q url.Values, name string) (bool, error) {
	switch strings.ToLower(q.Get(name)) {
	case "", "0", "false", "f", "no", "n", "off":
		return false, nil
	case "1", "true", "t", "yes", "y", "on":
		return true, nil
	}
	return false, paramInvalid(name)
}
