package api

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/files"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// emptyTag is the entity tag of an empty log (a job that never logged, or
// an erased one): the MD5 of no bytes, the tag S3 gives an empty object, so
// that every trace tag is S3's tag of the bytes served.
const emptyTag = `"d41d8cd98f00b204e9800998ecf8427e"`

// traceRequest is one GET or HEAD of a job's log. Its entity tag is the
// log object's S3 ETag, a strong validator of its bytes (S3 changes it with
// every write), so that the tag we send, the tag S3 sends on the redirect
// path and the tag S3 compares for If-None-Match are one and the same.
type traceRequest struct {
	w       http.ResponseWriter
	rq      *request
	project int64
	job     *jobs.Job
	// offset and limit are GitLab's byte_offset and byte_limit: they select
	// the representation, a slice of the log; with either, Range is
	// ignored (served as GitLab does) and no Accept-Ranges is sent.
	offset, limit int64
	ranges        bool       // Range is served on this resource
	rng           *byteRange // the Range asked for, nil if none or ignored
	ifRange       string
	noneMatch     tagList
	since         time.Time // If-Modified-Since
}

func newTraceRequest(w http.ResponseWriter, rq *request, p *jobs.Project, j *jobs.Job, offset, limit int64) *traceRequest {
	t := &traceRequest{w: w, rq: rq, project: p.ID, job: j, offset: offset, limit: limit,
		ranges: offset == 0 && limit == 0, noneMatch: noneMatch(rq.Header), since: modifiedSince(rq.Header)}
	if t.ranges {
		// A field sent more than once is one comma-separated list (RFC 9110 §5.3).
		t.rng = parseRange(strings.Join(rq.Header.Values("Range"), ","))
		t.ifRange = strings.Join(rq.Header.Values("If-Range"), ", ")
	}
	return t
}

func (t *traceRequest) serve() error {
	if t.ranges {
		t.w.Header().Set("Accept-Ranges", "bytes")
	}
	switch {
	case !t.job.HasTrace || t.job.ErasedAt != nil:
		return t.serveEmpty()
	case t.rq.Method == http.MethodHead:
		return t.serveHead()
	case t.rng == nil && !t.noneMatch.present() && t.since.IsZero():
		return t.servePlain()
	}
	return t.serveConditional()
}

// serveEmpty answers for a job without a log, asking S3 nothing: an empty
// 200, a 304 for the empty tag, or 416 for any range of no bytes.
func (t *traceRequest) serveEmpty() error {
	t.w.Header().Set("ETag", emptyTag)
	if t.noneMatch.matches(emptyTag) {
		notModified(t.w)
		return nil
	}
	if t.rng != nil {
		return rangeNotSatisfiable(0)
	}
	t.header(0)
	writeBody(t.w, http.StatusOK, "text/plain", nil)
	return nil
}

// servePlain is GitLab's trace, as GitLab clients get it: a log too big
// for a Lambda response (6 MB after JSON escaping) is sent to S3, as curl
// --location and the GitLab clients follow; the rest is one ranged read.
func (t *traceRequest) servePlain() error {
	if t.limit == 0 && t.job.TraceSize-t.offset > maxInlineTrace {
		return t.redirect()
	}
	o, err := t.rq.deps.Files.ReadTrace(t.rq.ctx(), t.project, t.job.ID,
		files.TraceRead{Range: files.OffsetRange(t.offset, t.limit)})
	if err != nil {
		return err
	}
	switch {
	case o.Missing:
		t.w.Header().Set("ETag", emptyTag)
	case !o.Unsatisfiable: // an offset past the end: empty, as GitLab answers
		t.validators(o)
	}
	t.header(int64(len(o.Data)))
	writeBody(t.w, http.StatusOK, "text/plain", o.Data)
	return nil
}

// serveHead answers HEAD from the object's metadata: one HeadObject, no
// byte read, whatever the log's size (a HEAD never redirects: the presigned
// URL is a GET's).
func (t *traceRequest) serveHead() error {
	o, err := t.rq.deps.Files.StatTrace(t.rq.ctx(), t.project, t.job.ID, t.noneMatch.single())
	if err != nil {
		return err
	}
	return t.answer(o)
}

