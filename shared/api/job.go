package api

import (
	"math"
	"net/http"
	"strconv"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
)

// projectBuild is GitLab's find_build!: the job read during lookup, if it is
// a build of the project; bridges and other projects' jobs are not found.
func (rq *request) projectBuild(p *jobs.Project) (*jobs.Job, error) {
	j := rq.found.Job
	if j == nil || j.ProjectID != p.ID || j.IsBridge() {
		return nil, errRecordNotFound
	}
	return j, nil
}

// readableBuild is the build {job_id} names in a project whose jobs the
// caller may read.
func (rq *request) readableBuild() (*jobs.Project, *jobs.Job, error) {
	p, err := rq.buildsProject()
	if err != nil {
		return nil, nil, err
	}
	j, err := rq.projectBuild(p)
	return p, j, err
}

// getJob serves GET /projects/:id/jobs/:job_id in two store round trips:
// the lookup reads the job, and what it refers to, with the credentials.
func getJob(w http.ResponseWriter, rq *request) error {
	p, j, err := rq.readableBuild()
	if err != nil {
		return err
	}
	b, err := render.Marshal(render.NewJob(j, p, rq.found.Related, rq.deps.Now()), j.Extra)
	if err != nil {
		return err
	}
	writeTagged(w, rq.Request, b)
	return nil
}

const (
	// maxTraceLimit is GitLab's byte_limit ceiling (Gitlab::Ci::Trace::Stream::LIMIT_SIZE).
	maxTraceLimit = 512000
	// maxInlineTrace is the largest log served in the response body; a
	// Lambda response holds 6 MB, and JSON escaping of newlines and ANSI
	// escapes grows a log by about a fifth.
	maxInlineTrace = 4 << 20
)

// getJobTrace serves GET and HEAD /projects/:id/jobs/:job_id/trace: GitLab's
// answer, plus entity tags, conditional requests and byte ranges (see
// trace.go). A plain GET is one ranged S3 read, none when the job has no
// log.
func getJobTrace(w http.ResponseWriter, rq *request) error {
	offset, err := rq.queryInt("byte_offset", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	limit, err := rq.queryInt("byte_limit", 1, maxTraceLimit)
	if err != nil {
		return err
	}
	p, j, err := rq.readableBuild()
	if err != nil {
		return err
	}
	if j.DebugTrace && !rq.caller.AtLeast(jobs.Developer) {
		return errForbidden
	}
	return newTraceRequest(w, rq, p, j, offset, limit).serve()
}

// queryInt reads an optional integer query parameter within [lo, hi];
// absent is 0. Errors are Grape's.
func (rq *request) queryInt(name string, lo, hi int64) (int64, error) {
	v := rq.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, paramInvalid(name)
	}
	if n < lo || n > hi {
		return 0, paramValue(name)
	}
	return n, nil
}
