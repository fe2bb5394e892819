package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// A warm container guesses a list page's Query from what it last read (a
// project's or a ref's build count): after a retry adds a build, every
// page, guessed or not, is the one a cold container serves, byte for byte.
func TestSpeculativePagesFollowTheFreshProject(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	targets := []string{"/api/v4/projects/1/jobs?per_page=5", "/api/v4/projects/1/jobs?per_page=5&page=3",
		"/api/v4/projects/demo%2Fbackend/jobs?per_page=5&page=2", "/api/v4/projects/1/jobs?scope[]=failed&per_page=3",
		"/api/v4/projects/1/pipelines/1001/jobs?per_page=2&page=2",
		// Deep pages of every demo ref: the retried job's ref count moved.
		"/api/v4/projects/1/jobs?ref=main&per_page=5&page=2", "/api/v4/projects/demo%2Fbackend/jobs?ref=feature%2Flogin&per_page=3&page=2",
		"/api/v4/projects/1/jobs?ref=fix%2Fcache&per_page=3&page=2", "/api/v4/projects/1/jobs?ref=main&scope[]=failed&per_page=3"}
	function := func(target string) string {
		if strings.Contains(target, "/pipelines/") {
			return "list-pipeline-jobs"
		}
		return "list-project-jobs"
	}
	for _, target := range targets {
		d.call(t, function(target), http.MethodGet, target, m) // the guesses' counts and paths
	}
	if w := d.post(t, "retry-job", "/api/v4/projects/1/jobs/42/retry", "", m); w.Code != 201 {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	warm := d.Deps.Store
	for _, target := range targets {
		d.Deps.Store = warm
		got := d.call(t, function(target), http.MethodGet, target, m)
		d.coldContainer()
		want := d.call(t, function(target), http.MethodGet, target, m)
		if got.Code != 200 || got.Body.String() != want.Body.String() || got.Header().Get("Link") != want.Header().Get("Link") {
			t.Errorf("%s: warm %d %.200s\nwant %d %.200s", target, got.Code, got.Body, want.Code, want.Body)
		}
	}
}

// A request turned away after its page's Query was started answers as it
// would without: no page, GitLab's error.
func TestSpeculationRendersNothingUnauthorized(t *testing.T) {
	d := newDemo(t, 40)
	for _, tc := range []struct {
		target string
		header map[string]string
		status int
		body   string
	}{
		{"/api/v4/projects/1/jobs", token(demo.TokenOutsider), 404, `{"message":"404 Project Not Found"}`},
		{"/api/v4/projects/demo%2Fbackend/jobs", token(demo.TokenOutsider), 404, `{"message":"404 Project Not Found"}`},
		{"/api/v4/projects/1/jobs", token(demo.TokenRevoked), 401, `"error":"invalid_token"`},
		{"/api/v4/projects/1/jobs", token("glpat-nobody"), 401, `{"message":"401 Unauthorized"}`},
		{"/api/v4/projects/1/jobs", nil, 401, `{"message":"401 Unauthorized"}`},
		{"/api/v4/projects/2/jobs", token(demo.TokenGuest), 403, `{"message":"403 Forbidden"}`},
		{"/api/v4/projects/2/jobs", map[string]string{"JOB-TOKEN": demo.JobTokenRunning}, 403, "not allowed from demo/backend"},
	} {
		d.call(t, "list-project-jobs", http.MethodGet, tc.target, token(demo.TokenMaintainer)) // warm
		w := d.call(t, "list-project-jobs", http.MethodGet, tc.target, tc.header)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) || w.Header().Get("Link") != "" {
			t.Errorf("%s: %d %.200s, want %d %s", tc.target, w.Code, w.Body, tc.status, tc.body)
		}
	}
}
