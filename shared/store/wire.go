package store

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// typedQuery and typedBatchGet make a Query or a BatchGetItem call decode
// its answer with decodeQuery or decodeBatchGet (wirejson.go) instead of
// through the SDK's deserializer, which in the SDK release go.mod pins
// (see BENCHMARKS.md, "Cold start (issue 13)") first decodes the whole
// body into interface{} maps and strings and then converts those: two
// thirds of a list Query's CPU (encoding/json into typed structs saved
// only a tenth of it). Only a successful answer is decoded here; an error
// answer goes to the SDK's own deserializer, so errors, their codes and
// retries stay exactly the SDK's.
var (
	typedQuery    = decodedBy(decodeQuery)
	typedBatchGet = decodedBy(decodeBatchGet)
)

func decodedBy(decode func([]byte) (any, error)) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			sdk, ok := stack.Deserialize.Get(operationDeserializer)
			if !ok {
				return fmt.Errorf("no %s to replace", operationDeserializer)
			}
			_, err := stack.Deserialize.Swap(operationDeserializer, &typedDeserializer{sdk: sdk, decode: decode})
			return err
		})
	}
}

const operationDeserializer = "OperationDeserializer"

type typedDeserializer struct {
	sdk    middleware.DeserializeMiddleware
	decode func([]byte) (any, error)
}

func (*typedDeserializer) ID() string { return operationDeserializer }

func (d *typedDeserializer) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	out middleware.DeserializeOutput, md middleware.Metadata, err error) {
	out, md, err = next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	res, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok || res.StatusCode < 200 || res.StatusCode >= 300 {
		return d.sdk.HandleDeserialize(ctx, in, answered{out, md})
	}
	defer func() { smithyhttp.CloseResponseBody(ctx, res, false, err) }()
	buf := bodies.Get().(*[]byte)
	defer bodies.Put(buf)
	*buf, err = readBody(res.ContentLength, res.Body, (*buf)[:0])
	if err == nil {
		out.Result, err = d.decode(*buf)
	}
	if err != nil {
		// The SDK's own error for a body that does not decode, which its
		// retryer judges as it would the SDK's.
		err = &smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", err)}
	}
	return out, md, err
}

// bodies are the buffers answers are read into: nothing decoded keeps a
// reference into one (strings and binaries are copied out).
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// readBody appends the body, of n bytes when n >= 0, to buf.
func readBody(n int64, r io.Reader, buf []byte) ([]byte, error) {
	if n < 0 || n > 16<<20 {
		return io.ReadAll(r)
	}
	buf = slices.Grow(buf, int(n))[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// answered hands the SDK's deserializer the answer already received.
type answered struct {
	out middleware.DeserializeOutput
	md  middleware.Metadata
}

func (a answered) HandleDeserialize(context.Context, middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
	return a.out, a.md, nil
}

// query is a Query call decoded by typedQuery.
func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
	return s.db.Query(ctx, in, typedQuery)
}
