package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/world"
)

func TestTrace(t *testing.T) {
	d := newDemo(t, 40)
	full, err := d.Deps.Files.Trace(context.Background(), 1, world.FailedJobID, 0, 0)
	if err != nil || len(full) < 100 || !strings.Contains(string(full), "\x1b[31;1mERROR") {
		t.Fatalf("seeded trace: %v %q", err, full)
	}
	m := token(world.TokenReporter)
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
	m := token(world.TokenMaintainer)
	// Job 6 is preparing: never ran, no log.
	w := d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/6/trace", m)
	if w.Code != 200 || w.Body.Len() != 0 || d.Counter.Calls()["GetObject"] != 0 {
		t.Errorf("no log: %d %q, %d S3 calls", w.Code, w.Body, d.Counter.Calls()["GetObject"])
	}
	if _, err := d.S3.DeleteObject(context.Background(), deleteInput(d.Bucket, jobfiles.TraceKey(1, world.FailedJobID))); err != nil {
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
