package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
)

// hostileEvent is an HTTP API event as the gateway builds it for a client's
// request: rawPath and http.path decoded, the query as sent.
func hostileEvent(method, rawPath, query string, headers map[string]string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: rawPath, RawQueryString: query, Headers: headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "hostile-1", DomainName: "api.example.com",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: rawPath, SourceIP: "203.0.113.9"},
		},
	}
}

// printed runs f and returns what it wrote to stdout, stderr and the
// standard log: what a Lambda would send to CloudWatch besides the
// handlers' own logger.
func printed(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	var std bytes.Buffer
	log.SetOutput(&std)
	defer func() { os.Stdout, os.Stderr = stdout, stderr; log.SetOutput(os.Stderr) }()
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	f()
	w.Close()
	return string(<-done) + std.String()
}

// Every byte a client can put in a decoded rawPath reaches the handler as
// data: control characters give GitLab's answer for that input in the order
// of checks (401 anonymous, 404 for a project id that names nothing, 400 for
// a job id that is no integer, the catch-all 404), never a function error;
// nothing is printed outside the handlers' JSON log, whose lines stay one
// JSON object each with the client's text escaped inside.
func TestHostilePathsReachTheHandler(t *testing.T) {
	d := newDemo(t, 5)
	logs := d.Logs()
	const tok = "glpat-demo-maintainer-000000002"
	maintainer := map[string]string{"private-token": tok}
	forged := "/api/v4/projects/1\n{\"level\":\"ERROR\",\"msg\":\"forged\"}\n/jobs"
	cases := []struct {
		name    string
		fn      api.Function
		method  string
		path    string
		query   string
		headers map[string]string
		status  int
		body    string
	}{
		{"nul in project, anonymous", api.ListProjectJobs, "GET", "/api/v4/projects/1\x00/jobs", "", nil, 401, `{"message":"401 Unauthorized"}`},
		{"nul in project, token in query", api.ListProjectJobs, "GET", "/api/v4/projects/1\x00/jobs", "private_token=" + tok, nil, 404, `{"message":"404 Project Not Found"}`},
		{"del in job id", api.GetJobTrace, "GET", "/api/v4/projects/1/jobs/42\x7f/trace", "", maintainer, 400, `{"error":"job_id is invalid"}`},
		{"newline after job", api.NotFound, "GET", "/api/v4/job\n", "job_token=glcbt-secret-000000", nil, 404, `{"error":"404 Not Found"}`},
		{"every control byte", api.GetJob, "GET", "/api/v4/projects/1/jobs/1" + controlBytes(), "", maintainer, 400, `{"error":"job_id is invalid"}`},
		{"literal percent", api.GetJob, "GET", "/api/v4/projects/a%zz/jobs/1", "", maintainer, 404, `{"message":"404 Project Not Found"}`},
		{"forged log line", api.ListProjectJobs, "GET", forged, "page=1&private_token=" + tok, nil, 404, `{"message":"404 Project Not Found"}`},
		{"control byte in query", api.ListProjectJobs, "GET", "/api/v4/projects/1/jobs", "scope=\x01&private_token=" + tok, nil, 400, `{"error":"scope does not have a valid value"}`},
		{"two PRIVATE-TOKEN headers, joined by the gateway", api.GetJob, "GET", "/api/v4/projects/1/jobs/31", "", map[string]string{"private-token": tok + "," + tok}, 401, `{"message":"401 Unauthorized"}`},
		{"a personal token before a bad job token", api.ListPipelineJobs, "GET", "/api/v4/projects/1/pipelines/999999/jobs", "", map[string]string{"private-token": tok, "job-token": "glcbt-secret-bogus"}, 404, `{"message":"404 Not found"}`},
		{"control byte in action", api.CancelJob, "POST", "/api/v4/projects/1/jobs/\x1b[31m/cancel", "", maintainer, 400, `{"error":"job_id is invalid"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := logs.Len()
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: lambdaRequestID})
			var resp events.APIGatewayV2HTTPResponse
			var err error
			out := printed(t, func() {
				resp, err = lambdafn.Adapter(c.fn.Handler(d.Deps))(ctx, hostileEvent(c.method, c.path, c.query, c.headers))
			})
			if err != nil {
				t.Fatalf("function error %v", err)
			}
			if resp.StatusCode != c.status || resp.Body != c.body {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, resp.Body, c.status, c.body)
			}
			if resp.Headers["X-Content-Type-Options"] != "nosniff" || resp.Headers["X-Request-Id"] != "hostile-1" {
				t.Errorf("headers %v lack GitLab's and the request id", resp.Headers)
			}
			if out != "" {
				t.Errorf("printed outside the log: %q", out)
			}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()[before:]), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Errorf("log line is not one JSON object: %q", line)
				}
				if strings.Contains(line, "secret-") || strings.Contains(line, tok) {
					t.Errorf("token logged: %s", line)
				}
			}
		})
	}
}

// controlBytes are %00–%1F and %7F, decoded.
func controlBytes() string {
	var b strings.Builder
	for c := byte(0); c < 0x20; c++ {
		b.WriteByte(c)
	}
	b.WriteByte(0x7f)
	return b.String()
}

// An id beyond int64 is an Integer to Grape that names no record: GitLab's
// 404, not the 400 of a non-integer (facts §0.5).
func TestIDsBeyondInt64AreNotFound(t *testing.T) {
	d := newDemo(t, 5)
	maintainer := token("glpat-demo-maintainer-000000002")
	cases := []struct{ function, method, target string }{
		{"get-job", "GET", "/api/v4/projects/1/jobs/9223372036854775808"},
		{"get-job", "GET", "/api/v4/projects/1/jobs/-9223372036854775809"},
		{"get-job-trace", "GET", "/api/v4/projects/1/jobs/123456789012345678901234567890/trace"},
		{"cancel-job", "POST", "/api/v4/projects/1/jobs/9223372036854775808/cancel"},
		{"retry-job", "POST", "/api/v4/projects/1/jobs/9223372036854775808/retry"},
		{"list-pipeline-jobs", "GET", "/api/v4/projects/1/pipelines/9223372036854775808/jobs"},
		{"list-pipeline-bridges", "GET", "/api/v4/projects/1/pipelines/18446744073709551616/bridges"},
	}
	for _, c := range cases {
		w := d.call(t, c.function, c.method, c.target, maintainer)
		if got := strings.TrimSpace(w.Body.String()); w.Code != 404 || got != `{"message":"404 Not found"}` {
			t.Errorf("%s %s: %d %s, want 404 Not found", c.method, c.target, w.Code, got)
		}
	}
}

// A body over maxBody is refused whole (413) before anything acts on it:
// cut at the limit, it would lose its trailing variables and play without
// them. One at the limit is read whole.
func TestBodiesOverOneMiBAreRefused(t *testing.T) {
	d := newDemo(t, 5)
	const limit = 1 << 20
	vars := "&job_variables_attributes[][key]=K&job_variables_attributes[][value]=v"
	pad := func(n int) string { return "pad=" + strings.Repeat("x", n-len("pad=")-len(vars)) + vars }
	cases := []struct {
		name   string
		fn     api.Function
		path   string
		body   string
		status int
	}{
		{"play past the limit", api.PlayJob, "/api/v4/projects/1/jobs/23/play", pad(limit + 1), 413},
		{"cancel past the limit", api.CancelJob, "/api/v4/projects/1/jobs/31/cancel", pad(limit + 100), 413},
		{"play at the limit", api.PlayJob, "/api/v4/projects/1/jobs/23/play", pad(limit), 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := hostileEvent("POST", c.path, "", map[string]string{
				"private-token": "glpat-demo-maintainer-000000002", "content-type": "application/x-www-form-urlencoded"})
			ev.Body = c.body
			d.Counter.Reset()
			resp, err := lambdafn.Adapter(c.fn.Handler(d.Deps))(context.Background(), ev)
			if err != nil || resp.StatusCode != c.status {
				t.Fatalf("got %d %s %v, want %d", resp.StatusCode, resp.Body, err, c.status)
			}
			if c.status == 413 && resp.Body != `{"message":"413 Request Entity Too Large"}` {
				t.Errorf("body %s", resp.Body)
			}
			for op := range d.Counter.Calls() {
				if c.status == 413 && (strings.HasPrefix(op, "Put") || strings.HasPrefix(op, "Transact") || strings.HasPrefix(op, "Update")) {
					t.Errorf("a refused body wrote: %v", d.Counter.Calls())
				}
			}
		})
	}
}

// Every answer, success or error, carries GitLab's Cache-Control: private
// jobs and logs are never kept by a shared cache.
func TestResponsesAreNotCacheable(t *testing.T) {
	d := newDemo(t, 5)
	fns, evs := eventsOf(t)
	for i, ev := range evs {
		resp, _ := invoke(t, d.Deps, fns[i], ev, time.Minute)
		if got := resp.Headers["Cache-Control"]; got != "max-age=0, private, must-revalidate" {
			t.Errorf("%s %s: %d Cache-Control %q", fns[i], ev.RawPath, resp.StatusCode, got)
		}
	}
}
