package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
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
// others' tokens, users, memberships, projects and pages); in one write
// shard and in four.
func TestContainersAnswerAlike(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d shards", shards), func(t *testing.T) { containersAnswerAlike(t, newShardedDemo(t, 40, shards)) })
	}
}

// containersAnswerAlike is TestContainersAnswerAlike in d.
func containersAnswerAlike(t *testing.T, d *fixture) {
	long := d.container()
	checked := 0
	fns, evs := eventsOf(t)
	for i, ev := range evs {
		fn := fns[i]
		if !reads(fn, ev) {
			continue // actions change what the next request reads
		}
		for _, cred := range demoCredentials() {
			e := withCredentials(ev, cred)
			cold := d.container()
			var answers []events.APIGatewayV2HTTPResponse
			for _, deps := range []*api.Deps{cold, cold, long} {
				resp, _ := invoke(t, deps, fn, e, time.Minute)
				answers = append(answers, unsigned(resp))
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

// Actions answer alike whatever a container's caches hold: every POST and
// DELETE event, each with every demo credential, in one order, against two
// copies of the demo world, one with a cold container for each request and
// one with a container that served every GET and HEAD event first. A new
// job's id is its container's (each leases a block of ids), so the id a
// retry answers is left out.
func TestActionsAnswerAlikeInAnyContainer(t *testing.T) {
	cold, warm := newDemo(t, 40), newDemo(t, 40)
	long := warm.container()
	fns, evs := eventsOf(t)
	for i, ev := range evs {
		if reads(fns[i], ev) {
			for _, cred := range demoCredentials() {
				invoke(t, long, fns[i], withCredentials(ev, cred), time.Minute)
			}
		}
	}
	checked := 0
	for i, ev := range evs {
		fn := fns[i]
		if fn.Route().Stream || reads(fn, ev) {
			continue
		}
		for _, cred := range demoCredentials() {
			e := withCredentials(ev, cred)
			a, _ := invoke(t, cold.container(), fn, e, time.Minute)
			b, _ := invoke(t, long, fn, e, time.Minute)
			if a, b := withoutNewID(t, fn, a), withoutNewID(t, fn, b); !reflect.DeepEqual(a, b) {
				t.Errorf("%s %s as %v: cold %d %v %.300s\nwarm %d %v %.300s", ev.RequestContext.HTTP.Method, ev.RawPath, cred,
					a.StatusCode, a.Headers, a.Body, b.StatusCode, b.Headers, b.Body)
			}
			checked++
		}
	}
	if checked < 200 {
		t.Fatalf("%d actions checked", checked)
	}
}

// reads is whether ev asks fn for what it has, changing nothing.
func reads(fn api.Function, ev events.APIGatewayV2HTTPRequest) bool {
	m := ev.RequestContext.HTTP.Method
	return !fn.Route().Stream && (m == "GET" || m == "HEAD")
}

// demoCredentials is none, and each of the demo world's tokens, a job's as
// JOB-TOKEN.
func demoCredentials() []map[string]string {
	creds := []map[string]string{nil, jobTokenHeader(demo.JobTokenFinished)}
	for _, rt := range demo.Tokens() {
		if strings.HasPrefix(rt.Token, "glcbt-") {
			creds = append(creds, jobTokenHeader(rt.Token))
		} else {
			creds = append(creds, token(rt.Token))
		}
	}
	return creds
}

// container is a new warm container of d's stack: its own caches.
func (d *fixture) container() *api.Deps {
	deps := *d.Deps
	deps.Store = store.New(d.DynamoDB, d.Table)
	return &deps
}

// withoutNewID is a retry's answer without its new job's id, its URL and
// the entity tag of both.
func withoutNewID(t *testing.T, fn api.Function, resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	t.Helper()
	if fn != api.RetryJob || resp.StatusCode != http.StatusCreated {
		return resp
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &j); err != nil {
		t.Fatal(err)
	}
	delete(j, "id")
	delete(j, "web_url")
	b, _ := json.Marshal(j)
	resp.Body = string(b)
	resp.Headers = maps.Clone(resp.Headers)
	delete(resp.Headers, "ETag")
	return resp
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

// unsigned is resp without what differs by the second: a presigned
// URL's signature and date.
func unsigned(resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	resp.Headers = maps.Clone(resp.Headers)
	if loc, ok := resp.Headers["Location"]; ok {
		resp.Headers["Location"], _, _ = strings.Cut(loc, "?")
	}
	return resp
}
