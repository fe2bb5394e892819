package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

const tracePath = "/api/v4/projects/1/jobs/42/trace"

// traceCase is one trace request and what it must answer.
type traceCase struct {
	name    string
	method  string // GET if empty
	query   string
	header  map[string]string
	status  int
	body    string // for GET
	length  string // Content-Length of a HEAD
	crange  string // Content-Range
	s3Calls map[string]int
}

func (tc traceCase) check(t *testing.T, d *fixture, path string) { tc.run(t, d, path, true) }

// checkStatusOnly is check without the body (a redirect's).
func (tc traceCase) checkStatusOnly(t *testing.T, d *fixture, path string) {
	tc.run(t, d, path, tc.status != 302)
}

func (tc traceCase) run(t *testing.T, d *fixture, path string, body bool) {
	t.Helper()
	d.Counter.Reset()
	method := tc.method
	if method == "" {
		method = http.MethodGet
	}
	w := d.call(t, "get-job-trace", method, path+tc.query, with(tc.header, "PRIVATE-TOKEN", demo.TokenMaintainer))
	if w.Code != tc.status || body && w.Body.String() != tc.body {
		t.Errorf("got %d %.80q (%d bytes), want %d %.80q (%d bytes)", w.Code, w.Body, w.Body.Len(), tc.status, tc.body, len(tc.body))
	}
	if got := w.Header().Get("Content-Range"); got != tc.crange {
		t.Errorf("Content-Range %q, want %q", got, tc.crange)
	}
	if got := w.Header().Get("Content-Length"); method == http.MethodHead && got != tc.length {
		t.Errorf("Content-Length %q, want %q", got, tc.length)
	}
	calls := d.Counter.Calls()
	s3 := map[string]int{}
	for _, op := range []string{"GetObject", "HeadObject"} {
		if calls[op] > 0 {
			s3[op] = calls[op]
		}
	}
	if fmt.Sprint(s3) != fmt.Sprint(tc.s3Calls) {
		t.Errorf("S3 calls %v, want %v", s3, tc.s3Calls)
	}
	if n := calls["BatchGetItem"]; n < 1 || n > 2 {
		t.Errorf("%d BatchGetItem, want the lookup's (2 cold, 1 once the warm caches hold the caller)", n)
	}
}

func get1() map[string]int  { return map[string]int{"GetObject": 1} }
func head1() map[string]int { return map[string]int{"HeadObject": 1} }

