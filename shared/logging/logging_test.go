package logging_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
)

// requestContext is what an invocation's request context holds: the Lambda
// context from the runtime and the API Gateway context from the adapter.
func requestContext(t *testing.T) context.Context {
	t.Helper()
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-1"})
	r, err := new(core.RequestAccessorV2).EventToRequestWithContext(ctx, events.APIGatewayV2HTTPRequest{
		RawPath: "/x", RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "gw-1", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET"}}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Context()
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
