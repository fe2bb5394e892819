package store

import (
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// A warm entry is served for its TTL, then only as a hint; the cache never
// holds more than maxWarm entries.
func TestWarmCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newWarm[string, int](WarmTTL)
	c.now = func() time.Time { return now }
	c.put("a", 1)
	for _, tc := range []struct {
		after       time.Duration
		fresh, hint bool
	}{{0, true, true}, {WarmTTL - time.Nanosecond, true, true}, {WarmTTL, false, true}, {time.Hour, false, true}} {
		now = now.Add(tc.after)
		v, fresh := c.get("a")
		h, hinted := c.hint("a")
		if fresh != tc.fresh || (fresh && v != 1) || hinted != tc.hint || h != 1 {
			t.Errorf("after %v: get %d %v, hint %d %v", tc.after, v, fresh, h, hinted)
		}
		now = now.Add(-tc.after)
	}
	if _, ok := c.get("b"); ok {
		t.Error("b was never put")
	}
	for i := range 3 * maxWarm {
		c.put(string(rune(i)), i)
		if len(c.m) > maxWarm {
			t.Fatalf("%d entries, want at most %d", len(c.m), maxWarm)
		}
	}
}

// The page cache holds at most maxPages pages, and a page is keyed by all
// of what its Queries read.
func TestPageCacheBound(t *testing.T) {
	c := newWarm[string, *Page](PageTTL).holding(maxPages)
	for i := range 3 * maxPages {
		c.put(string(rune(i)), &Page{})
		if len(c.m) > maxPages {
			t.Fatalf("%d pages, want at most %d", len(c.m), maxPages)
		}
	}
	base := projectBuildsPlan(1, 100, []int{1}, Range{Limit: 20})
	keys := map[string]bool{base.pageKey(): true}
	for _, pl := range []plan{
		projectBuildsPlan(2, 100, []int{1}, Range{Limit: 20}),
		projectBuildsPlan(1, 100, []int{1}, Range{Limit: 21}),
		projectBuildsPlan(1, 100, []int{1}, Range{Limit: 20, Skip: 20}),
		projectBuildsPlan(1, 100, []int{1}, Range{Limit: 20, After: Position{ID: 90, Ordinal: 50}}),
		projectBuildsPlan(1, 100, []int{1}, Range{Limit: 20, Statuses: []jobs.Status{jobs.Success}}),
		projectBuildsPlan(1, 100, []int{8}, Range{Limit: 20}),
		projectBuildsPlan(1, 100, []int{8, 4}, Range{Limit: 20}),
		projectBuildsPlan(1, 100, []int{1}, Range{Limit: 20, Ref: "main"}),
		projectBuildsPlan(1, 100, []int{1}, Range{Limit: 20, Whole: true}),
		pipelineJobsPlan(1, jobs.Build, Range{Limit: 20}),
	} {
		if keys[pl.pageKey()] {
			t.Errorf("plan %+v shares a key with another", pl)
		}
		keys[pl.pageKey()] = true
	}
	if projectBuildsPlan(1, 100, []int{1}, Range{Limit: 20}).pageKey() != base.pageKey() {
		t.Error("the same reads, two keys")
	}
}
