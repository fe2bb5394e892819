package store

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The import outlasts by waiting what passes with time: throttling, a
// transaction in flight on an item of a live project, a call that timed
// out; never a failed condition, a canceled transaction (Apply's to judge)
// or any other error.
func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&types.ProvisionedThroughputExceededException{}, true},
		{&types.TransactionConflictException{}, true},
		{fmt.Errorf("batch write: %w", &types.TransactionConflictException{}), true},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{&types.ConditionalCheckFailedException{}, false},
		{&types.TransactionCanceledException{}, false},
		{errors.New("anything else"), false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%T %v) = %v, want %v", c.err, c.err, got, c.want)
		}
	}
}
