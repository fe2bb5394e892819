package heat

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

type item = map[string]types.AttributeValue

// Touch is the load one call put on one partition key of the table or of
// one index.
type Touch struct {
	Index    string // "" for the table, else the GSI's name
	Key      string // the partition key's value
	RCU, WCU float64
	Bytes    int // the item's size (the larger of before and after for a write; a Query's items together)
}

// Call is one recorded DynamoDB call and the partitions it touched.
type Call struct {
	Op      string
	Touches []Touch
	// Items are the table keys of the items a TransactWriteItems names
	// (ConditionChecks too): a transaction holds each of them until it
	// commits, and any other transaction on one of them meanwhile fails.
	Items    []string
	Reported float64 // the capacity DynamoDB reported (ReturnConsumedCapacity INDEXES), for comparison
}

// Schema is the table's key layout as DynamoDB describes it: nothing of
// the store's key design is copied here.
type Schema struct {
	PK, SK string            // the table's key attributes
	GSIs   map[string]string // index name -> its partition key attribute
}

// DescribeSchema reads the key layout of table.
func DescribeSchema(ctx context.Context, db *dynamodb.Client, table string) (Schema, error) {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return Schema{}, err
	}
	s := Schema{GSIs: map[string]string{}}
	for _, k := range out.Table.KeySchema {
		if k.KeyType == types.KeyTypeHash {
			s.PK = aws.ToString(k.AttributeName)
		} else {
			s.SK = aws.ToString(k.AttributeName)
		}
	}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		for _, k := range g.KeySchema {
			if k.KeyType == types.KeyTypeHash {
				s.GSIs[aws.ToString(g.IndexName)] = aws.ToString(k.AttributeName)
			}
		}
	}
	return s, nil
}

// Recorder is SDK middleware that records, while a Sample runs, each call's
// operation and the read and write units it put on each partition key:
// reads from the items they returned, writes from the item before and
// after (read with raw, a client without the recorder, strongly
// consistent), for the table and every GSI whose key the item has.
type Recorder struct {
	raw    *dynamodb.Client
	table  string
	schema Schema

	mu    sync.Mutex
	on    bool
	calls []Call
}

// NewRecorder records calls on table; raw reads items around writes.
func NewRecorder(ctx context.Context, raw *dynamodb.Client, table string) (*Recorder, error) {
	s, err := DescribeSchema(ctx, raw, table)
	if err != nil {
		return nil, err
	}
	return &Recorder{raw: raw, table: table, schema: s}, nil
}

// Sample runs f and returns the calls it made.
func (r *Recorder) Sample(f func() error) ([]Call, error) {
	r.mu.Lock()
	r.on, r.calls = true, nil
	r.mu.Unlock()
	err := f()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.calls, err
}

func (r *Recorder) recording() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.on
}

// Middleware adds the recorder to a client's stack (dynamodb.Options.APIOptions).
func (r *Recorder) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("heatRecorder",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if !r.recording() {
				return next.HandleInitialize(ctx, in)
			}
			indexes(in.Parameters)
			before, err := r.before(ctx, in.Parameters)
			if err != nil {
				return middleware.InitializeOutput{}, middleware.Metadata{}, err
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil {
				c, rerr := r.call(ctx, awsmiddleware.GetOperationName(ctx), in.Parameters, out.Result, before)
				if rerr != nil {
					return out, md, rerr
				}
				r.mu.Lock()
				r.calls = append(r.calls, c)
				r.mu.Unlock()
			}
			return out, md, err
		}), middleware.After)
}

// indexes asks DynamoDB for the capacity per table and index.
func indexes(params any) {
	switch p := params.(type) {
	case *dynamodb.QueryInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	case *dynamodb.BatchGetItemInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	case *dynamodb.GetItemInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	case *dynamodb.PutItemInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	case *dynamodb.UpdateItemInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	case *dynamodb.DeleteItemInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	case *dynamodb.TransactWriteItemsInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	case *dynamodb.BatchWriteItemInput:
		p.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	}
}

// write is one item write of a call: its key, and the item as it was.
type write struct {
	key    item
	put    item // the item written whole (Put), else nil: read it back
	delete bool
	check  bool // a transaction's ConditionCheck: charged, writes nothing
	old    item
}

