package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// cost is what one request cost the store.
type cost struct {
	calls    map[string]int
	scanned  int
	capacity float64
}

func (d *fixture) measure(t *testing.T, function, target string) cost {
	t.Helper()
	d.Counter.Reset()
	w := d.call(t, function, http.MethodGet, target, token(demo.TokenMaintainer))
	if w.Code != 200 {
		t.Fatalf("%s: %d %.300s", target, w.Code, w.Body)
	}
	return cost{d.Counter.Calls(), d.Counter.Scanned(), d.Counter.Capacity()}
}

// The store budgets of the foundation: GET job and trace in two
// BatchGetItem round trips (plus one ranged GetObject); a list page in the
// two lookup round trips, one Query per status reading at most per_page+1
// items, and one BatchGetItem for what the page's jobs share.
func TestStoreBudgets(t *testing.T) {
	d := newDemo(t, 200)
	tests := []struct {
		name, function, target string
		calls                  map[string]int
		maxScanned             int
	}{
		{"get job", "get-job", "/api/v4/projects/1/jobs/42", map[string]int{"BatchGetItem": 2}, 0},
		{"get job by path", "get-job", "/api/v4/projects/demo%2Fbackend/jobs/42", map[string]int{"BatchGetItem": 2}, 0},
		{"trace", "get-job-trace", "/api/v4/projects/1/jobs/42/trace", map[string]int{"BatchGetItem": 2, "GetObject": 1}, 0},
		{"list page 1", "list-project-jobs", "/api/v4/projects/1/jobs",
			map[string]int{"BatchGetItem": 3, "Query": 1}, 21},
		{"list deep offset page", "list-project-jobs", "/api/v4/projects/1/jobs?page=9&per_page=20",
			map[string]int{"BatchGetItem": 3, "Query": 1}, 21},
		{"list two scopes", "list-project-jobs", "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed&per_page=10",
			map[string]int{"BatchGetItem": 3, "Query": 2}, 22},
		{"keyset page", "list-project-jobs", "/api/v4/projects/1/jobs?pagination=keyset&per_page=50",
			map[string]int{"BatchGetItem": 3, "Query": 1}, 51},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := d.measure(t, tc.function, tc.target)
			if fmt.Sprint(c.calls) != fmt.Sprint(tc.calls) {
				t.Errorf("calls %v, want %v", c.calls, tc.calls)
			}
			if c.scanned > tc.maxScanned {
				t.Errorf("%d items read by queries, want at most %d", c.scanned, tc.maxScanned)
			}
			t.Logf("%s: %v, %d items queried, %.1f read units", tc.name, c.calls, c.scanned, c.capacity)
		})
	}
	// A 20-job page is one Query of at most 8 x 4 KB read units' worth
	// (4 eventually consistent units): job items stay compact.
	d.Counter.Reset()
	page, err := d.Deps.Store.ProjectBuilds(context.Background(), mustProject(t, d), rangeOf(20))
	if err != nil || len(page.Jobs) != 20 {
		t.Fatal(err)
	}
	if c := d.Counter.Capacity(); c > 4 {
		t.Errorf("a 20-job Query consumed %.1f read units, want at most 4", c)
	}
}

// bigWorld is a project with n builds in pipelines of 50, as compact as
// GitLab's JSON allows.
func bigWorld(n int) *world.World {
	w := demo.Seed(1)
	w.Jobs = w.Jobs[:0]
	w.Pipelines = w.Pipelines[:0]
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	statuses := []string{"success", "failed", "canceled", "running", "pending", "manual", "skipped", "created"}
	for i := 1; i <= n; i++ {
		pl := map[string]any{"id": 100000 + i/50, "iid": i / 50, "project_id": 1, "sha": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd",
			"ref": "main", "status": "success", "source": "push", "created_at": "2026-02-01T00:00:00.000Z",
			"updated_at": "2026-02-01T00:00:00.000Z", "web_url": "https://gitlab.example.com/demo/backend/-/pipelines/1"}
		created := base.Add(time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05.000Z")
		b, _ := json.Marshal(map[string]any{"id": 10000 + i, "status": statuses[i%len(statuses)], "stage": "test",
			"name": fmt.Sprintf("rspec %d", i%7), "ref": "main", "tag": false, "coverage": nil, "allow_failure": false,
			"created_at": created, "started_at": nil, "finished_at": nil, "erased_at": nil, "duration": nil,
			"queued_duration": nil, "pipeline": pl, "project_id": 1, "tag_list": []string{"docker"}, "artifacts": []any{}})
		w.Jobs = append(w.Jobs, b)
	}
	return w
}

// A keyset walk over 5,000 builds: the last page costs what the first one
// does, in calls, items read and read units.
func TestKeysetWalkCostIsFlat(t *testing.T) {
	env := testenv.New(t)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Deps.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), bigWorld(5000)); err != nil {
		t.Fatal(err)
	}
	d := &fixture{Env: env}
	for _, scope := range []string{"", "&scope[]=success&scope[]=failed"} {
		target := "/api/v4/projects/1/jobs?pagination=keyset&per_page=100" + scope
		var first, last cost
		pages, rows := 0, 0
		for target != "" {
			d.Counter.Reset()
			w := d.call(t, "list-project-jobs", http.MethodGet, target, token(demo.TokenMaintainer))
			if w.Code != 200 {
				t.Fatalf("%s: %d %.300s", target, w.Code, w.Body)
			}
			c := cost{d.Counter.Calls(), d.Counter.Scanned(), d.Counter.Capacity()}
			rows += len(decode[[]jobRow](t, w.Body))
			if pages == 0 {
				first = c
			}
			last = c
			pages++
			target = nextLink(t, w.Header().Get("Link"))
		}
		if want := map[string]int{"": 5000, "&scope[]=success&scope[]=failed": 1250}[scope]; rows != want {
			t.Errorf("scope %q: walked %d rows, want %d", scope, rows, want)
		}
		if fmt.Sprint(first.calls) != fmt.Sprint(last.calls) {
			t.Errorf("scope %q: first page calls %v, last page %v", scope, first.calls, last.calls)
		}
		maxScanned := 101 * max(1, strings.Count(scope, "scope"))
		if first.scanned > maxScanned || last.scanned > maxScanned {
			t.Errorf("scope %q: items read first %d, last %d, want at most %d", scope, first.scanned, last.scanned, maxScanned)
		}
		if last.capacity > first.capacity {
			t.Errorf("scope %q: last page %.1f read units, first %.1f", scope, last.capacity, first.capacity)
		}
		t.Logf("scope %q: %d pages; first page %v %d items %.1f RU; last page %v %d items %.1f RU", scope, pages,
			first.calls, first.scanned, first.capacity, last.calls, last.scanned, last.capacity)
	}
}
