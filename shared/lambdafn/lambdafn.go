// Package lambdafn starts one endpoint as a Lambda function behind an API
// Gateway HTTP API (payload format 2.0).
package lambdafn

import (
	"context"
	"log"
	"net/http"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
)

// Start builds the dependencies once, for the life of the execution
// environment, and serves newHandler's handler for every invocation.
func Start(newHandler func(*api.Deps) http.Handler) {
	deps, err := config.Load(context.Background())
	if err != nil {
		log.Fatalf("configure: %v", err)
	}
	lambda.Start(httpadapter.NewV2(newHandler(deps)).ProxyWithContext)
}