// Ranges, entity tags and conditional requests on a log that fits a
// response: each answer in one S3 call, as the plain GET.
func TestTraceRanges(t *testing.T) {
	d := newDemo(t, 40)
	full, err := d.Files.Trace(context.Background(), 1, demo.FailedJobID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := len(full)
	plain := d.call(t, "get-job-trace", http.MethodGet, tracePath, token(demo.TokenReporter))
	tag, modified := plain.Header().Get("ETag"), plain.Header().Get("Last-Modified")
	if plain.Code != 200 || tag == "" || strings.HasPrefix(tag, "W/") || modified == "" || plain.Header().Get("Accept-Ranges") != "bytes" {
		t.Fatalf("plain GET: %d, ETag %q, Last-Modified %q, Accept-Ranges %q", plain.Code, tag, modified, plain.Header().Get("Accept-Ranges"))
	}
	size := fmt.Sprint(n)
	rng := func(v string) map[string]string { return map[string]string{"Range": v} }
	tests := []traceCase{
		{name: "first bytes", header: rng("bytes=0-9"), status: 206, body: string(full[:10]), crange: "bytes 0-9/" + size, s3Calls: get1()},
		{name: "middle", header: rng("bytes=10-29"), status: 206, body: string(full[10:30]), crange: "bytes 10-29/" + size, s3Calls: get1()},
		{name: "from an offset", header: rng("bytes=100-"), status: 206, body: string(full[100:]), crange: fmt.Sprintf("bytes 100-%d/%d", n-1, n), s3Calls: get1()},
		{name: "last bytes", header: rng("bytes=-16"), status: 206, body: string(full[n-16:]), crange: fmt.Sprintf("bytes %d-%d/%d", n-16, n-1, n), s3Calls: get1()},
		// S3 serves a suffix longer than the object whole; gofakes3 refuses
		// it, and the fallback (its length, then the bytes) costs two calls more.
		{name: "suffix longer than the log", header: rng("bytes=-100000"), status: 206, body: string(full), crange: fmt.Sprintf("bytes 0-%d/%d", n-1, n),
			s3Calls: map[string]int{"GetObject": 2, "HeadObject": 1}},
		{name: "end past the end", header: rng("bytes=5-100000"), status: 206, body: string(full[5:]), crange: fmt.Sprintf("bytes 5-%d/%d", n-1, n), s3Calls: get1()},
		{name: "last byte", header: rng(fmt.Sprintf("bytes=%d-", n-1)), status: 206, body: string(full[n-1:]), crange: fmt.Sprintf("bytes %d-%d/%d", n-1, n-1, n), s3Calls: get1()},
		{name: "from the end: unsatisfiable", header: rng(fmt.Sprintf("bytes=%d-", n)), status: 416,
			body: `{"message":"416 Range Not Satisfiable"}`, crange: "bytes */" + size, s3Calls: get1()},
		{name: "far past the end", header: rng("bytes=1000000-"), status: 416,
			body: `{"message":"416 Range Not Satisfiable"}`, crange: "bytes */" + size, s3Calls: map[string]int{"GetObject": 1, "HeadObject": 1}},
		{name: "empty suffix", header: rng("bytes=-0"), status: 416, body: `{"message":"416 Range Not Satisfiable"}`, crange: "bytes */" + size, s3Calls: get1()},
		{name: "several ranges: ignored", header: rng("bytes=0-1,5-6"), status: 200, body: string(full), s3Calls: get1()},
		{name: "other unit: ignored", header: rng("lines=0-1"), status: 200, body: string(full), s3Calls: get1()},
		{name: "bad syntax: ignored", header: rng("bytes=9-2"), status: 200, body: string(full), s3Calls: get1()},
		{name: "with byte_offset: ignored", query: "?byte_offset=10&byte_limit=20", header: rng("bytes=0-1"), status: 200, body: string(full[10:30]), s3Calls: get1()},
		{name: "If-None-Match current", header: map[string]string{"If-None-Match": tag}, status: 304, s3Calls: get1()},
		{name: "If-None-Match weak form", header: map[string]string{"If-None-Match": "W/" + tag}, status: 304, s3Calls: get1()},
		{name: "If-None-Match in a list", header: map[string]string{"If-None-Match": `"x", ` + tag}, status: 304, s3Calls: get1()},
		{name: "If-None-Match any", header: map[string]string{"If-None-Match": "*"}, status: 304, s3Calls: get1()},
		{name: "If-None-Match stale", header: map[string]string{"If-None-Match": `"stale"`}, status: 200, body: string(full), s3Calls: get1()},
		{name: "follower, nothing new", header: map[string]string{"If-None-Match": tag, "Range": fmt.Sprintf("bytes=%d-", n)}, status: 304, s3Calls: get1()},
		// gofakes3 checks the range before the tag: a range far past the end
		// costs one HeadObject more to find the tag current.
		{name: "If-None-Match beats a bad range", header: map[string]string{"If-None-Match": tag, "Range": "bytes=1000000-"}, status: 304,
			s3Calls: map[string]int{"GetObject": 1, "HeadObject": 1}},
		{name: "If-None-Match with byte_offset", query: "?byte_offset=10", header: map[string]string{"If-None-Match": tag}, status: 304, s3Calls: get1()},
		{name: "If-Modified-Since current", header: map[string]string{"If-Modified-Since": modified}, status: 304, s3Calls: get1()},
		{name: "If-Modified-Since old", header: map[string]string{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, status: 200, body: string(full), s3Calls: get1()},
		{name: "If-Range current tag", header: map[string]string{"If-Range": tag, "Range": "bytes=0-9"}, status: 206, body: string(full[:10]), crange: "bytes 0-9/" + size, s3Calls: get1()},
		{name: "If-Range current date", header: map[string]string{"If-Range": modified, "Range": "bytes=0-9"}, status: 206, body: string(full[:10]), crange: "bytes 0-9/" + size, s3Calls: get1()},
		{name: "If-Range stale tag: whole log", header: map[string]string{"If-Range": `"stale"`, "Range": "bytes=0-9"}, status: 200, body: string(full), s3Calls: map[string]int{"GetObject": 2}},
		{name: "If-Range weak tag: whole log", header: map[string]string{"If-Range": "W/" + tag, "Range": "bytes=0-9"}, status: 200, body: string(full), s3Calls: map[string]int{"GetObject": 2}},
		{name: "HEAD", method: http.MethodHead, status: 200, length: size, s3Calls: head1()},
		{name: "HEAD of a range", method: http.MethodHead, header: rng("bytes=-16"), status: 206, length: "16", crange: fmt.Sprintf("bytes %d-%d/%d", n-16, n-1, n), s3Calls: head1()},
		{name: "HEAD unsatisfiable", method: http.MethodHead, header: rng("bytes=1000000-"), status: 416, crange: "bytes */" + size, s3Calls: head1()},
		{name: "HEAD If-None-Match", method: http.MethodHead, header: map[string]string{"If-None-Match": tag}, status: 304, s3Calls: head1()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, d, tracePath) })
	}
}

