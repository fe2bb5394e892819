package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
	return rq.listPipeline(w, jobs.Build, render.AppendJob)
}

// listPipelineBridges serves GET /projects/:id/pipelines/:pipeline_id/bridges
// and its newer name, .../trigger_jobs.
func listPipelineBridges(w http.ResponseWriter, rq *request) error {
	return rq.listPipeline(w, jobs.Bridge, render.AppendBridge)
}

// pipelineQuery is what a pipeline list's parameters select.
type pipelineQuery struct {
	scopes         []jobs.Status
	includeRetried bool
	pg             paginate.Params
	rng            store.Range
}

// parsePipelineQuery reads a pipeline list's parameters in GitLab's order.
func parsePipelineQuery(q url.Values) (pipelineQuery, error) {
	var pq pipelineQuery
	var err error
	if pq.scopes, err = parseScope(q, scopeList); err != nil {
		return pq, err
	}
	if pq.includeRetried, err = queryBool(q, "include_retried"); err != nil {
		return pq, err
	}
	if pq.pg, err = paginate.Parse(q); err != nil {
		return pq, err
	}
	pq.rng = store.Range{Statuses: pq.scopes, Limit: pq.pg.PerPage, After: store.Position{ID: pq.pg.After.ID},
		IncludeRetried: pq.includeRetried}
	if !pq.pg.Keyset {
		pq.rng.Skip = pq.pg.Offset()
	}
	return pq, nil
}

// speculatePipeline starts a pipeline list's Query when the parameters are
// valid.
func speculatePipeline(kind jobs.Kind) func(rq *request, _ store.ProjectRef) *store.Speculation {
	return func(rq *request, _ store.ProjectRef) *store.Speculation {
		pq, err := parsePipelineQuery(rq.URL.Query())
		if err != nil {
			return nil
		}
		return rq.deps.Store.SpeculatePipelineJobs(rq.ctx(), rq.pipelineID, kind, pq.rng)
	}
}

// listPipeline lists the jobs of one kind of the pipeline read during lookup:
// one Query per index partition, then one BatchGetItem for what the page
// refers to and the warm caches lack. Totals come from the counts kept on
// the pipeline item, read fresh.
func (rq *request) listPipeline(w http.ResponseWriter, kind jobs.Kind, entity appendEntity) error {
	pq, err := parsePipelineQuery(rq.URL.Query())
	if err != nil {
		return err
	}
	p, err := rq.buildsProject()
	if err != nil {
		return err
	}
	pl := rq.found.Pipeline
	if pl == nil || pl.ProjectID != p.ID {
		return errRecordNotFound
	}
	page, err := rq.deps.Store.PipelineJobsWith(rq.ctx(), rq.spec, pl.ID, kind, pq.rng)
	if err != nil {
		return err
	}
	// Grape's params, which GitLab's links carry, hold the declared defaults.
	pathParams := map[string]string{"pipeline_id": rq.params["pipeline_id"]}
	if kind == jobs.Build {
		pathParams["include_retried"] = strconv.FormatBool(pq.includeRetried)
	}
	total := pl.Count(kind, pq.scopes, pq.includeRetried)
	if total > maxCountedTotal {
		total = paginate.Uncounted
	}
	return rq.writeList(w, p, page.Jobs, entity, func() {
		pageHeaders(w.Header(), rq.pageLink(pathParams), pq.pg, page, cursorID, total)
	})
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
