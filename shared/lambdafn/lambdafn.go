// Package lambdafn starts one endpoint as a Lambda function behind an API
// Gateway HTTP API (payload format 2.0).
package lambdafn

import (
	"context"
	"log"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
)

// Start builds the dependencies once, for the life of the execution
// environment, and serves f's handler for every invocation: its HTTP
// handler behind API Gateway, or its handler of the table's stream.
func Start(f api.Function) {
	deps, err := config.Load(context.Background())
	if err != nil {
		log.Fatalf("configure: %v", err)
	}
	if h := f.StreamHandler(deps); h != nil {
		lambda.Start(h)
		return
	}
	lambda.Start(Adapter(f.Handler(deps)))
}

// Adapter is the Lambda handler of h behind an HTTP API: the api-proxy
// adapter, given a path it reads as the gateway meant it. The gateway hands
// rawPath over decoded, so a '%', '?' or '#' in it is a literal character
// (a project path such as `a%25b`), which the adapter would parse as an
// escape (a 500), a query or a fragment (a corrupted query); escaped first,
// they reach the handler's URL.Path as the client sent them.
func Adapter(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a := httpadapter.NewV2(h)
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		ev.RawPath = literalPath.Replace(ev.RawPath)
		return a.ProxyWithContext(ctx, ev)
	}
}

var literalPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