// before reads the items a write is about to change.
func (r *Recorder) before(ctx context.Context, params any) ([]write, error) {
	var ws []write
	switch p := params.(type) {
	case *dynamodb.PutItemInput:
		ws = []write{{key: r.keyOf(p.Item), put: p.Item}}
	case *dynamodb.UpdateItemInput:
		ws = []write{{key: p.Key}}
	case *dynamodb.DeleteItemInput:
		ws = []write{{key: p.Key, delete: true}}
	case *dynamodb.TransactWriteItemsInput:
		for _, t := range p.TransactItems {
			switch {
			case t.Put != nil:
				ws = append(ws, write{key: r.keyOf(t.Put.Item), put: t.Put.Item})
			case t.Update != nil:
				ws = append(ws, write{key: t.Update.Key})
			case t.Delete != nil:
				ws = append(ws, write{key: t.Delete.Key, delete: true})
			case t.ConditionCheck != nil:
				ws = append(ws, write{key: t.ConditionCheck.Key, check: true})
			}
		}
	case *dynamodb.BatchWriteItemInput:
		for _, wr := range p.RequestItems[r.table] {
			switch {
			case wr.PutRequest != nil:
				ws = append(ws, write{key: r.keyOf(wr.PutRequest.Item), put: wr.PutRequest.Item})
			case wr.DeleteRequest != nil:
				ws = append(ws, write{key: wr.DeleteRequest.Key, delete: true})
			}
		}
	}
	for i := range ws {
		it, err := r.get(ctx, ws[i].key)
		if err != nil {
			return nil, err
		}
		ws[i].old = it
	}
	return ws, nil
}

func (r *Recorder) keyOf(it item) item {
	return item{r.schema.PK: it[r.schema.PK], r.schema.SK: it[r.schema.SK]}
}

func (r *Recorder) get(ctx context.Context, key item) (item, error) {
	out, err := r.raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("heat: read around a write: %w", err)
	}
	return out.Item, nil
}

// call is what one call touched.
func (r *Recorder) call(ctx context.Context, op string, params, result any, ws []write) (Call, error) {
	c := Call{Op: op}
	switch p := params.(type) {
	case *dynamodb.QueryInput:
		res := result.(*dynamodb.QueryOutput)
		index := aws.ToString(p.IndexName)
		attr := r.schema.PK
		if index != "" {
			attr = r.schema.GSIs[index]
		}
		size := 0
		for _, it := range res.Items {
			size += Size(it)
		}
		c.Touches = []Touch{{Index: index, Key: queryKey(p, attr), RCU: ReadUnits(size, aws.ToBool(p.ConsistentRead)), Bytes: size}}
		c.Reported = reported(res.ConsumedCapacity)
	case *dynamodb.BatchGetItemInput:
		res := result.(*dynamodb.BatchGetItemOutput)
		for table, ka := range p.RequestItems {
			got := map[string]item{}
			for _, it := range res.Responses[table] {
				got[r.keyString(it)] = it
			}
			unprocessed := map[string]bool{}
			for _, k := range res.UnprocessedKeys[table].Keys {
				unprocessed[r.keyString(k)] = true
			}
			for _, k := range ka.Keys {
				if ks := r.keyString(k); !unprocessed[ks] {
					// Each item is its own read, rounded up; a missing one
					// still costs the minimum.
					c.Touches = append(c.Touches, Touch{Key: str(k[r.schema.PK]),
						RCU: ReadUnits(Size(got[ks]), aws.ToBool(ka.ConsistentRead))})
				}
			}
		}
		c.Reported = reportedAll(res.ConsumedCapacity)
	case *dynamodb.GetItemInput:
		res := result.(*dynamodb.GetItemOutput)
		c.Touches = []Touch{{Key: str(p.Key[r.schema.PK]), RCU: ReadUnits(Size(res.Item), aws.ToBool(p.ConsistentRead))}}
		c.Reported = reported(res.ConsumedCapacity)
	case *dynamodb.PutItemInput, *dynamodb.UpdateItemInput, *dynamodb.DeleteItemInput, *dynamodb.TransactWriteItemsInput,
		*dynamodb.BatchWriteItemInput:
		_, txn := p.(*dynamodb.TransactWriteItemsInput)
		// What a BatchWriteItem leaves unprocessed is not written: its
		// caller sends it again, recorded then.
		unprocessed := map[string]bool{}
		if res, ok := result.(*dynamodb.BatchWriteItemOutput); ok {
			for _, wr := range res.UnprocessedItems[r.table] {
				switch {
				case wr.PutRequest != nil:
					unprocessed[r.keyString(wr.PutRequest.Item)] = true
				case wr.DeleteRequest != nil:
					unprocessed[r.keyString(wr.DeleteRequest.Key)] = true
				}
			}
		}
		for _, w := range ws {
			if unprocessed[r.keyString(w.key)] {
				continue
			}
			if txn {
				c.Items = append(c.Items, r.keyString(w.key))
			}
			cur := w.put
			switch {
			case w.delete:
				cur = nil
			case w.check:
				cur = w.old
			case cur == nil:
				it, err := r.get(ctx, w.key)
				if err != nil {
					return c, err
				}
				cur = it
			}
			if w.check {
				c.Touches = append(c.Touches, Touch{Key: str(w.key[r.schema.PK]), WCU: WriteUnits(Size(cur), txn)})
				continue
			}
			c.Touches = append(c.Touches, r.schema.WriteTouches(w.old, cur, txn)...)
		}
		c.Reported = reportedWrite(result)
	}
	return c, nil
}

