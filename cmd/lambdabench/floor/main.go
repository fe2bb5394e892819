// Command floor is make bench-coldstart's second baseline: a Lambda built
// as the functions are, with their dependencies (config.Load), whose
// handler makes only the one call no list page can do without: the page's
// Query (page 1 of the event's project; no authorization, no related
// reads, nothing rendered). Its cold start is what one round trip to the
// stack costs on top of the SDK's init, the least any list function can
// cost here.
package main

import (
	"context"
	"fmt"
	"log"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

func main() {
	deps, err := config.Load(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		id, err := strconv.ParseInt(ev.PathParameters["p1"], 10, 64)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{StatusCode: 404}, nil
		}
		page, err := deps.Store.ProjectBuilds(ctx, &jobs.Project{ID: id, Builds: -1}, store.Range{Limit: 20})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: fmt.Sprintf(`{"jobs":%d}`, len(page.Jobs))}, nil
	})
}
