package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// The same builds in unsharded projects and in projects of 8 shards answer
// every list request byte for byte alike: bodies, status codes, Link and
// pagination headers, over offset pages (first, deep, past the end),
// keyset walks to the end, one and several scopes, and after a retry
// created a build in each.
func TestShardedListsMatchUnsharded(t *testing.T) {
	one, eight := newDemo(t, 200), newShardedDemo(t, 200, 8)
	m := token(demo.TokenMaintainer)
	same := func(t *testing.T, function, method, target string) string {
		t.Helper()
		a := one.call(t, function, method, target, m)
		b := eight.call(t, function, method, target, m)
		if a.Code != b.Code || a.Body.String() != b.Body.String() {
			t.Fatalf("%s %s: unsharded %d %.200s, sharded %d %.200s", method, target, a.Code, a.Body, b.Code, b.Body)
		}
		for _, h := range []string{"Link", "X-Total", "X-Total-Pages", "X-Page", "X-Next-Page", "X-Prev-Page", "X-Per-Page"} {
			if a.Header().Get(h) != b.Header().Get(h) {
				t.Errorf("%s %s: %s %q unsharded, %q sharded", method, target, h, a.Header().Get(h), b.Header().Get(h))
			}
		}
		return a.Header().Get("Link")
	}
	targets := func() []string {
		var out []string
		for _, p := range []string{"1", "2", "demo%2Fwebsite"} {
			base := "/api/v4/projects/" + p + "/jobs"
			for _, q := range []string{"", "?per_page=1", "?per_page=7&page=3", "?page=9&per_page=20", "?per_page=100&page=2",
				"?page=400", "?scope=failed", "?scope[]=success&scope[]=failed&per_page=9&page=4",
				"?scope[]=pending&scope[]=running&scope[]=manual", "?scope=canceled&page=3&per_page=5"} {
				out = append(out, base+q)
			}
		}
		return out
	}
	walk := func(t *testing.T, target string) int {
		pages := 0
		for target != "" {
			pages++
			target = nextLink(t, same(t, "list-project-jobs", http.MethodGet, target))
		}
		return pages
	}
	check := func(t *testing.T) {
		for _, target := range targets() {
			same(t, "list-project-jobs", http.MethodGet, target)
		}
		for _, q := range []string{"per_page=13", "per_page=50&scope[]=success&scope[]=failed", "per_page=3&scope=running"} {
			if pages := walk(t, "/api/v4/projects/1/jobs?pagination=keyset&"+q); pages < 2 {
				t.Errorf("keyset walk %s: %d pages", q, pages)
			}
		}
	}
	t.Run("imported", check)
	retried := jobsOf(t, one, 3, retryable)
	for _, id := range retried {
		same(t, "retry-job", http.MethodPost, fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", id))
	}
	t.Run("after retries", check)
	// The sharded project's builds lie in all eight shards.
	eight.Counter.Reset()
	top := listIDs(t, eight, "/api/v4/projects/1/jobs?per_page=100")
	if q := eight.Counter.Calls()["Query"]; q != 8 {
		t.Errorf("a sharded page made %d Queries, want 8", q)
	}
	if !slices.IsSortedFunc(top, func(a, b int64) int { return int(b - a) }) || len(top) != 100 {
		t.Errorf("sharded page ids %v", top)
	}
}
