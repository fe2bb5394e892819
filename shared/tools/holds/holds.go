// Package holds models what DynamoDB Local leaves out of DynamoDB's
// transactions: on AWS a transaction holds each item it names until it
// commits, and meanwhile DynamoDB cancels any other transaction naming one
// of them (TransactionConflict) and rejects a single write of one
// (TransactionConflictException). DynamoDB Local runs transactions one at
// a time and never answers either. Transport, an HTTP client in front of
// it, answers both as AWS would, so that tests and benchmarks meet the
// conflicts that concurrent writers meet on AWS.
package holds

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Transport is an aws.HTTPClient in front of DynamoDB Local. A transaction
// holds its items from when it is sent until its answer comes back (longer
// than on AWS, where the hold is from its prepare to its commit, and
// including DynamoDB Local's queue).
type Transport struct {
	next aws.HTTPClient
	keys []string // the table's key attributes

	mu                   sync.Mutex
	held                 map[string]int // item -> transactions in flight naming it
	conflicts, rejection atomic.Int64
}

// New puts a Transport in front of next for a table whose key attributes
// are keys (its partition key, and its sort key if it has one).
func New(next aws.HTTPClient, keys ...string) *Transport {
	return &Transport{next: next, keys: keys, held: map[string]int{}}
}

// Conflicts is how many transactions it has canceled for a conflict.
func (t *Transport) Conflicts() int64 { return t.conflicts.Load() }

// Rejections is how many single writes it has rejected for a conflict.
func (t *Transport) Rejections() int64 { return t.rejection.Load() }

// Do sends r on, or answers it with a conflict when it names an item that
// a transaction in flight holds.
func (t *Transport) Do(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndexByte(op, '.')+1:]
	txn := op == "TransactWriteItems"
	if !txn && op != "PutItem" && op != "UpdateItem" && op != "DeleteItem" {
		return t.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	items := t.itemsOf(op, body)
	t.mu.Lock()
	reasons, conflict := make([]string, len(items)), false
	for i, it := range items {
		reasons[i] = "None"
		if t.held[it] > 0 {
			reasons[i], conflict = "TransactionConflict", true
		}
	}
	if !conflict && txn {
		for _, it := range items {
			t.held[it]++
		}
	}
	t.mu.Unlock()
	switch {
	case conflict && txn:
		t.conflicts.Add(1)
		return Canceled(r, reasons), nil
	case conflict:
		t.rejection.Add(1)
		return Rejected(r), nil
	case !txn:
		return t.next.Do(r)
	}
	defer func() {
		t.mu.Lock()
		for _, it := range items {
			if t.held[it]--; t.held[it] == 0 {
				delete(t.held, it)
			}
		}
		t.mu.Unlock()
	}()
	return t.next.Do(r)
}

// itemsOf names the items a write's JSON body writes or checks, one for
// each of a transaction's actions, in order.
func (t *Transport) itemsOf(op string, body []byte) []string {
	type action struct {
		TableName string
		Key, Item map[string]json.RawMessage
	}
	var in struct {
		action
		TransactItems []map[string]action // {"Put": {...}}, {"Update": {...}}, ...
	}
	if json.Unmarshal(body, &in) != nil {
		return nil
	}
	name := func(a action) string {
		attrs := a.Key
		if attrs == nil {
			attrs = a.Item
		}
		var b strings.Builder
		b.WriteString(a.TableName)
		for _, k := range t.keys {
			b.WriteByte(0)
			b.Write(attrs[k])
		}
		return b.String()
	}
	if op != "TransactWriteItems" {
		return []string{name(in.action)}
	}
	out := make([]string, 0, len(in.TransactItems))
	for _, w := range in.TransactItems {
		for _, a := range w {
			out = append(out, name(a))
		}
	}
	return out
}

// Canceled is DynamoDB's answer to a TransactWriteItems it canceled, with
// one reason (a CancellationReason code: None, TransactionConflict, ...)
// for each of its actions.
func Canceled(r *http.Request, reasons []string) *http.Response {
	codes := make([]map[string]string, len(reasons))
	for i, c := range reasons {
		codes[i] = map[string]string{"Code": c}
	}
	body, _ := json.Marshal(map[string]any{
		"__type":              "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
		"Message":             "Transaction cancelled, please refer cancellation reasons for specific reasons",
		"CancellationReasons": codes,
	})
	return response(r, string(body))
}

// Rejected is DynamoDB's answer to a single write of an item that a
// transaction in flight holds.
func Rejected(r *http.Request) *http.Response {
	return response(r, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException",`+
		`"message":"Transaction is ongoing for the item"}`)
}

func response(r *http.Request, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	return &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Header: h, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}
