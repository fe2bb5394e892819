package store

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The import outlasts by waiting what passes with time: throttling, a
// transaction in flight on an item of a live project (a single write
// rejected, or a transaction canceled for nothing else), a call that timed
// out; never a failed condition or any other error.
func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&types.ProvisionedThroughputExceededException{}, true},
		{&types.TransactionConflictException{}, true},
		{fmt.Errorf("batch write: %w", &types.TransactionConflictException{}), true},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{canceled("None", "TransactionConflict"), true},
		{canceled("ThrottlingError", "None"), true},
		{&types.ConditionalCheckFailedException{}, false},
		{&types.TransactionCanceledException{}, false},
		{canceled("ConditionalCheckFailed", "TransactionConflict"), false},
		{canceled("None", "None"), false},
		{errors.New("anything else"), false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%T %v) = %v, want %v", c.err, c.err, got, c.want)
		}
	}
}

func canceled(codes ...string) error {
	reasons := make([]types.CancellationReason, len(codes))
	for i, c := range codes {
		reasons[i].Code = aws.String(c)
	}
	return &types.TransactionCanceledException{CancellationReasons: reasons}
}

// Builds made during an import are a failed condition on its counts; a
// transaction that met others in flight past its attempts is not taken for
// them.
func TestBuiltMeanwhile(t *testing.T) {
	for _, c := range []struct {
		err      error
		conflict bool
	}{
		{&types.ConditionalCheckFailedException{}, true},
		{canceled("None", "ConditionalCheckFailed"), true},
		{canceled("None", "TransactionConflict"), false},
		{errors.New("anything else"), false},
	} {
		got := builtMeanwhile(c.err, 1, "ref main")
		if errors.Is(got, ErrConflict) != c.conflict || (!c.conflict && got != c.err) {
			t.Errorf("builtMeanwhile(%v) = %v, want ErrConflict %v", c.err, got, c.conflict)
		}
	}
}