// serveConditional answers a conditional or ranged GET with one S3 read in
// the usual cases: S3 compares the tag (a 304 reads nothing) and reads at
// most what a response can carry. A range is asked from one byte before its
// start, so that a follower's "bytes=<length>-" of an unchanged log is
// still satisfiable and S3 answers its If-None-Match. A log the store knows
// to be too big for the response gets a HeadObject instead, then a 304, a
// redirect or the range.
func (t *traceRequest) serveConditional() error {
	fs, ctx := t.rq.deps.Files, t.rq.ctx()
	if t.wanted(t.job.TraceSize) > maxInlineTrace {
		o, err := fs.StatTrace(ctx, t.project, t.job.ID, t.noneMatch.single())
		if err != nil {
			return err
		}
		return t.answer(o)
	}
	// No more than a response carries, even if the log has outgrown what
	// the store says: the length S3 reports then sends the client to S3.
	limit := t.limit
	if limit == 0 {
		limit = maxInlineTrace
	}
	rd := files.TraceRead{Range: files.OffsetRange(t.offset, limit), IfNoneMatch: t.noneMatch.single(),
		IfModifiedSince: t.since}
	if t.rng != nil {
		rd.Range = t.rng.s3Range()
	}
	o, err := fs.ReadTrace(ctx, t.project, t.job.ID, rd)
	if err != nil {
		return err
	}
	if o.Unsatisfiable {
		// Shorter than the range (or empty): its length and tag decide
		// between 304, 416 and 200.
		if o, err = fs.StatTrace(ctx, t.project, t.job.ID, ""); err != nil {
			return err
		}
	}
	return t.answer(o)
}

// wanted is how many bytes the request asks of a log of size bytes.
func (t *traceRequest) wanted(size int64) int64 {
	if t.rng != nil {
		if first, last, ok := t.rng.resolve(size); ok {
			return last - first + 1
		}
		return 0
	}
	_, n := t.slice(size)
	return n
}

// slice is the representation's place in a log of size bytes: all of it,
// or GitLab's byte_offset/byte_limit window.
func (t *traceRequest) slice(size int64) (start, n int64) {
	start = min(t.offset, size)
	n = size - start
	if t.limit > 0 {
		n = min(n, t.limit)
	}
	return start, n
}

// answer decides from what S3 said: 304 when the client's tag or date is
// still current, 416 for a range past the end, 206 for a range, else 200
// (or the redirect when the bytes do not fit a response).
func (t *traceRequest) answer(o *files.TraceObject) error {
	switch {
	case o.Missing:
		return t.serveEmpty()
	case o.NotModified:
		// S3 compared the one tag the client sent (or its date).
		if tag := t.noneMatch.single(); tag != "" {
			t.w.Header().Set("ETag", tag)
		}
		notModified(t.w)
		return nil
	}
	t.validators(o)
	if t.noneMatch.present() && t.noneMatch.matches(o.ETag) ||
		!t.since.IsZero() && !o.LastModified.IsZero() && !o.LastModified.After(t.since) {
		notModified(t.w)
		return nil
	}
	first, n := t.slice(o.Size)
	status := http.StatusOK
	if t.rng != nil && t.ifRangeHolds(o) {
		f, last, ok := t.rng.resolve(o.Size)
		if !ok {
			return rangeNotSatisfiable(o.Size)
		}
		first, n, status = f, last-f+1, http.StatusPartialContent
		t.w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(f, 10)+"-"+strconv.FormatInt(last, 10)+"/"+strconv.FormatInt(o.Size, 10))
	}
	if t.rq.Method == http.MethodHead {
		t.header(n)
		t.w.Header().Set("Content-Type", "text/plain")
		t.w.WriteHeader(status)
		return nil
	}
	if n > maxInlineTrace {
		t.w.Header().Del("Content-Range")
		return t.redirect()
	}
	data, err := t.bytes(o, first, n)
	if err != nil {
		return err
	}
	t.header(n)
	writeBody(t.w, status, "text/plain", data)
	return nil
}

// bytes are n bytes of the log from first: out of what was read already,
// or one more ranged read (an If-Range that failed wants the whole log).
func (t *traceRequest) bytes(o *files.TraceObject, first, n int64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if first >= o.Start && first+n <= o.Start+int64(len(o.Data)) {
		return o.Data[first-o.Start : first-o.Start+n], nil
	}
	again, err := t.rq.deps.Files.ReadTrace(t.rq.ctx(), t.project, t.job.ID,
		files.TraceRead{Range: files.OffsetRange(first, n)})
	if err != nil {
		return nil, err
	}
	return again.Data, nil
}

