package testenv

import (
	"context"
	"slices"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts the SDK calls of a test and what they read, from the
// responses' own figures (Count, ScannedCount, ConsumedCapacity), and when
// each call started and ended.
type Counter struct {
	mu       sync.Mutex
	calls    map[string]int
	scanned  int
	capacity float64
	spans    []span
}

// span is one call's time on the wire, as the SDK's stack saw it.
type span struct{ start, end time.Time }

// Reset forgets everything counted so far.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls, c.scanned, c.capacity, c.spans = map[string]int{}, 0, 0, c.spans[:0]
}

// RoundTrips is the number of sequential round trips among the calls
// counted: the longest chain of calls in which each started after the one
// before it ended. Calls that overlap in time count once; it is measured
// from the calls' times, not from what the code meant to do.
func (c *Counter) RoundTrips() int {
	c.mu.Lock()
	spans := slices.Clone(c.spans)
	c.mu.Unlock()
	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	chain := make([]int, len(spans)) // the longest chain ending with spans[i]
	longest := 0
	for i, s := range spans {
		chain[i] = 1
		for j := range i {
			if !spans[j].end.After(s.start) {
				chain[i] = max(chain[i], chain[j]+1)
			}
		}
		longest = max(longest, chain[i])
	}
	return longest
}

// Concurrent is the most calls counted that were under way at once.
func (c *Counter) Concurrent() int {
	c.mu.Lock()
	spans := slices.Clone(c.spans)
	c.mu.Unlock()
	most := 0
	for _, s := range spans {
		at := 0 // the calls under way when s started
		for _, o := range spans {
			if !o.start.After(s.start) && o.end.After(s.start) {
				at++
			}
		}
		most = max(most, at)
	}
	return most
}

// Calls is how often each operation (GetItem, Query, GetObject, ...) ran.
func (c *Counter) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// Total is the number of SDK calls.
func (c *Counter) Total() int {
	n := 0
	for _, v := range c.Calls() {
		n += v
	}
	return n
}

// Scanned is how many items Queries read (DynamoDB's ScannedCount).
func (c *Counter) Scanned() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scanned
}

// Capacity is the read capacity units DynamoDB reported as consumed.
func (c *Counter) Capacity() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.capacity
}

func (c *Counter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			c.record(awsmiddleware.GetOperationName(ctx), out.Result, span{start, time.Now()})
			return out, md, err
		}), middleware.After)
}

func (c *Counter) record(op string, result any, sp span) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
	c.spans = append(c.spans, sp)
	add := func(cc *types.ConsumedCapacity) {
		if cc != nil && cc.CapacityUnits != nil {
			c.capacity += *cc.CapacityUnits
		}
	}
	switch r := result.(type) {
	case *dynamodb.QueryOutput:
		c.scanned += int(r.ScannedCount)
		add(r.ConsumedCapacity)
	case *dynamodb.GetItemOutput:
		add(r.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		for i := range r.ConsumedCapacity {
			add(&r.ConsumedCapacity[i])
		}
	}
}
