package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// BenchmarkListProjectJobs times list pages against DynamoDB Local and
// reports store calls and items read per page: the first page and a page
// deep in a 5,000-build project cost the same, by offset and by keyset.
// Compare runs with benchstat.
func BenchmarkListProjectJobs(b *testing.B) {
	env := testenv.New(b)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Deps.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), bigWorld(5000)); err != nil {
		b.Fatal(err)
	}
	h := api.ListProjectJobs.Handler(env.Deps)
	get := func(target string) *httptest.ResponseRecorder { return serve(b, h, target, demo.TokenMaintainer) }
	// A keyset cursor 4,000 rows deep.
	deep := "/api/v4/projects/1/jobs?pagination=keyset&per_page=100"
	for range 40 {
		link := get(deep).Header().Get("Link")
		deep = link[strings.Index(link, "/api/v4/"):strings.Index(link, ">")]
	}
	cases := []struct{ name, target string }{
		{"offset/page1", "/api/v4/projects/1/jobs?per_page=100"},
		{"offset/page40", "/api/v4/projects/1/jobs?per_page=100&page=40"},
		{"keyset/first", "/api/v4/projects/1/jobs?pagination=keyset&per_page=100"},
		{"keyset/row4000", deep},
		{"scoped/two-statuses", "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed&per_page=100"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { measure(b, env, func() { get(c.target) }) })
	}
}

// BenchmarkReadEndpoints times the other read endpoints on the demo world,
// with their store calls, items read and read units per request.
func BenchmarkReadEndpoints(b *testing.B) {
	env := testenv.New(b)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Deps.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), demo.Seed(200)); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, function, target, token string
	}{
		{"get-job", "get-job", "/api/v4/projects/1/jobs/42", demo.TokenMaintainer},
		{"get-job-trace", "get-job-trace", "/api/v4/projects/1/jobs/42/trace", demo.TokenMaintainer},
		{"pipeline-jobs/offset", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?include_retried=true", demo.TokenMaintainer},
		{"pipeline-jobs/keyset", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?pagination=keyset&per_page=3", demo.TokenMaintainer},
		{"pipeline-bridges", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1001/bridges", demo.TokenMaintainer},
		{"job-by-token", "get-job-by-token", "/api/v4/job?job_token=" + demo.JobTokenRunning, ""},
		{"allowed-agents", "list-allowed-agents", "/api/v4/job/allowed_agents?job_token=" + demo.JobTokenRunning, ""},
	}
	for _, c := range cases {
		h := api.Function(c.function).Handler(env.Deps)
		b.Run(c.name, func(b *testing.B) { measure(b, env, func() { serve(b, h, c.target, c.token) }) })
	}
}

// serve answers one GET with h, which must succeed.
func serve(b *testing.B, h http.Handler, target, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		r.Header.Set("Private-Token", token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatalf("%s: %d %.200s", target, w.Code, w.Body)
	}
	return w
}

// measure runs op in the benchmark loop and reports its store calls, items
// read and read units per op.
func measure(b *testing.B, env *testenv.Env, op func()) {
	env.Counter.Reset()
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(env.Counter.Total())/float64(b.N), "calls/op")
	b.ReportMetric(float64(env.Counter.Scanned())/float64(b.N), "items/op")
	b.ReportMetric(env.Counter.Capacity()/float64(b.N), "RU/op")
}
