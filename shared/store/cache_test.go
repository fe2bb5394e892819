package store

import (
	"testing"
	"time"
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
