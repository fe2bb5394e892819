package api_test

import (
	"net/http"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// Who may read which project's jobs, and what everyone else gets, on the
// three foundation endpoints.
func TestReadPermissions(t *testing.T) {
	d := newDemo(t, 40)
	const (
		unauthorized = `{"message":"401 Unauthorized"}`
		noProject    = `{"message":"404 Project Not Found"}`
		forbidden    = `{"message":"403 Forbidden"}`
	)
	tests := []struct {
		name    string
		target  string
		headers map[string]string
		status  int
		body    string
	}{
		{"anonymous", "/api/v4/projects/1/jobs", nil, 401, unauthorized},
		{"anonymous on a public project", "/api/v4/projects/3/jobs", nil, 401, unauthorized},
		{"unknown token", "/api/v4/projects/1/jobs", token("glpat-nope"), 401, unauthorized},
		{"expired token", "/api/v4/projects/1/jobs", token(demo.TokenExpired), 401,
			`{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`},
		{"revoked token", "/api/v4/projects/1/jobs", token(demo.TokenRevoked), 401,
			`{"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}`},
		{"read_api token reads", "/api/v4/projects/1/jobs", token(demo.TokenReadAPI), 200, ""},
		{"bearer token", "/api/v4/projects/1/jobs", map[string]string{"Authorization": "Bearer " + demo.TokenMaintainer}, 200, ""},
		{"private_token parameter", "/api/v4/projects/1/jobs?private_token=" + demo.TokenMaintainer, nil, 200, ""},
		{"admin, not a member", "/api/v4/projects/2/jobs", token(demo.TokenAdmin), 200, ""},
		{"reporter", "/api/v4/projects/2/jobs", token(demo.TokenReporter), 200, ""},
		{"guest, public pipelines", "/api/v4/projects/1/jobs", token(demo.TokenGuest), 200, ""},
		{"guest, members-only pipelines", "/api/v4/projects/2/jobs", token(demo.TokenGuest), 403, forbidden},
		{"guest, get job", "/api/v4/projects/2/jobs/11", token(demo.TokenGuest), 403, forbidden},
		{"non-member, private project", "/api/v4/projects/1/jobs", token(demo.TokenOutsider), 404, noProject},
		{"non-member, private project path", "/api/v4/projects/demo%2Fbackend/jobs/42", token(demo.TokenOutsider), 404, noProject},
		{"non-member, private trace", "/api/v4/projects/1/jobs/42/trace", token(demo.TokenOutsider), 404, noProject},
		{"non-member, public project", "/api/v4/projects/demo%2Fwebsite/jobs", token(demo.TokenOutsider), 200, ""},
		{"unknown project", "/api/v4/projects/999/jobs", token(demo.TokenAdmin), 404, noProject},
		{"unknown project path", "/api/v4/projects/demo%2Fnope/jobs", token(demo.TokenAdmin), 404, noProject},
		{"bare project name", "/api/v4/projects/backend/jobs", token(demo.TokenAdmin), 404, noProject},
		{"path in other case", "/api/v4/projects/Demo%2FBackend/jobs", token(demo.TokenMaintainer), 200, ""},
		{"job token, own project", "/api/v4/projects/1/jobs", map[string]string{"JOB-TOKEN": demo.JobTokenRunning}, 200, ""},
		{"job token parameter", "/api/v4/projects/1/jobs?job_token=" + demo.JobTokenRunning, nil, 200, ""},
		{"job token as bearer", "/api/v4/projects/1/jobs", map[string]string{"Authorization": "Bearer " + demo.JobTokenRunning}, 200, ""},
		{"job token as PRIVATE-TOKEN", "/api/v4/projects/1/jobs", token(demo.JobTokenRunning), 401, unauthorized},
		{"job token of a finished job", "/api/v4/projects/1/jobs", map[string]string{"JOB-TOKEN": demo.JobTokenFinished}, 401, unauthorized},
		{"job token, other project", "/api/v4/projects/2/jobs", map[string]string{"JOB-TOKEN": demo.JobTokenRunning}, 403,
			`{"message":"403 Forbidden - Authentication by CI/CD job token not allowed from demo/backend to project #2."}`},
		{"job token on get job", "/api/v4/projects/1/jobs/42", map[string]string{"JOB-TOKEN": demo.JobTokenRunning}, 401, unauthorized},
		{"PAT as JOB-TOKEN", "/api/v4/projects/1/jobs", map[string]string{"JOB-TOKEN": demo.TokenMaintainer}, 401, unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn := "list-project-jobs"
			switch {
			case len(tc.target) > 6 && tc.target[len(tc.target)-6:] == "/trace":
				fn = "get-job-trace"
			case tc.target[len(tc.target)-5:] != "/jobs" && !containsQuery(tc.target):
				fn = "get-job"
			}
			w := d.call(t, fn, http.MethodGet, tc.target, tc.headers)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %.300s", w.Code, tc.status, w.Body)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %s, want %s", w.Body, tc.body)
			}
			if tc.status == 401 && tc.body != unauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate on an invalid_token answer")
			}
		})
	}
}

func containsQuery(target string) bool {
	for _, c := range target {
		if c == '?' {
			return true
		}
	}
	return false
}

// Non-GET methods on read routes, and paths no route claims, get GitLab's
// catch-all 404; HEAD answers like GET without a body.
func TestMethodsAndUnknownRoutes(t *testing.T) {
	d := newDemo(t, 5)
	m := token(demo.TokenMaintainer)
	w := d.call(t, "list-project-jobs", http.MethodPost, "/api/v4/projects/1/jobs", m)
	if w.Code != 404 || w.Body.String() != `{"error":"404 Not Found"}` {
		t.Errorf("POST jobs: %d %s", w.Code, w.Body)
	}
	w = d.call(t, "not-found", http.MethodGet, "/api/v4/whatever", nil)
	if w.Code != 404 || w.Body.String() != `{"error":"404 Not Found"}` {
		t.Errorf("unknown route: %d %s", w.Code, w.Body)
	}
	w = d.call(t, "get-job", http.MethodHead, "/api/v4/projects/1/jobs/1", m)
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = d.call(t, "get-job", http.MethodGet, "/api/v4/projects/1/jobs/abc", m)
	if w.Code != 400 || w.Body.String() != `{"error":"job_id is invalid"}` {
		t.Errorf("job_id abc: %d %s", w.Code, w.Body)
	}
	w = d.call(t, "get-job", http.MethodGet, "/api/v4/projects/1/jobs/abc", nil)
	if w.Code != 401 {
		t.Errorf("unauthenticated bad job_id: %d, want 401 before 400", w.Code)
	}
	for _, h := range []string{"X-Frame-Options", "X-Content-Type-Options"} {
		if w.Header().Get(h) == "" {
			t.Errorf("%s missing", h)
		}
	}
}
