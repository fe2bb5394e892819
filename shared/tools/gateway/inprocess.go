package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
)

// InProcess invokes functions in this process through the same adapter the
// Lambda binaries use; handlers maps function folders to handlers.
func InProcess(handlers map[string]http.Handler) Invoke {
	adapters := map[string]func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error){}
	for name, h := range handlers {
		adapters[name] = lambdafn.Adapter(h)
	}
	return func(ctx context.Context, function string, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		a, ok := adapters[function]
		if !ok {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("no function %q", function)
		}
		return a(ctx, ev)
	}
}
