package api_test

import (
	"context"
	"encoding/json"
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

func TestTrace(t *testing.T) {
	d := newDemo(t, 40)
	full, err := d.Files.Trace(context.Background(), 1, demo.FailedJobID, 0, 0)
	if err != nil || len(full) < 100 || !strings.Contains(string(full), "\x1b[31;1mERROR") {
		t.Fatalf("seeded trace: %v %q", err, full)
	}
	m := token(demo.TokenReporter)
	tests := []struct {
		name   string
		query  string
		status int
		body   string
		gets   int // S3 GetObject calls
	}{
		{"whole log", "", 200, string(full), 1},
		{"offset and limit", "?byte_offset=10&byte_limit=20", 200, string(full[10:30]), 1},
		{"limit only", "?byte_limit=5", 200, string(full[:5]), 1},
		{"offset only", "?byte_offset=100", 200, string(full[100:]), 1},
		{"offset past the end", "?byte_offset=100000", 200, "", 1},
		{"limit zero", "?byte_limit=0", 400, `{"error":"byte_limit does not have a valid value"}`, 0},
		{"limit too big", "?byte_limit=512001", 400, `{"error":"byte_limit does not have a valid value"}`, 0},
		{"negative offset", "?byte_offset=-1", 400, `{"error":"byte_offset does not have a valid value"}`, 0},
		{"offset not a number", "?byte_offset=x", 400, `{"error":"byte_offset is invalid"}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.Counter.Reset()
			w := d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/42/trace"+tc.query, m)
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body, tc.status, tc.body)
			}
			if got := d.Counter.Calls()["GetObject"]; got != tc.gets {
				t.Errorf("%d GetObject calls, want %d", got, tc.gets)
			}
			if tc.status == 200 {
				if ct := w.Header().Get("Content-Type"); ct != "text/plain" {
					t.Errorf("Content-Type %q", ct)
				}
				if cd := w.Header().Get("Content-Disposition"); cd != `infile; filename="42.log"` {
					t.Errorf("Content-Disposition %q", cd)
				}
			}
		})
	}
}

// A job without a log answers an empty 200 without asking S3; a job whose
// log object is missing reads as empty too.
func TestTraceWithoutLog(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	// Job 6 is preparing: never ran, no log.
	w := d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/6/trace", m)
	if w.Code != 200 || w.Body.Len() != 0 || d.Counter.Calls()["GetObject"] != 0 {
		t.Errorf("no log: %d %q, %d S3 calls", w.Code, w.Body, d.Counter.Calls()["GetObject"])
	}
	if _, err := d.S3.DeleteObject(context.Background(), deleteInput(d.Bucket, jobfiles.TraceKey(1, demo.FailedJobID))); err != nil {
		t.Fatal(err)
	}
	w = d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/42/trace", m)
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("missing object: %d %q", w.Code, w.Body)
	}
	w = d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/999999/trace", m)
	if w.Code != 404 || w.Body.String() != `{"message":"404 Not found"}` {
		t.Errorf("unknown job: %d %s", w.Code, w.Body)
	}
}

// A log too big for a Lambda response is served by S3: 302 to a presigned
// URL that returns it as text/plain; ranged reads stay inline.
func TestHugeTraceRedirects(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(1)
	huge := strings.Repeat("\x1b[32;1mstep ok\x1b[0;m a fairly long line of build output\n", 100000) // ~5.5 MB
	job := map[string]any{"id": 90001, "status": "success", "stage": "test", "name": "huge", "ref": "main",
		"created_at": "2026-01-05T09:00:00.000Z", "started_at": "2026-01-05T09:00:01.000Z",
		"finished_at": "2026-01-05T09:10:00.000Z", "project_id": 1, "trace": huge,
		"pipeline": map[string]any{"id": 90000, "project_id": 1}}
	raw, _ := json.Marshal(job)
	w.Jobs = append(w.Jobs, raw)
	if _, err := (&world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	d := &fixture{Env: env}
	resp := d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/90001/trace", token(demo.TokenMaintainer))
	if resp.Code != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.Code)
	}
	loc := resp.Header().Get("Location")
	if !strings.HasPrefix(loc, env.S3URL) {
		t.Fatalf("Location %q is not the S3 endpoint", loc)
	}
	got, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	body, _ := io.ReadAll(got.Body)
	if got.StatusCode != 200 || string(body) != huge {
		t.Fatalf("presigned GET: %d, %d bytes", got.StatusCode, len(body))
	}
	if ct := got.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("S3 Content-Type %q", ct)
	}
	resp = d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/90001/trace?byte_offset=100&byte_limit=500000", token(demo.TokenMaintainer))
	if resp.Code != 200 || resp.Body.String() != huge[100:500100] {
		t.Errorf("ranged read of a huge log: %d, %d bytes", resp.Code, resp.Body.Len())
	}
}
