// Command faulty is a test function that fails on demand, by path: /error
// returns a handler error, /panic panics, /sleep outlives its timeout and
// /ok answers 200 with its invocation's request ids.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	switch ev.RawPath {
	case "/error":
		return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
	case "/panic":
		panic("boom")
	case "/sleep":
		time.Sleep(time.Minute)
	}
	lc, _ := lambdacontext.FromContext(ctx)
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "text/plain"},
		Body: ev.RawPath + " " + lc.AwsRequestID}, nil
}

func main() { lambda.Start(handle) }