// A log that grows between two requests: the follower's request (its tag,
// a range from its length) gets only the new bytes and the new tag, then a
// 304; GitLab's byte_offset keeps working on the longer log.
func TestTraceGrows(t *testing.T) {
	d := newDemo(t, 40)
	ctx := context.Background()
	first := d.call(t, "get-job-trace", http.MethodGet, tracePath, token(demo.TokenMaintainer))
	old, tag := first.Body.String(), first.Header().Get("ETag")
	more := "\x1b[32;1m$ make deploy\x1b[0;m\nstill going\n"
	if err := d.Files.Put(ctx, jobfiles.TraceKey(1, demo.FailedJobID), []byte(old+more), "text/plain"); err != nil {
		t.Fatal(err)
	}
	n, total := len(old), len(old)+len(more)
	follow := map[string]string{"If-None-Match": tag, "Range": fmt.Sprintf("bytes=%d-", n)}
	d.Counter.Reset()
	w := d.call(t, "get-job-trace", http.MethodGet, tracePath, with(follow, "PRIVATE-TOKEN", demo.TokenMaintainer))
	if w.Code != 206 || w.Body.String() != more || w.Header().Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", n, total-1, total) {
		t.Fatalf("grown log: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Range"))
	}
	newTag := w.Header().Get("ETag")
	if newTag == tag || newTag == "" || d.Counter.Calls()["GetObject"] != 1 {
		t.Errorf("tag %q after %q, %v", newTag, tag, d.Counter.Calls())
	}
	tests := []traceCase{
		{name: "old tag, old length", header: follow, status: 206, body: more,
			crange: fmt.Sprintf("bytes %d-%d/%d", n, total-1, total), s3Calls: get1()},
		{name: "new tag, new length", header: map[string]string{"If-None-Match": newTag, "Range": fmt.Sprintf("bytes=%d-", total)},
			status: 304, s3Calls: get1()},
		{name: "old tag, whole log", header: map[string]string{"If-None-Match": tag}, status: 200, body: old + more, s3Calls: get1()},
		{name: "byte_offset", query: fmt.Sprintf("?byte_offset=%d", n), status: 200, body: more, s3Calls: get1()},
		{name: "If-Range with the old tag", header: map[string]string{"If-Range": tag, "Range": fmt.Sprintf("bytes=%d-", n)},
			status: 200, body: old + more, s3Calls: map[string]int{"GetObject": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, d, tracePath) })
	}
}

