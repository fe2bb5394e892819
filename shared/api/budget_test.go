package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// cost is what one request cost the store.
type cost struct {
	calls    map[string]int
	trips    int // sequential round trips, from the calls' times
	scanned  int
	capacity float64
}

func (c cost) String() string {
	return fmt.Sprintf("%v, %d round trips, %d items queried, %.1f read units", c.calls, c.trips, c.scanned, c.capacity)
}

func counted(c *testenv.Counter) cost {
	return cost{c.Calls(), c.RoundTrips(), c.Scanned(), c.Capacity()}
}

func (d *fixture) measure(t *testing.T, function, target string, header map[string]string) cost {
	t.Helper()
	d.Counter.Reset()
	w := d.call(t, function, http.MethodGet, target, header)
	if w.Code != 200 {
		t.Fatalf("%s: %d %.300s", target, w.Code, w.Body)
	}
	return counted(d.Counter)
}

// coldContainer gives the fixture a new store on the same table, as a new
// Lambda container has: nothing cached.
func (d *fixture) coldContainer() {
	d.Deps.Store = store.New(d.DynamoDB, d.Table)
}

// budget is what one request may cost: at most so many calls of each
// operation, sequential round trips, items read by queries and read units.
type budget struct {
	calls      map[string]int
	trips      int
	maxScanned int
	maxRU      float64
}

func (b budget) check(t *testing.T, c cost) {
	t.Helper()
	for op, n := range c.calls {
		if n > b.calls[op] {
			t.Errorf("%d %s calls, want at most %d (%v)", n, op, b.calls[op], c)
		}
	}
	if c.trips > b.trips {
		t.Errorf("%d sequential round trips, want at most %d (%v)", c.trips, b.trips, c)
	}
	if c.scanned > b.maxScanned {
		t.Errorf("%d items read by queries, want at most %d", c.scanned, b.maxScanned)
	}
	if c.capacity > b.maxRU {
		t.Errorf("%.1f read units, want at most %.1f (%v)", c.capacity, b.maxRU, c)
	}
}

// budgetCase is one request and its budgets in a cold container (nothing
// cached: its first request) and in a warm one (the same request again).
type budgetCase struct {
	name, function, target string
	header                 map[string]string
	cold, warm             budget
}

// Cold, a list page's lookup takes two round trips (the token names the
// user and membership to read) alongside the page's Query and then the
// read of what the page refers to; by the calls' times that is two or three
// round trips, as the second lookup read and that read happen to overlap.
// An unfiltered offset page past the first needs the project's build count
// before its Query: four. Warm, a page is its Query, alongside the fresh
// read of what must be exact (a pipeline's totals, an offset page's build
// count, a job token's job): one round trip. Read units are those of the
// job items as they are since the artifacts' attributes and index keys
// joined them (a 20-job page: 1.5).
var budgetCases = []budgetCase{
	{"get job", "get-job", "/api/v4/projects/1/jobs/42", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 2}, 2, 0, 8}, budget{map[string]int{"BatchGetItem": 1}, 1, 0, 1}},
	{"get job by path", "get-job", "/api/v4/projects/demo%2Fbackend/jobs/42", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 2}, 2, 0, 9}, budget{map[string]int{"BatchGetItem": 1}, 1, 0, 1}},
	{"trace", "get-job-trace", "/api/v4/projects/1/jobs/42/trace", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 2, "GetObject": 1}, 3, 0, 5}, budget{map[string]int{"BatchGetItem": 1, "GetObject": 1}, 2, 0, 1}},
	{"list page 1", "list-project-jobs", "/api/v4/projects/1/jobs", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 3, "Query": 1}, 2, 21, 7}, budget{map[string]int{"Query": 1}, 1, 21, 1.5}},
	{"list deep offset page", "list-project-jobs", "/api/v4/projects/1/jobs?page=9&per_page=20", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 3, "Query": 1}, 3, 21, 7}, budget{map[string]int{"BatchGetItem": 1, "Query": 1}, 1, 21, 2}},
	{"list one scope", "list-project-jobs", "/api/v4/projects/1/jobs?scope[]=success", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 3, "Query": 1}, 2, 21, 8}, budget{map[string]int{"Query": 1}, 1, 21, 1.5}},
	{"list two scopes", "list-project-jobs", "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 3, "Query": 2}, 2, 42, 8.5}, budget{map[string]int{"Query": 2}, 1, 42, 2}},
	{"keyset page", "list-project-jobs", "/api/v4/projects/1/jobs?pagination=keyset&per_page=50", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 3, "Query": 1}, 2, 51, 10}, budget{map[string]int{"Query": 1}, 1, 51, 3}},
	{"list by job token", "list-project-jobs", "/api/v4/projects/1/jobs", map[string]string{"JOB-TOKEN": demo.JobTokenRunning},
		budget{map[string]int{"BatchGetItem": 3, "Query": 1}, 2, 21, 7}, budget{map[string]int{"BatchGetItem": 1, "Query": 1}, 1, 21, 2}},
	{"pipeline jobs", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 3, "Query": 1}, 2, 21, 5.5}, budget{map[string]int{"BatchGetItem": 1, "Query": 1}, 1, 21, 1}},
	{"pipeline bridges", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1001/bridges", token(demo.TokenMaintainer),
		budget{map[string]int{"BatchGetItem": 3, "Query": 1}, 2, 21, 5}, budget{map[string]int{"BatchGetItem": 1, "Query": 1}, 1, 21, 1}},
	{"job by token", "get-job-by-token", "/api/v4/job", map[string]string{"JOB-TOKEN": demo.JobTokenRunning},
		budget{map[string]int{"BatchGetItem": 3}, 3, 0, 6}, budget{map[string]int{"BatchGetItem": 1}, 1, 0, 1}},
}

