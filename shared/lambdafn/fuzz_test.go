package lambdafn_test

import (
	"context"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
)

// Any event the gateway can send becomes a request: the decoded path
// reaches URL.Path byte for byte, headers stay whole, the body decodes or
// fails on read; nothing panics. Seeds: testdata/fuzz/FuzzRequest, plus these.
func FuzzRequest(f *testing.F) {
	f.Add("/api/v4/projects/1\x00/jobs", "private_token=glpat-x&scope[]=a", "a,b", "body", false)
	f.Add("/api/v4/projects/a%zz/jobs/1\x7f/trace", "%zz", "", "aGk=", true)
	f.Add("api/v4/job\n{\"level\":\"ERROR\"}", "\x01", "\r\n", "!!", true)
	f.Add("", "", "", "", false)
	f.Fuzz(func(t *testing.T, path, query, header, body string, b64 bool) {
		ev := events.APIGatewayV2HTTPRequest{RawPath: path, RawQueryString: query, Body: body, IsBase64Encoded: b64,
			Headers: map[string]string{"private-token": header}}
		r := lambdafn.Request(context.Background(), ev)
		want := path
		if !strings.HasPrefix(want, "/") {
			want = "/" + want
		}
		if r.URL.Path != want || r.URL.RawQuery != query || r.Header.Get("Private-Token") != header {
			t.Fatalf("path %q query %q header %q, want %q %q %q", r.URL.Path, r.URL.RawQuery, r.Header.Get("Private-Token"), want, query, header)
		}
		got, err := io.ReadAll(r.Body)
		if b64 {
			if dec, derr := base64.StdEncoding.DecodeString(body); (derr == nil) != (err == nil) || (err == nil && string(dec) != string(got)) {
				t.Fatalf("base64 %q: %q %v", body, got, err)
			}
		} else if err != nil || string(got) != body {
			t.Fatalf("body %q: %q %v", body, got, err)
		}
	})
}
