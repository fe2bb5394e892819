package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// growth is a running job whose log grows to size bytes in equal steps,
// one at each of ticks polls of a simulated clock after the first (or
// stays as it started, if idle); then the job is canceled (finished).
type growth struct {
	size, ticks int
	idle        bool
}

// traffic is what a follower cost: bytes of response bodies (of the trace
// alone, and with the job's status), requests, and the store calls
// (DynamoDB and S3) the functions made for them.
type traffic struct {
	traceBytes, bytes, requests, calls int
	// meteredRequests is what API Gateway bills: an HTTP API request
	// counts once per 512 KB of response.
	meteredRequests int
}

// api serves the get-job and get-job-trace functions, counting what each
// request costs; gitlab makes the server act as GitLab's trace does, with
// neither ranges nor entity tags.
func serveAPI(env *testenv.Env, gitlab bool, t *traffic) *httptest.Server {
	trace, job := api.GetJobTrace.Handler(env.Deps), api.GetJob.Handler(env.Deps)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, isTrace := job, strings.HasSuffix(r.URL.Path, "/trace")
		if isTrace {
			h = trace
			if gitlab {
				r.Header.Del("Range")
				r.Header.Del("If-None-Match")
			}
		}
		before := env.Counter.Total()
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		t.requests++
		t.meteredRequests += max(1, (cw.n+512<<10-1)/(512<<10))
		t.bytes += cw.n
		if isTrace {
			t.traceBytes += cw.n
		}
		t.calls += env.Counter.Total() - before
	}))
}

type countingWriter struct {
	http.ResponseWriter
	n int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return w.ResponseWriter.Write(b)
}

// follow runs one follower over a log that grows as g says and returns
// what it printed, the final log and the traffic.
func follow(t testing.TB, env *testenv.Env, jobID int64, g growth, gitlab bool) (string, string, traffic) {
	t.Helper()
	ctx := context.Background()
	line := "\x1b[32;1m$ make test\x1b[0;m all green so far, one more line of output\n"
	final := strings.Repeat(line, g.size/len(line)+1)[:g.size]
	start := final[:g.size/g.ticks/2]
	if g.idle {
		final = start
	}
	importRunningJob(t, env, jobID, start)
	var tr traffic
	srv := serveAPI(env, gitlab, &tr)
	defer srv.Close()
	var out bytes.Buffer
	tick := 0
	f := &follower{client: newClient(), base: srv.URL, header: http.Header{"Private-Token": {demo.TokenMaintainer}},
		project: "demo/backend", job: jobID, interval: 3 * time.Second, out: &out,
		sleep: func(context.Context, time.Duration) error {
			// The simulated clock: 3 s pass, the log grows.
			tick++
			if g.idle {
				if tick == g.ticks {
					return cancelJob(env, jobID)
				}
				return nil
			}
			if err := env.Files.Put(ctx, jobfiles.TraceKey(1, jobID), []byte(final[:g.size*tick/g.ticks]), "text/plain"); err != nil {
				return err
			}
			if tick == g.ticks {
				return cancelJob(env, jobID)
			}
			return nil
		}}
	if err := f.run(ctx); err != nil {
		t.Fatal(err)
	}
	return out.String(), final, tr
}

func importRunningJob(t testing.TB, env *testenv.Env, id int64, log string) {
	t.Helper()
	w := demo.Seed(1)
	raw, _ := json.Marshal(map[string]any{"id": id, "status": "running", "stage": "test", "name": "growing", "ref": "main",
		"created_at": "2026-01-05T09:00:00.000Z", "started_at": "2026-01-05T09:00:01.000Z", "project_id": 1,
		"trace": log, "pipeline": map[string]any{"id": 90000, "project_id": 1}})
	w.Jobs = append(w.Jobs, raw)
	if _, err := (&world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
}

func cancelJob(env *testenv.Env, id int64) error {
	r := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/api/v4/projects/1/jobs/%d/cancel", id), nil)
	r.Header.Set("Private-Token", demo.TokenMaintainer)
	w := httptest.NewRecorder()
	api.CancelJob.Handler(env.Deps).ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		return fmt.Errorf("cancel: %d %s", w.Code, w.Body)
	}
	return nil
}

// The follower prints the whole log exactly once and stops when the job
// finishes, against this API (ranges and tags) and against a server that
// serves neither (GitLab), where it falls back to whole logs.
func TestFollow(t *testing.T) {
	env := testenv.New(t)
	for i, gitlab := range []bool{false, true} {
		t.Run(map[bool]string{false: "ranges", true: "gitlab"}[gitlab], func(t *testing.T) {
			out, final, tr := follow(t, env, int64(90100+i), growth{size: 64 << 10, ticks: 8}, gitlab)
			if out != final {
				t.Fatalf("printed %d bytes, the log has %d", len(out), len(final))
			}
			// 9 status reads and 9 trace polls.
			if tr.requests != 18 {
				t.Errorf("%d requests, want 18", tr.requests)
			}
			t.Logf("%+v", tr)
		})
	}
}

