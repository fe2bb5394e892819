package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

type jobRow struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

func TestListProjectJobsParameters(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	tests := []struct {
		name, query string
		status      int
		body        string // a substring of the body
		statuses    []string
		perPage     string
	}{
		{"default page", "", 200, "", nil, "20"},
		{"scope string", "?scope=failed", 200, "", []string{"failed"}, "20"},
		{"scope array", "?scope[]=failed&scope[]=success", 200, "", []string{"failed", "success"}, "20"},
		{"scope array encoded", "?scope%5B%5D=canceled&scope%5B%5D=manual", 200, "", []string{"canceled", "manual"}, "20"},
		{"scope hash", "?scope[a]=running", 200, "", []string{"running"}, "20"},
		{"scope invalid", "?scope[]=failed&scope[]=bogus", 400, `{"error":"scope does not have a valid value"}`, nil, ""},
		{"per_page capped", "?per_page=500", 200, "", nil, "100"},
		{"per_page negative", "?per_page=-3", 200, "", nil, "20"},
		{"per_page zero", "?per_page=0", 400, `{"error":"per_page has a value not allowed"}`, nil, ""},
		{"per_page text", "?per_page=abc", 400, `{"error":"per_page is invalid"}`, nil, ""},
		{"page text", "?page=x", 400, `{"error":"page is invalid"}`, nil, ""},
		{"page zero is page one", "?page=0&per_page=2", 200, "", nil, "2"},
		{"keyset wrong order", "?pagination=keyset&order_by=name", 405, `{"error":"Keyset pagination is not yet available for this type of request"}`, nil, ""},
		{"keyset asc", "?pagination=keyset&sort=asc", 405, "Keyset pagination is not yet available", nil, ""},
		{"filtered offset past GitLab's limit", "?scope=failed&page=501&per_page=100", 405,
			`{"error":"Offset pagination has a maximum allowed offset of 50000 for requests that return objects of type Ci::Build. Remaining records can be retrieved using keyset pagination."}`, nil, ""},
		{"keyset tampered cursor", "?pagination=keyset&cursor=eyJpZCI6Im5vcGUifQ", 400, `{"error":"cursor is invalid"}`, nil, ""},
		{"keyset garbage cursor", "?pagination=keyset&cursor=!!!not-base64", 400, `{"error":"cursor is invalid"}`, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/1/jobs"+tc.query, m)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %.300s", w.Code, tc.status, w.Body)
			}
			mustContain(t, w.Body.String(), tc.body)
			if w.Code != 200 {
				return
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("content type %q", got)
			}
			if tc.perPage != "" && !strings.Contains(tc.query, "keyset") {
				if got := w.Header().Get("X-Per-Page"); got != tc.perPage {
					t.Errorf("X-Per-Page %q, want %q", got, tc.perPage)
				}
			}
			rows := decode[[]jobRow](t, w.Body)
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			for i, r := range rows {
				if i > 0 && r.ID >= rows[i-1].ID {
					t.Errorf("not id desc: %d after %d", r.ID, rows[i-1].ID)
				}
				if tc.statuses != nil && !contains(tc.statuses, r.Status) {
					t.Errorf("job %d is %s, want one of %v", r.ID, r.Status, tc.statuses)
				}
			}
			for _, h := range []string{"X-Total", "X-Total-Pages"} {
				if _, ok := w.Header()[h]; ok {
					t.Errorf("%s sent; GitLab never sends totals on this endpoint", h)
				}
			}
		})
	}
	// Unfiltered offset pages cost the same at any depth: no limit there.
	w := d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/1/jobs?page=1000&per_page=100", m)
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Errorf("unfiltered page 1000: %d %.200s, want 200 []", w.Code, w.Body)
	}
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// Walking offset pages with X-Next-Page visits every build once, newest
// first, with no bridge; the last page has no next page.
func TestListProjectJobsOffsetWalk(t *testing.T) {
	d := newDemo(t, 40)
	for _, scope := range []string{"", "&scope[]=success&scope[]=failed"} {
		seen := map[int64]bool{}
		var last int64 = 1 << 62
		page := "1"
		for n := 0; page != ""; n++ {
			w := d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/demo%2Fbackend/jobs?per_page=7&page="+page+scope,
				token(demo.TokenReporter))
			if w.Code != 200 {
				t.Fatalf("page %s: %d %s", page, w.Code, w.Body)
			}
			for _, r := range decode[[]jobRow](t, w.Body) {
				if seen[r.ID] || r.ID >= last {
					t.Fatalf("job %d out of order or twice", r.ID)
				}
				seen[r.ID], last = true, r.ID
			}
			if n > 0 && w.Header().Get("X-Prev-Page") == "" {
				t.Errorf("page %s has no X-Prev-Page", page)
			}
			page = w.Header().Get("X-Next-Page")
		}
		want := 0
		for _, raw := range d.world.Jobs {
			var j struct {
				ProjectID int64           `json:"project_id"`
				Status    string          `json:"status"`
				Bridge    json.RawMessage `json:"downstream_pipeline"`
			}
			_ = json.Unmarshal(raw, &j)
			if j.ProjectID == 1 && j.Bridge == nil && (scope == "" || j.Status == "success" || j.Status == "failed") {
				want++
			}
		}
		if len(seen) != want {
			t.Errorf("scope %q: walked %d builds, want %d", scope, len(seen), want)
		}
	}
}