// A job without a log (never ran, or erased) is an empty representation
// with the empty tag, answered without asking S3: 304 for that tag, 416
// for any range.
func TestTraceEmptyRepresentation(t *testing.T) {
	d := newDemo(t, 40)
	if w := d.call(t, "erase-job", http.MethodPost, "/api/v4/projects/1/jobs/42/erase", token(demo.TokenMaintainer)); w.Code != 201 {
		t.Fatalf("erase: %d %s", w.Code, w.Body)
	}
	const empty = `"d41d8cd98f00b204e9800998ecf8427e"`
	for _, path := range []string{"/api/v4/projects/1/jobs/6/trace", tracePath} {
		t.Run(path, func(t *testing.T) {
			w := d.call(t, "get-job-trace", http.MethodGet, path, token(demo.TokenMaintainer))
			if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("ETag") != empty {
				t.Fatalf("%d %q ETag %q", w.Code, w.Body, w.Header().Get("ETag"))
			}
			for _, tc := range []traceCase{
				{name: "If-None-Match", header: map[string]string{"If-None-Match": empty}, status: 304},
				{name: "a stale tag", header: map[string]string{"If-None-Match": `"abc"`}, status: 200},
				{name: "range", header: map[string]string{"Range": "bytes=0-"}, status: 416,
					body: `{"message":"416 Range Not Satisfiable"}`, crange: "bytes */0"},
				{name: "suffix", header: map[string]string{"Range": "bytes=-10"}, status: 416,
					body: `{"message":"416 Range Not Satisfiable"}`, crange: "bytes */0"},
				{name: "HEAD", method: http.MethodHead, status: 200, length: "0"},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.check(t, d, path) })
			}
		})
	}
}

// A 50 MB log: HEAD gives its length and tag from one HeadObject; a range
// that fits a response is served from one ranged read; a conditional
// request for all of it is a 304 without a byte read; a range that does not fit
// is redirected to S3, which serves the range (the client's header goes
// with it) under the same tag.
func TestHugeTraceRanges(t *testing.T) {
	const size = 50 << 20
	d, log := hugeTrace(t, size)
	path := "/api/v4/projects/1/jobs/90001/trace"
	head := d.call(t, "get-job-trace", http.MethodHead, path, token(demo.TokenMaintainer))
	tag := head.Header().Get("ETag")
	if head.Code != 200 || head.Header().Get("Content-Length") != fmt.Sprint(size) || tag == "" {
		t.Fatalf("HEAD: %d %v", head.Code, head.Header())
	}
	mid := 30 << 20
	tests := []traceCase{
		{name: "HEAD again", method: http.MethodHead, status: 200, length: fmt.Sprint(size), s3Calls: head1()},
		{name: "HEAD of the tail", method: http.MethodHead, header: map[string]string{"Range": "bytes=-1000"}, status: 206,
			length: "1000", crange: fmt.Sprintf("bytes %d-%d/%d", size-1000, size-1, size), s3Calls: head1()},
		{name: "a range that fits", header: map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", mid, mid+999)}, status: 206,
			body: log[mid : mid+1000], crange: fmt.Sprintf("bytes %d-%d/%d", mid, mid+999, size), s3Calls: get1()},
		{name: "the tail", header: map[string]string{"Range": "bytes=-1000"}, status: 206,
			body: log[size-1000:], crange: fmt.Sprintf("bytes %d-%d/%d", size-1000, size-1, size), s3Calls: map[string]int{"GetObject": 1}},
		{name: "unchanged", header: map[string]string{"If-None-Match": tag}, status: 304, s3Calls: head1()},
		{name: "unchanged, follower", header: map[string]string{"If-None-Match": tag, "Range": fmt.Sprintf("bytes=%d-", size)}, status: 304, s3Calls: get1()},
		{name: "past the end", header: map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)}, status: 416,
			body: `{"message":"416 Range Not Satisfiable"}`, crange: fmt.Sprintf("bytes */%d", size), s3Calls: get1()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, d, path) })
	}
	for _, rng := range []string{"bytes=0-", fmt.Sprintf("bytes=%d-", mid)} {
		t.Run("redirect "+rng, func(t *testing.T) {
			w := d.call(t, "get-job-trace", http.MethodGet, path, map[string]string{"PRIVATE-TOKEN": demo.TokenMaintainer, "Range": rng})
			if w.Code != http.StatusFound {
				t.Fatalf("status %d, want 302", w.Code)
			}
			req, _ := http.NewRequest(http.MethodGet, w.Header().Get("Location"), nil)
			req.Header.Set("Range", rng)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			from := map[string]int{"bytes=0-": 0}[rng]
			if rng != "bytes=0-" {
				from = mid
			}
			if resp.StatusCode != 206 || string(body) != log[from:] || resp.Header.Get("ETag") != tag ||
				resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", from, size-1, size) {
				t.Errorf("S3: %d, %d bytes, ETag %q, Content-Range %q", resp.StatusCode, len(body), resp.Header.Get("ETag"), resp.Header.Get("Content-Range"))
			}
		})
	}
}