// A log that is replaced by a shorter one (an erased and rerun job) is
// printed again from its start.
func TestFollowShorterLog(t *testing.T) {
	env := testenv.New(t)
	importRunningJob(t, env, 90200, "first try, a long line of output\n")
	var tr traffic
	srv := serveAPI(env, false, &tr)
	defer srv.Close()
	var out bytes.Buffer
	f := &follower{client: newClient(), base: srv.URL, header: http.Header{"Private-Token": {demo.TokenMaintainer}},
		project: "1", job: 90200, out: &out}
	ctx := context.Background()
	if err := f.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.Files.Put(ctx, jobfiles.TraceKey(1, 90200), []byte("again\n"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // 416, then the new log
		if err := f.poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); got != "first try, a long line of output\nagain\n" {
		t.Errorf("printed %q", got)
	}
}

// BenchmarkFollowTrace is a follower polling a log that grows to 10 MB,
// every 3 s for a minute (a simulated clock: 21 polls of the log and of
// the job's status), against this API (If-None-Match + Range: the new bytes
// only) and against GitLab's behaviour (the whole log every time), and a
// follower of a log that does not change (304s). It reports response
// bytes, requests (as API Gateway meters them too) and store calls
// (DynamoDB and S3) per minute of following.
func BenchmarkFollowTrace(b *testing.B) {
	env := testenv.New(b)
	id := int64(91000)
	for _, mode := range []struct {
		name         string
		gitlab, idle bool
	}{{"ranges", false, false}, {"full-downloads", true, false}, {"ranges-idle-log", false, true}, {"full-downloads-idle-log", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			var sum traffic
			for range b.N {
				id++
				out, final, tr := follow(b, env, id, growth{size: 10 << 20, ticks: 20, idle: mode.idle}, mode.gitlab)
				if out != final {
					b.Fatalf("printed %d bytes, the log has %d", len(out), len(final))
				}
				sum.bytes += tr.bytes
				sum.traceBytes += tr.traceBytes
				sum.calls += tr.calls
				sum.requests += tr.requests
				sum.meteredRequests += tr.meteredRequests
			}
			b.ReportMetric(float64(sum.traceBytes)/float64(b.N), "trace-bytes/op")
			b.ReportMetric(float64(sum.bytes)/float64(b.N), "bytes/op")
			b.ReportMetric(float64(sum.calls)/float64(b.N), "calls/op")
			b.ReportMetric(float64(sum.requests)/float64(b.N), "requests/op")
			b.ReportMetric(float64(sum.meteredRequests)/float64(b.N), "metered-requests/op")
		})
	}
}

// recorder keeps the headers of every request a client sends, by host.
type recorder struct {
	sent map[string][]http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.sent[req.URL.Host] = append(r.sent[req.URL.Host], req.Header.Clone())
	return http.DefaultTransport.RoundTrip(req)
}

// A log too big for a response: the first poll follows the redirect to S3
// without the token; the next ones get the new bytes from the API.
func TestFollowBigLog(t *testing.T) {
	env := testenv.New(t)
	big := strings.Repeat("a line of a long build log\n", 200000) // 5.4 MB
	importRunningJob(t, env, 90300, big)
	var tr traffic
	srv := serveAPI(env, false, &tr)
	defer srv.Close()
	rec := &recorder{sent: map[string][]http.Header{}}
	client := newClient()
	client.Transport = rec
	var out bytes.Buffer
	f := &follower{client: client, base: srv.URL, header: http.Header{"Private-Token": {demo.TokenMaintainer}},
		project: "1", job: 90300, out: &out}
	ctx := context.Background()
	if err := f.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.Files.Put(ctx, jobfiles.TraceKey(1, 90300), []byte(big+"done\n"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := f.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if out.String() != big+"done\n" {
		t.Fatalf("printed %d bytes, want %d", out.Len(), len(big)+5)
	}
	if len(rec.sent) != 2 {
		t.Fatalf("hosts %d, want the API's and S3's", len(rec.sent))
	}
	for host, hs := range rec.sent {
		for _, h := range hs {
			if fromAPI := strings.HasPrefix(srv.URL, "http://"+host); fromAPI != (h.Get("Private-Token") != "") {
				t.Errorf("%s got Private-Token %q", host, h.Get("Private-Token"))
			}
		}
	}
	// The API sent the redirect's short HTML body and the new line only.
	if tr.traceBytes > 1000 {
		t.Errorf("the API sent %d bytes of log", tr.traceBytes)
	}
}
