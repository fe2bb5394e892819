package store

import (
	"sync"
	"time"
)

// WarmTTL is how long a warm container trusts what it read of tokens, users,
// memberships, runners and pipeline documents. A token revoked or expired,
// a user blocked or a member removed takes effect within it, in every
// container (see the README's data model).
const WarmTTL = 10 * time.Second

// maxWarm bounds each warm cache: a container that meets more keys than
// this within WarmTTL forgets and reads again.
const maxWarm = 4096

// warm is a bounded, per-container cache whose entries are fresh for ttl.
// Stale entries stay until evicted and serve as hints: what a stale entry
// says of an immutable fact (a token's user, a path's project) is used to
// issue reads early, and those reads confirm it.
type warm[K comparable, V any] struct {
	mu  sync.Mutex
	ttl time.Duration
	max int // entries at most
	m   map[K]warmEntry[V]
	now func() time.Time
}

type warmEntry[V any] struct {
	v       V
	expires time.Time
}

func newWarm[K comparable, V any](ttl time.Duration) *warm[K, V] {
	return &warm[K, V]{ttl: ttl, max: maxWarm, m: map[K]warmEntry[V]{}, now: time.Now}
}

// holding bounds c to n entries instead of maxWarm, for big values.
func (c *warm[K, V]) holding(n int) *warm[K, V] {
	c.max = n
	return c
}

// get returns k's value while it is fresh.
func (c *warm[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// hint returns k's value, fresh or stale.
func (c *warm[K, V]) hint(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e.v, ok
}

func (c *warm[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[k] = warmEntry[V]{v, now.Add(c.ttl)}
}

// forget drops every entry.
func (c *warm[K, V]) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
