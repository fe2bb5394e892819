package api_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/agreement"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/golden"
)

var update = flag.Bool("update", false, "rewrite the golden responses of the event-payload tests")

const eventsDir = "../../events"

// Every event in events/ goes through its function's real Lambda handler
// (the API Gateway adapter around the endpoint) against the demo world; the
// response must match its golden file. Each function gets a fresh world, as
// `sam local invoke` against a fresh `make run` would; its events run in
// file name order.
func TestEventPayloads(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no events", err)
	}
	worlds := map[api.Function]*fixture{}
	logs := map[api.Function]*strings.Builder{}
	for _, file := range files {
		fn := agreement.FunctionOf(file, api.Functions())
		if worlds[fn] == nil {
			worlds[fn] = newDemo(t, 40)
			logs[fn] = worlds[fn].Logs()
		}
		d, log := worlds[fn], logs[fn]
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if fn.Route().Stream {
				// A stream function answers nothing: the batch succeeds or
				// Lambda retries it.
				ev, err := agreement.DecodeStreamEvent(raw)
				if err != nil {
					t.Fatal(err)
				}
				if err := fn.StreamHandler(d.Deps)(context.Background(), ev); err != nil {
					t.Errorf("the batch failed: %v", err)
				}
				return
			}
			ev, err := agreement.DecodeEvent(raw)
			if err != nil {
				t.Fatal(err)
			}
			h := fn.Handler(d.Deps)
			logged := log.Len()
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: lambdaRequestID})
			resp, err := lambdafn.Adapter(h)(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			checkLogs(t, log.String()[logged:], ev, resp.StatusCode)
			got := golden.From(resp)
			path := golden.Path(filepath.Join("testdata", "events"), file)
			if *update {
				if err := golden.Write(path, got); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := golden.Read(path)
			if err != nil {
				t.Fatalf("no golden response (run go test ./shared/api -run TestEventPayloads -update): %v", err)
			}
			for _, d := range golden.Diff(got, want) {
				t.Error(d)
			}
		})
	}
}

const lambdaRequestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"

// checkLogs holds an invocation's log lines to what operators rely on: JSON,
// both request ids on every line, one request line with the status and the
// duration, and none of the request's secrets (tokens, job variable values).
func checkLogs(t *testing.T, logged string, ev events.APIGatewayV2HTTPRequest, status int) {
	t.Helper()
	requests := 0
	secrets := secretsOf(t, ev)
	for _, line := range strings.Split(strings.TrimSpace(logged), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m[logging.LambdaRequestID] != lambdaRequestID || m[logging.APIRequestID] != ev.RequestContext.RequestID {
			t.Errorf("log line without the request ids: %s", line)
		}
		if m["msg"] == "request" {
			requests++
			if m["status"] != float64(status) || m["duration_ms"] == nil {
				t.Errorf("request line %s, want status %d and a duration", line, status)
			}
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line holds the secret %q: %s", s, line)
			}
		}
	}
	if requests != 1 {
		t.Errorf("%d request lines, want 1:\n%s", requests, logged)
	}
}

// secretsOf lists what an event carries that must never be logged: the
// token of every credential source GitLab reads and the values of job
// variables, in the query or the body (form or JSON).
func secretsOf(t *testing.T, ev events.APIGatewayV2HTTPRequest) []string {
	t.Helper()
	var out []string
	for _, k := range []string{"private-token", "job-token", "authorization"} {
		if v := ev.Headers[k]; v != "" {
			out = append(out, strings.TrimPrefix(v, "Bearer "))
		}
	}
	forms := []string{ev.RawQueryString}
	if !strings.HasPrefix(ev.Headers["content-type"], "application/json") {
		forms = append(forms, ev.Body)
	} else {
		var b struct {
			Vars []struct{ Value string } `json:"job_variables_attributes"`
		}
		if err := json.Unmarshal([]byte(ev.Body), &b); err != nil {
			t.Fatal(err)
		}
		for _, v := range b.Vars {
			out = append(out, v.Value)
		}
	}
	for _, f := range forms {
		q, err := url.ParseQuery(f)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range q {
			if k == "private_token" || k == "job_token" || k == "token" || k == "access_token" || strings.HasSuffix(k, "[value]") {
				out = append(out, vs...)
			}
		}
	}
	return slices.DeleteFunc(out, func(s string) bool { return len(s) < 3 })
}
