package testenv

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts the SDK calls of a test and what they read, from the
// responses' own figures (Count, ScannedCount, ConsumedCapacity).
type Counter struct {
	mu       sync.Mutex
	calls    map[string]int
	scanned  int
	capacity float64
}

// Reset forgets everything counted so far.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls, c.scanned, c.capacity = map[string]int{}, 0, 0
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
			out, md, err := next.HandleInitialize(ctx, in)
			c.record(awsmiddleware.GetOperationName(ctx), out.Result)
			return out, md, err
		}), middleware.After)
}

func (c *Counter) record(op string, result any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
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
