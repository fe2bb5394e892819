package lambdafn_test

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
)

// The request keeps what the client sent: repeated headers joined as the
// gateway joined them (one value, as Rack sees it), cookies as one header,
// the decoded path as data, the raw query, and a base64 body decoded (an
// undecodable one fails on read, never before the handler).
func TestRequestKeepsWhatTheClientSent(t *testing.T) {
	ev := events.APIGatewayV2HTTPRequest{
		RawPath: "/api/v4/projects/a%b\x00/jobs", RawQueryString: "scope[]=a%20b&private_token=x",
		Headers: map[string]string{"private-token": "a,b", "content-type": "text/plain"},
		Cookies: []string{"a=1", "b=2"},
		Body:    "aGk=", IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "h.example", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "post"}},
	}
	r := lambdafn.Request(context.Background(), ev)
	body, err := io.ReadAll(r.Body)
	checks := []struct {
		name      string
		got, want any
	}{
		{"method", r.Method, http.MethodPost},
		{"path", r.URL.Path, "/api/v4/projects/a%b\x00/jobs"},
		{"query", r.URL.RawQuery, ev.RawQueryString},
		{"token header", r.Header.Values("Private-Token"), []string{"a,b"}},
		{"cookie", r.Header.Get("Cookie"), "a=1; b=2"},
		{"host", r.Host, "h.example"},
		{"body", string(body), "hi"},
		{"body error", err, nil},
	}
	for _, c := range checks {
		if got, want := c.got, c.want; !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", c.name, got, want)
		}
	}
	ev.Body = "not base64!"
	if _, err := io.ReadAll(lambdafn.Request(context.Background(), ev).Body); err == nil {
		t.Error("an undecodable body reads without error")
	}
}

// A handler that writes nothing is GitLab's 500, not a function error.
func TestSilentHandlerIsGitLabs500(t *testing.T) {
	resp, err := lambdafn.Adapter(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))(context.Background(), events.APIGatewayV2HTTPRequest{RawPath: "/"})
	if err != nil || resp.StatusCode != http.StatusInternalServerError || resp.Body != `{"message":"500 Internal Server Error"}` {
		t.Errorf("got %d %s %v", resp.StatusCode, resp.Body, err)
	}
}