// Keyset pages follow Link rel="next" to the end; the last page has no Link.
func TestListProjectJobsKeysetWalk(t *testing.T) {
	d := newDemo(t, 40)
	for _, scope := range []string{"", "&scope=success"} {
		target := "/api/v4/projects/1/jobs?pagination=keyset&per_page=9" + scope
		seen := map[int64]bool{}
		for target != "" {
			w := d.call(t, "list-project-jobs", http.MethodGet, target, token(demo.TokenMaintainer))
			if w.Code != 200 {
				t.Fatalf("%s: %d %s", target, w.Code, w.Body)
			}
			for _, r := range decode[[]jobRow](t, w.Body) {
				if seen[r.ID] {
					t.Fatalf("job %d twice", r.ID)
				}
				seen[r.ID] = true
			}
			target = nextLink(t, w.Header().Get("Link"))
			if w.Header().Get("X-Page") != "" {
				t.Error("X-Page sent in keyset mode")
			}
		}
		if len(seen) < 20 {
			t.Errorf("scope %q: only %d jobs walked", scope, len(seen))
		}
	}
}

// nextLink returns the path and query of the rel="next" URL, or "".
func nextLink(t *testing.T, link string) string {
	t.Helper()
	for _, part := range strings.Split(link, ", ") {
		if strings.HasSuffix(part, `rel="next"`) {
			u := strings.TrimSuffix(strings.TrimPrefix(part[:strings.Index(part, ">")], "<"), ">")
			i := strings.Index(u, "/api/v4/")
			return u[i:]
		}
	}
	return ""
}

// A list page's Query reads only the attributes a list renders: every job
// of every page (builds of each project, bridges of each pipeline) is byte
// for byte what the whole stored job renders, GET job's body for a build.
func TestListedJobsRenderAsWhole(t *testing.T) {
	d := newDemo(t, 40)
	ctx := context.Background()
	bridges := 0
	pipelines := map[string]map[int64]json.RawMessage{}
	for _, raw := range d.world.Jobs {
		var j struct {
			ID         int64              `json:"id"`
			ProjectID  int64              `json:"project_id"`
			Pipeline   struct{ ID int64 } `json:"pipeline"`
			Downstream json.RawMessage    `json:"downstream_pipeline"`
		}
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatal(err)
		}
		if j.Downstream == nil {
			continue
		}
		target := fmt.Sprintf("/api/v4/projects/%d/pipelines/%d/bridges?per_page=100", j.ProjectID, j.Pipeline.ID)
		if pipelines[target] == nil {
			pipelines[target] = listedEntities(t, d, "list-pipeline-bridges", target)
		}
		f, err := d.Deps.Store.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: j.ProjectID}, JobID: j.ID})
		if err != nil || f.Job == nil {
			t.Fatalf("bridge %d: %v", j.ID, err)
		}
		rel, err := d.Deps.Store.Related(ctx, f.Job)
		if err != nil {
			t.Fatal(err)
		}
		want, err := render.AppendBridge(nil, f.Job, f.Project, rel, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		if got := pipelines[target][j.ID]; string(got) != string(want) {
			t.Errorf("bridge %d listed\n %s\nwhole\n %s", j.ID, got, want)
		}
		bridges++
	}
	builds := 0
	for project := 1; project <= 3; project++ {
		for id, got := range listedEntities(t, d, "list-project-jobs", fmt.Sprintf("/api/v4/projects/%d/jobs?pagination=keyset&per_page=100", project)) {
			w := d.call(t, "get-job", http.MethodGet, fmt.Sprintf("/api/v4/projects/%d/jobs/%d", project, id), token(demo.TokenAdmin))
			if w.Code != 200 || string(got) != w.Body.String() {
				t.Errorf("job %d listed\n %s\nGET job %d\n %s", id, got, w.Code, w.Body)
			}
			builds++
		}
	}
	if bridges == 0 || builds < 100 {
		t.Fatalf("compared %d bridges and %d builds", bridges, builds)
	}
}

// listedEntities walks a list's keyset or offset pages from target and
// returns each entity's bytes by id.
func listedEntities(t *testing.T, d *fixture, function, target string) map[int64]json.RawMessage {
	t.Helper()
	out := map[int64]json.RawMessage{}
	for target != "" {
		w := d.call(t, function, http.MethodGet, target, token(demo.TokenAdmin))
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
		for _, raw := range decode[[]json.RawMessage](t, w.Body) {
			out[decode[jobRow](t, bytes.NewReader(raw)).ID] = raw
		}
		target = nextLink(t, w.Header().Get("Link"))
	}
	return out
}