// WriteTouches is what replacing old with cur (either nil: a create or a
// delete) costs: the table's partition, charged by the larger of the two
// (twice in a transaction), and each GSI the item is in before or after,
// as DynamoDB maintains it: an update in place where the index key stays,
// a delete from the old partition and a put into the new one where it
// moves; in a transaction, twice as well (DynamoDB Local reports the same).
func (s Schema) WriteTouches(old, cur item, txn bool) []Touch {
	key := old
	if key == nil {
		key = cur
	}
	size := max(Size(old), Size(cur))
	out := []Touch{{Key: str(key[s.PK]), WCU: WriteUnits(size, txn), Bytes: size}}
	for index, attr := range s.GSIs {
		was, is := str(old[attr]), str(cur[attr])
		switch {
		case was != "" && was == is:
			out = append(out, Touch{Index: index, Key: is, WCU: WriteUnits(Size(cur), txn)})
		default:
			if was != "" {
				out = append(out, Touch{Index: index, Key: was, WCU: WriteUnits(Size(old), txn)})
			}
			if is != "" {
				out = append(out, Touch{Index: index, Key: is, WCU: WriteUnits(Size(cur), txn)})
			}
		}
	}
	return out
}

// ReadUnits is DynamoDB's charge for reading size bytes in one request:
// 4 KB units rounded up, at least one; half for eventually consistent reads.
func ReadUnits(size int, consistent bool) float64 {
	u := max(1, math.Ceil(float64(size)/4096))
	if !consistent {
		u /= 2
	}
	return u
}

// WriteUnits is the charge for writing an item of size bytes: 1 KB units
// rounded up, at least one; twice in a transaction.
func WriteUnits(size int, txn bool) float64 {
	u := max(1, math.Ceil(float64(size)/1024))
	if txn {
		u *= 2
	}
	return u
}

var eqValue = regexp.MustCompile(`([#\w]+)\s*=\s*(:\w+)`)

// queryKey is the partition key value a Query's key condition names.
func queryKey(p *dynamodb.QueryInput, attr string) string {
	for _, m := range eqValue.FindAllStringSubmatch(aws.ToString(p.KeyConditionExpression), -1) {
		name := m[1]
		if n, ok := p.ExpressionAttributeNames[name]; ok {
			name = n
		}
		if name == attr {
			return str(p.ExpressionAttributeValues[m[2]])
		}
	}
	return "?"
}

func (r *Recorder) keyString(it item) string {
	return str(it[r.schema.PK]) + "|" + str(it[r.schema.SK])
}

func str(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

func reported(cc *types.ConsumedCapacity) float64 {
	if cc == nil || cc.CapacityUnits == nil {
		return 0
	}
	return *cc.CapacityUnits
}

func reportedWrite(result any) float64 {
	switch r := result.(type) {
	case *dynamodb.PutItemOutput:
		return reported(r.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		return reported(r.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		return reported(r.ConsumedCapacity)
	case *dynamodb.TransactWriteItemsOutput:
		return reportedAll(r.ConsumedCapacity)
	case *dynamodb.BatchWriteItemOutput:
		return reportedAll(r.ConsumedCapacity)
	}
	return 0
}

func reportedAll(cc []types.ConsumedCapacity) float64 {
	n := 0.0
	for i := range cc {
		n += reported(&cc[i])
	}
	return n
}

// Size is an item's size as DynamoDB counts it: attribute names and values
// (strings and binaries their bytes, numbers about a byte per two digits,
// maps and lists their elements plus a few bytes each). 0 for no item.
func Size(it item) int {
	n := 0
	for k, v := range it {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		return 3 + Size(v.Value) + len(v.Value)
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += (len(s)+1)/2 + 1
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	}
	return 0
}