// ifRangeHolds is If-Range: the range is served only if the client's
// validator is current, an entity tag compared strongly or an exact date.
func (t *traceRequest) ifRangeHolds(o *files.TraceObject) bool {
	switch v := t.ifRange; {
	case v == "":
		return true
	case strings.HasPrefix(v, `"`):
		return v == o.ETag
	case strings.HasPrefix(v, "W/"):
		return false
	default:
		d, err := http.ParseTime(v)
		return err == nil && !o.LastModified.IsZero() && d.Equal(o.LastModified.Truncate(time.Second))
	}
}

// validators sends the log's entity tag and modification date.
func (t *traceRequest) validators(o *files.TraceObject) {
	if o.ETag != "" {
		t.w.Header().Set("ETag", o.ETag)
	}
	if !o.LastModified.IsZero() {
		t.w.Header().Set("Last-Modified", o.LastModified.UTC().Format(http.TimeFormat))
	}
}

// header sets what every trace body carries: GitLab's Content-Disposition
// and, for HEAD, the length GET would send.
func (t *traceRequest) header(n int64) {
	h := t.w.Header()
	h.Set("Content-Disposition", `infile; filename="`+strconv.FormatInt(t.job.ID, 10)+`.log"`)
	if t.rq.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
}

// redirect sends the client to a presigned S3 GET of the whole log. Its
// Range and If-None-Match headers travel with it (they are not signed), and
// S3 serves them with the same entity tag.
func (t *traceRequest) redirect() error {
	url, err := t.rq.deps.Files.TraceURL(t.rq.ctx(), t.project, t.job.ID, 15*time.Minute)
	if err != nil {
		return err
	}
	t.w.Header().Del("ETag")
	t.w.Header().Del("Last-Modified")
	http.Redirect(t.w, t.rq.Request, url, http.StatusFound)
	return nil
}

func rangeNotSatisfiable(size int64) *Error {
	e := message(http.StatusRequestedRangeNotSatisfiable, "416 Range Not Satisfiable")
	e.Header = map[string]string{"Content-Range": "bytes */" + strconv.FormatInt(size, 10)}
	return e
}

// byteRange is one range of a Range header: first-last, first- (last < 0)
// or the suffix -n.
type byteRange struct {
	first, last int64
	suffix      bool
}

// parseRange reads "bytes=a-b", "bytes=a-" and "bytes=-n". Anything else
// (another unit, several ranges, bad syntax) is ignored and the whole log
// served, as RFC 9110 §14.2 allows.
func parseRange(v string) *byteRange {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0 && s[0] != '+'
	}
	if a == "" {
		n, ok := num(b)
		if !ok {
			return nil
		}
		return &byteRange{first: n, suffix: true}
	}
	first, ok := num(a)
	if !ok {
		return nil
	}
	if b == "" {
		return &byteRange{first: first, last: -1}
	}
	last, ok := num(b)
	if !ok || last < first {
		return nil
	}
	return &byteRange{first: first, last: last}
}

// resolve places the range in a log of size bytes (RFC 9110 §14.1.1);
// false if it is not satisfiable.
func (r *byteRange) resolve(size int64) (first, last int64, ok bool) {
	if r.suffix {
		if r.first == 0 || size == 0 {
			return 0, 0, false
		}
		return max(size-r.first, 0), size - 1, true
	}
	if r.first >= size {
		return 0, 0, false
	}
	last = size - 1
	if r.last >= 0 {
		last = min(r.last, last)
	}
	return r.first, last, true
}

// s3Range is what to ask S3 for the range: from one byte before its start
// (so that S3 can still compare the tag when nothing was added), and no
// more than a response can carry. A suffix of no bytes asks for one, so
// that S3 says the length.
func (r *byteRange) s3Range() string {
	if r.suffix {
		return "bytes=-" + strconv.FormatInt(min(max(r.first, 1), maxInlineTrace+1), 10)
	}
	from := max(r.first-1, 0)
	to := from + min(maxInlineTrace, math.MaxInt64-from)
	if r.last >= 0 {
		to = min(to, r.last)
	}
	return "bytes=" + strconv.FormatInt(from, 10) + "-" + strconv.FormatInt(to, 10)
}
