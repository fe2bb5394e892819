package api_test

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// Whatever a container's caches hold, it answers as a cold one would.
// Every GET and HEAD event of events/, with each demo credential (and none)
// in place of its own, is answered alike by a cold container, by that
// container again (its caches now hold what the request read), and by one
// container that has served every request before (its caches hold the
// others' tokens, users, memberships, projects and pages).
func TestContainersAnswerAlike(t *testing.T) {
	d := newDemo(t, 40)
	creds := []map[string]string{nil, jobTokenHeader(demo.JobTokenFinished)}
	for _, rt := range demo.Tokens() {
		if strings.HasPrefix(rt.Token, "glcbt-") {
			creds = append(creds, jobTokenHeader(rt.Token))
		} else {
			creds = append(creds, token(rt.Token))
		}
	}
	container := func() *api.Deps {
		deps := *d.Deps
		deps.Store = store.New(d.DynamoDB, d.Table)
		return &deps
	}
	long := container()
	checked := 0
	fns, evs := eventsOf(t)
	for i, ev := range evs {
		fn := fns[i]
		if m := ev.RequestContext.HTTP.Method; fn.Route().Stream || m != "GET" && m != "HEAD" {
			continue // actions change what the next request reads
		}
		for _, cred := range creds {
			e := withCredentials(ev, cred)
			cold := container()
			var answers []events.APIGatewayV2HTTPResponse
			for _, deps := range []*api.Deps{cold, cold, long} {
				resp, _ := invoke(t, deps, fn, e, time.Minute)
				answers = append(answers, comparable(resp))
			}
			for i, name := range []string{"again", "in a container that served every request before"} {
				if a, b := answers[0], answers[i+1]; !reflect.DeepEqual(a, b) {
					t.Errorf("%s %s%s as %v: cold %d %v %.300s\n%s %d %v %.300s", ev.RequestContext.HTTP.Method, ev.RawPath, ev.RawQueryString, cred,
						a.StatusCode, a.Headers, a.Body, name, b.StatusCode, b.Headers, b.Body)
				}
			}
			checked++
		}
	}
	if checked < 500 {
		t.Fatalf("%d requests checked", checked)
	}
}

// withCredentials is ev with cred's headers in place of its own
// credentials (headers and query parameters).
func withCredentials(ev events.APIGatewayV2HTTPRequest, cred map[string]string) events.APIGatewayV2HTTPRequest {
	ev.Headers = maps.Clone(ev.Headers)
	for _, k := range []string{"private-token", "job-token", "authorization"} {
		delete(ev.Headers, k)
	}
	for k, v := range cred {
		ev.Headers[strings.ToLower(k)] = v
	}
	ev.QueryStringParameters = maps.Clone(ev.QueryStringParameters)
	var keep []string
	for _, part := range strings.Split(ev.RawQueryString, "&") {
		if k, _, _ := strings.Cut(part, "="); part != "" && k != "job_token" && k != "private_token" {
			keep = append(keep, part)
		}
	}
	ev.RawQueryString = strings.Join(keep, "&")
	delete(ev.QueryStringParameters, "job_token")
	delete(ev.QueryStringParameters, "private_token")
	return ev
}

// comparable is resp without what differs by the second: a presigned
// URL's signature and date.
func comparable(resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	resp.Headers = maps.Clone(resp.Headers)
	if loc, ok := resp.Headers["Location"]; ok {
		resp.Headers["Location"], _, _ = strings.Cut(loc, "?")
	}
	return resp
}