// hugeTrace is the demo world with one more finished build whose log has
// size bytes.
func hugeTrace(t *testing.T, size int) (*fixture, string) {
	t.Helper()
	env := testenv.New(t)
	w := demo.Seed(1)
	line := "step ok: a fairly long line of build output\n"
	log := strings.Repeat(line, size/len(line)+1)[:size]
	job := map[string]any{"id": 90001, "status": "success", "stage": "test", "name": "huge", "ref": "main",
		"created_at": "2026-01-05T09:00:00.000Z", "started_at": "2026-01-05T09:00:01.000Z",
		"finished_at": "2026-01-05T09:10:00.000Z", "project_id": 1, "trace": log,
		"pipeline": map[string]any{"id": 90000, "project_id": 1}}
	raw, _ := json.Marshal(job)
	w.Jobs = append(w.Jobs, raw)
	if _, err := (&world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return &fixture{Env: env}, log
}

// A log that grew past what a response carries while the store still
// holds its first size: a conditional or ranged GET reads at most a
// response's worth, then sends the client to S3 when the rest does not fit.
func TestTraceOutgrowsTheStore(t *testing.T) {
	d := newDemo(t, 40)
	big := strings.Repeat("a line of a long build log\n", 200000) // 5.4 MB
	if err := d.Files.Put(context.Background(), jobfiles.TraceKey(1, demo.FailedJobID), []byte(big), "text/plain"); err != nil {
		t.Fatal(err)
	}
	// The call counter counts presigning the redirect as a GetObject; it
	// sends no request.
	readAndPresign := map[string]int{"GetObject": 2}
	tests := []traceCase{
		{name: "stale tag", header: map[string]string{"If-None-Match": `"stale"`}, status: 302, s3Calls: readAndPresign},
		{name: "from the start", header: map[string]string{"Range": "bytes=0-"}, status: 302, s3Calls: readAndPresign},
		{name: "a range that fits", header: map[string]string{"Range": "bytes=100-199"}, status: 206, body: big[100:200],
			crange: fmt.Sprintf("bytes 100-199/%d", len(big)), s3Calls: get1()},
		{name: "the tail", header: map[string]string{"Range": "bytes=5000000-"}, status: 206, body: big[5000000:],
			crange: fmt.Sprintf("bytes 5000000-%d/%d", len(big)-1, len(big)), s3Calls: get1()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status == 302 {
				tc.body = "" // http.Redirect's short HTML is not checked
			}
			tc.checkStatusOnly(t, d, tracePath)
		})
	}
}
