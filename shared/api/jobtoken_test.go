package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// GET /job answers the job of a job token, from wherever GitLab reads one,
// while the job runs; other credentials get GitLab's answers.
func TestGetJobByToken(t *testing.T) {
	d := newDemo(t, 40)
	d.importMore(t)
	tests := []struct {
		name, target string
		header       map[string]string
		status       int
		body         string // a substring of the body
		job          int64
	}{
		{"JOB-TOKEN header", "/api/v4/job", jobToken(demo.JobTokenRunning), 200, `"status":"running"`, demo.RunningJobID},
		{"job_token parameter", "/api/v4/job?job_token=" + demo.JobTokenRunning, nil, 200, "", demo.RunningJobID},
		{"token parameter", "/api/v4/job?token=" + demo.JobTokenRunning, nil, 200, "", demo.RunningJobID},
		{"bearer", "/api/v4/job", map[string]string{"Authorization": "Bearer " + demo.JobTokenRunning}, 200, "", demo.RunningJobID},
		{"canceling job", "/api/v4/job", jobToken(jobTokenCanceling), 200, `"status":"canceling"`, cancelingJob},
		{"other project's job", "/api/v4/job", jobToken(jobTokenFrontend), 200, `"ci_job_token_scope_enabled":true`, frontendJob},
		{"finished job", "/api/v4/job", jobToken(demo.JobTokenFinished), 401, `{"message":"401 Unauthorized"}`, 0},
		{"erased job", "/api/v4/job", jobToken(jobTokenErased), 401, `{"message":"401 Unauthorized"}`, 0},
		{"unknown job token", "/api/v4/job", jobToken("glcbt-nope"), 401, `{"message":"401 Unauthorized"}`, 0},
		{"job token as PRIVATE-TOKEN", "/api/v4/job", token(demo.JobTokenRunning), 401, `{"message":"401 Unauthorized"}`, 0},
		{"anonymous", "/api/v4/job", nil, 401, `{"message":"401 Unauthorized"}`, 0},
		{"personal access token", "/api/v4/job", token(demo.TokenMaintainer), 404, `{"message":"404 Job Not Found"}`, 0},
		{"personal access token, bearer", "/api/v4/job", map[string]string{"Authorization": "Bearer " + demo.TokenAdmin}, 404, `{"message":"404 Job Not Found"}`, 0},
		{"expired personal access token", "/api/v4/job", token(demo.TokenExpired), 401, `"error":"invalid_token"`, 0},
		{"trailing path", "/api/v4/job/", jobToken(demo.JobTokenRunning), 404, `{"error":"404 Not Found"}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.coldContainer() // the call counts below are a cold container's
			d.Counter.Reset()
			r := d.call(t, "get-job-by-token", http.MethodGet, tc.target, tc.header)
			if r.Code != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.Code, tc.status, r.Body)
			}
			mustContain(t, r.Body.String(), tc.body)
			if tc.job == 0 {
				return
			}
			var got struct {
				ID     int64          `json:"id"`
				Runner map[string]any `json:"runner"`
				User   map[string]any `json:"user"`
			}
			if err := json.Unmarshal(r.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.job || got.Runner == nil || got.User == nil {
				t.Errorf("job %d with runner %v and user %v, want job %d with both", got.ID, got.Runner, got.User, tc.job)
			}
			if calls := d.Counter.Calls(); calls["BatchGetItem"] != 3 || d.Counter.Total() != 3 {
				t.Errorf("calls %v, want 3 BatchGetItem", calls)
			}
		})
	}
}

// The job token's job comes back exactly as GET /projects/:id/jobs/:job_id
// shows it.
func TestGetJobByTokenMatchesGetJob(t *testing.T) {
	d := newDemo(t, 40)
	byToken := d.call(t, "get-job-by-token", http.MethodGet, "/api/v4/job", jobToken(demo.JobTokenRunning))
	byID := d.call(t, "get-job", http.MethodGet, fmt.Sprintf("/api/v4/projects/1/jobs/%d", demo.RunningJobID), token(demo.TokenAdmin))
	if byToken.Code != 200 || byToken.Body.String() != byID.Body.String() {
		t.Errorf("GET /job:\n%s\nGET job:\n%s", byToken.Body, byID.Body)
	}
}

// allowed_agents lists the agents authorized for the job's project and its
// group's ancestors, with GitLab's shape.
func TestListAllowedAgents(t *testing.T) {
	d := newDemo(t, 40)
	d.importMore(t)
	type agent struct {
		ID            int64          `json:"id"`
		ConfigProject map[string]any `json:"config_project"`
		Configuration map[string]any `json:"configuration"`
	}
	type response struct {
		AllowedAgents []agent `json:"allowed_agents"`
		Job           struct{ ID int64 }
		Pipeline      struct{ ID int64 }
		Project       struct {
			ID     int64
			Groups []struct{ ID int64 }
		}
		User struct {
			ID             int64
			Username       string
			RolesInProject []string `json:"roles_in_project"`
		}
		Environment *map[string]string `json:"environment"`
	}
	tests := []struct {
		name     string
		header   map[string]string
		status   int
		body     string
		agents   string // ids of the agents
		groups   string // ids of the groups
		pipeline int64
		env      bool
	}{
		{"backend job", jobToken(demo.JobTokenRunning), 200, "", "[1 2]", "[3]", 1001, true},
		{"frontend job, nested group", map[string]string{"Authorization": "Bearer " + jobTokenFrontend}, 200, "", "[2]", "[4 3]", 1007, false},
		{"finished job", jobToken(demo.JobTokenFinished), 401, `{"message":"401 Unauthorized"}`, "", "", 0, false},
		{"personal access token", token(demo.TokenDeveloper), 404, `{"message":"404 Job Not Found"}`, "", "", 0, false},
		{"anonymous", nil, 401, `{"message":"401 Unauthorized"}`, "", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.coldContainer() // the call counts below are a cold container's
			d.Counter.Reset()
			r := d.call(t, "list-allowed-agents", http.MethodGet, "/api/v4/job/allowed_agents", tc.header)
			if r.Code != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.Code, tc.status, r.Body)
			}
			mustContain(t, r.Body.String(), tc.body)
			if r.Code != 200 {
				return
			}
			got := decode[response](t, r.Body)
			var agents, groups []int64
			for _, a := range got.AllowedAgents {
				agents = append(agents, a.ID)
				if a.ConfigProject["path_with_namespace"] == nil || a.Configuration == nil {
					t.Errorf("agent %d: config_project %v, configuration %v", a.ID, a.ConfigProject, a.Configuration)
				}
			}
			for _, g := range got.Project.Groups {
				groups = append(groups, g.ID)
			}
			if fmt.Sprint(agents) != tc.agents || fmt.Sprint(groups) != tc.groups {
				t.Errorf("agents %v, groups %v; want %s, %s", agents, groups, tc.agents, tc.groups)
			}
			if got.Pipeline.ID != tc.pipeline || got.Job.ID == 0 || got.User.Username == "" {
				t.Errorf("job %d, pipeline %d, user %+v", got.Job.ID, got.Pipeline.ID, got.User)
			}
			if (got.Environment != nil) != tc.env {
				t.Errorf("environment %v, want present: %v", got.Environment, tc.env)
			}
			// Lookup (2) + project authorizations and one Query per group
			// level + the configuration projects (1).
			levels := len(groups)
			if calls := d.Counter.Calls(); calls["BatchGetItem"] != 3 || calls["Query"] != 1+levels {
				t.Errorf("calls %v, want 3 BatchGetItem and %d Query", calls, 1+levels)
			}
		})
	}
}

// roles_in_project lists every role up to the user's access level.
func TestAllowedAgentsRoles(t *testing.T) {
	d := newDemo(t, 40)
	r := d.call(t, "list-allowed-agents", http.MethodGet, "/api/v4/job/allowed_agents", jobToken(demo.JobTokenRunning))
	var got struct {
		User struct {
			ID    int64    `json:"id"`
			Roles []string `json:"roles_in_project"`
		} `json:"user"`
		Environment map[string]string `json:"environment"`
	}
	if err := json.Unmarshal(r.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{
		1: "[]", // root is an admin, not a member
		2: "[guest planner reporter developer maintainer security_manager]",
		3: "[guest planner reporter developer security_manager]",
	}[got.User.ID]
	if fmt.Sprint(got.User.Roles) != want {
		t.Errorf("user %d: roles %v, want %s", got.User.ID, got.User.Roles, want)
	}
	if fmt.Sprint(got.Environment) != "map[slug:staging tier:staging]" {
		t.Errorf("environment %v", got.Environment)
	}
}
