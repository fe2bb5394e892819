package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/world"
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
	h := api.ListProjectJobs(env.Deps)
	get := func(target string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set("Private-Token", world.TokenMaintainer)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("%s: %d", target, w.Code)
		}
		return w
	}
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
		b.Run(c.name, func(b *testing.B) {
			env.Counter.Reset()
			for b.Loop() {
				get(c.target)
			}
			b.ReportMetric(float64(env.Counter.Total())/float64(b.N), "calls/op")
			b.ReportMetric(float64(env.Counter.Scanned())/float64(b.N), "items/op")
			b.ReportMetric(env.Counter.Capacity()/float64(b.N), "RU/op")
		})
	}
}