// A new caller in a warm container (the page's users, runners and
// pipelines cached by someone else's request): the lookup's two round
// trips, the page's Query alongside the first. Two round trips.
func TestNewCallerBudget(t *testing.T) {
	d := newDemo(t, 200)
	for _, target := range []string{"/api/v4/projects/1/jobs", "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed",
		"/api/v4/projects/demo%2Fbackend/pipelines/1001/jobs"} {
		t.Run(target, func(t *testing.T) {
			d.coldContainer()
			function := "list-project-jobs"
			if strings.Contains(target, "pipelines") {
				function = "list-pipeline-jobs"
			}
			var c cost
			for try := range tries {
				d.coldContainer()
				d.measure(t, function, target, token(demo.TokenMaintainer))
				if m := d.measure(t, function, target, token(demo.TokenReporter)); try == 0 || m.trips < c.trips {
					c = m
				}
			}
			budget{map[string]int{"BatchGetItem": 2, "Query": 2}, 2, 42, 4}.check(t, c)
			t.Log(c)
		})
	}
}

// tries is how often a budget test measures a request, keeping the fewest
// round trips: a busy machine can start a goroutine's call after another
// call ended, which a parallel read on Lambda would not wait for.
const tries = 3

// The store budgets of every read endpoint, in a cold container and a warm
// one: calls, sequential round trips, items read and read units per request.
// A request that makes one more round trip or reads more than its budget
// fails here.
func TestStoreBudgets(t *testing.T) {
	d := newDemo(t, 200)
	d.Deps.Now = time.Now
	for _, tc := range budgetCases {
		t.Run(tc.name, func(t *testing.T) {
			var cold, warm cost
			for try := range tries {
				d.coldContainer()
				c := d.measure(t, tc.function, tc.target, tc.header)
				w := d.measure(t, tc.function, tc.target, tc.header)
				if try == 0 || c.trips < cold.trips {
					cold = c
				}
				if try == 0 || w.trips < warm.trips {
					warm = w
				}
			}
			t.Run("cold", func(t *testing.T) { tc.cold.check(t, cold) })
			t.Run("warm", func(t *testing.T) { tc.warm.check(t, warm) })
			t.Logf("cold: %v; warm: %v", cold, warm)
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
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), bigWorld(5000)); err != nil {
		t.Fatal(err)
	}
	d := &fixture{Env: env}
	for _, scope := range []string{"", "&scope[]=success&scope[]=failed"} {
		target := "/api/v4/projects/1/jobs?pagination=keyset&per_page=100" + scope
		var first, last cost
		pages, rows := 0, 0
		for target != "" {
			// Every page in a cold container: the warm caches would
			// hold the first page's pipelines, not the last one's.
			d.coldContainer()
			d.Counter.Reset()
			w := d.call(t, "list-project-jobs", http.MethodGet, target, token(demo.TokenMaintainer))
			if w.Code != 200 {
				t.Fatalf("%s: %d %.300s", target, w.Code, w.Body)
			}
			c := counted(d.Counter)
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
