// Command hello is the baseline of make bench-coldstart: the smallest Go
// Lambda behind an HTTP API, built exactly as the functions are, so that
// what a function costs beyond it is its own code and dependencies.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return events.APIGatewayV2HTTPResponse{StatusCode: 200,
		Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"hello":"world"}`}, nil
}

func main() { lambda.Start(handle) }
