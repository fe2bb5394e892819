// Package lambdafn starts one endpoint as a Lambda function behind an API
// Gateway HTTP API (payload format 2.0).
package lambdafn

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
)

// Start builds the dependencies once, for the life of the execution
// environment, and serves f's handler for every invocation: its HTTP
// handler behind API Gateway, or its handler of the table's stream.
// Whatever a library writes with the standard log package becomes a JSON
// line, its text redacted (see logging.Library). with are the dependencies
// only some functions need (s3config.Files), so that only their bootstraps
// link those clients.
func Start(f api.Function, with ...config.Option) {
	logging.Library(os.Stderr)
	deps, err := config.Load(context.Background(), with...)
	if err != nil {
		logging.New(os.Stderr).Error("configure", "function", string(f), "error", err.Error())
		os.Exit(1)
	}
	if h := f.StreamHandler(deps); h != nil {
		lambda.Start(h)
		return
	}
	lambda.Start(Adapter(f.Handler(deps)))
}

// Adapter is the Lambda handler of h behind an HTTP API. It builds the
// http.Request itself rather than through aws-lambda-go-api-proxy's
// EventToRequest, which parses a URL made of the decoded rawPath: a control
// character (%00–%1F, %7F decoded) or a literal '%' fails that parse, and
// its failure path prints the whole URL, query and tokens included, to
// stdout (a function error and a leak). Here every byte of rawPath reaches
// the handler's URL.Path as data, the query stays as sent, and nothing is
// printed. Only the proxy's response writer is used, which prints nothing.
func Adapter(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		w := core.NewProxyResponseWriterV2()
		h.ServeHTTP(w, Request(ctx, ev))
		resp, err := w.GetProxyResponse()
		if err != nil {
			// Only a handler that wrote nothing gets here; the api's
			// handlers always write, so this is GitLab's 500, not a
			// function error.
			return internalError, nil
		}
		return resp, nil
	}
}

var internalError = events.APIGatewayV2HTTPResponse{
	StatusCode: http.StatusInternalServerError,
	Headers:    map[string]string{"Content-Type": "application/json", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN"},
	Body:       `{"message":"500 Internal Server Error"}`,
}

// Request is the http.Request an HTTP API event stands for. It cannot fail:
// the path is taken as decoded data, never parsed.
func Request(ctx context.Context, ev events.APIGatewayV2HTTPRequest) *http.Request {
	path := cmp.Or(ev.RawPath, ev.RequestContext.HTTP.Path)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: "https", Host: ev.RequestContext.DomainName, Path: path, RawQuery: rawQuery(ev)}
	body, n := eventBody(ev)
	r := &http.Request{
		Method: strings.ToUpper(ev.RequestContext.HTTP.Method),
		URL:    u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header(ev), Body: body, ContentLength: n,
		Host: u.Host, RemoteAddr: ev.RequestContext.HTTP.SourceIP, RequestURI: u.RequestURI(),
	}
	return r.WithContext(logging.WithGateway(ctx, ev.RequestContext))
}

// rawQuery is the query as the client sent it (the gateway keeps it
// encoded); an event without rawQueryString (a hand-written test event) has
// its decoded parameters re-encoded.
func rawQuery(ev events.APIGatewayV2HTTPRequest) string {
	if ev.RawQueryString != "" || len(ev.QueryStringParameters) == 0 {
		return ev.RawQueryString
	}
	v := url.Values{}
	for k, s := range ev.QueryStringParameters {
		v.Add(k, s)
	}
	return v.Encode()
}

// header keeps each header's value whole. The gateway joins repeated
// headers with commas; GitLab behind Rack sees one joined value too, so
// `PRIVATE-TOKEN: a` twice is the token "a,a", not "a" (the proxy library
// would split it and hand the handler the first).
func header(ev events.APIGatewayV2HTTPRequest) http.Header {
	h := make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		h[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
	}
	if len(ev.Cookies) > 0 {
		h["Cookie"] = []string{strings.Join(ev.Cookies, "; ")}
	}
	return h
}

// errBody is what reading the body of an event whose base64 does not
// decode gives; the handler answers it as a malformed body (GitLab's 400).
var errBody = errors.New("request body is not valid base64")

func eventBody(ev events.APIGatewayV2HTTPRequest) (io.ReadCloser, int64) {
	b := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if b, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return io.NopCloser(errReader{}), -1
		}
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBody }
