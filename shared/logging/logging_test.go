package logging_test

import (
	"context"
	"encoding/json"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
)

// requestContext is what an invocation's request context holds: the Lambda
// context from the runtime and the API Gateway context from the adapter.
func requestContext(t *testing.T) context.Context {
	t.Helper()
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-1"})
	return logging.WithGateway(ctx, events.APIGatewayV2HTTPRequestContext{RequestID: "gw-1"})
}

func TestLinesCarryRequestIDsAndNoTokens(t *testing.T) {
	var b strings.Builder
	log := logging.New(&b).With("function", "get-job")
	ctx := requestContext(t)
	log.InfoContext(ctx, "request", "status", 200)
	log.ErrorContext(ctx, "internal error", "error", `token "glpat-demo-admin-000000000001" and glcbt-abc_DEF-123456 rejected`)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), b.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		if m[logging.LambdaRequestID] != "lambda-1" || m[logging.APIRequestID] != "gw-1" || m["function"] != "get-job" {
			t.Errorf("line %s lacks the request ids or the function", l)
		}
		if strings.Contains(l, "glpat-") || strings.Contains(l, "glcbt-") {
			t.Errorf("token logged: %s", l)
		}
	}
	if got := logging.RequestID(ctx); got != "gw-1" {
		t.Errorf("RequestID = %q, want API Gateway's", got)
	}
	lambdaOnly := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-2"})
	if got := logging.RequestID(lambdaOnly); got != "lambda-2" {
		t.Errorf("RequestID = %q, want Lambda's", got)
	}
	if a, b := logging.RequestID(context.Background()), logging.RequestID(context.Background()); len(a) != 32 || a == b {
		t.Errorf("fresh ids %q, %q", a, b)
	}
}

// What libraries print through the standard log becomes one JSON line, its
// query and tokens redacted and its line breaks escaped.
func TestLibraryLinesAreJSONAndRedacted(t *testing.T) {
	var b strings.Builder
	logging.Library(&b)
	defer log.SetOutput(os.Stderr)
	log.Println("parse \"https://h/api/v4/job\n{\"level\":\"ERROR\"}?private_token=secret-1\": bad")
	log.Print("token glpat-abcdefgh1234 seen")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), b.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] != "library" {
			t.Errorf("not a library JSON line: %s", l)
		}
		if strings.Contains(l, "secret-1") || strings.Contains(l, "glpat-") {
			t.Errorf("not redacted: %s", l)
		}
	}
}
