package holds_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/holds"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// gated holds the first transaction on its way to DynamoDB Local until
// open is closed.
type gated struct {
	next    aws.HTTPClient
	passed  atomic.Bool // the first transaction came
	entered chan struct{}
	open    chan struct{}
}

func (g *gated) Do(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") && g.passed.CompareAndSwap(false, true) {
		close(g.entered)
		<-g.open
	}
	return g.next.Do(r)
}

// While a transaction is in flight, another that names one of its items is
// canceled with TransactionConflict at that item, and a single write of the
// item is rejected; writes of other items go through, and once the first is
// answered, so do both.
func TestTransactionsHoldTheirItems(t *testing.T) {
	env := testenv.New(t)
	opts := env.DynamoDB.Options()
	g := &gated{next: opts.HTTPClient, entered: make(chan struct{}), open: make(chan struct{})}
	tr := holds.New(g, "PK", "SK")
	opts.HTTPClient, opts.Retryer = tr, aws.NopRetryer{}
	db := dynamodb.New(opts)
	ctx := context.Background()
	key := func(pk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: "S"}}
	}
	add := func(pk string) *types.Update {
		return &types.Update{TableName: aws.String(env.Table), Key: key(pk), UpdateExpression: aws.String("ADD n :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}
	}
	txn := func(put, update string) error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(env.Table), Item: key(put)}},
			{Update: add(update)},
		}})
		return err
	}
	single := func(pk string) error {
		u := add(pk)
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: u.TableName, Key: u.Key,
			UpdateExpression: u.UpdateExpression, ExpressionAttributeValues: u.ExpressionAttributeValues})
		return err
	}

	first := make(chan error, 1)
	go func() { first <- txn("A", "HOT") }()
	select {
	case <-g.entered:
	case err := <-first:
		t.Fatalf("the first transaction did not reach DynamoDB Local: %v", err)
	}
	var canceled *types.TransactionCanceledException
	if err := txn("B", "HOT"); !errors.As(err, &canceled) || len(canceled.CancellationReasons) != 2 ||
		aws.ToString(canceled.CancellationReasons[0].Code) != "None" ||
		aws.ToString(canceled.CancellationReasons[1].Code) != "TransactionConflict" {
		t.Errorf("a transaction naming a held item: %v, want canceled for TransactionConflict at that item", err)
	}
	var rejected *types.TransactionConflictException
	if err := single("HOT"); !errors.As(err, &rejected) {
		t.Errorf("a single write of a held item: %v, want TransactionConflictException", err)
	}
	if err := single("COLD"); err != nil {
		t.Errorf("a single write of another item: %v", err)
	}
	if err := txn("B", "COLD"); err != nil {
		t.Errorf("a transaction of other items: %v", err)
	}
	close(g.open)
	if err := <-first; err != nil {
		t.Fatalf("the first transaction: %v", err)
	}
	if err := txn("C", "HOT"); err != nil {
		t.Errorf("after the first is answered: %v", err)
	}
	if err := single("HOT"); err != nil {
		t.Errorf("a single write after the first is answered: %v", err)
	}
	if c, r := tr.Conflicts(), tr.Rejections(); c != 1 || r != 1 {
		t.Errorf("%d transactions canceled and %d single writes rejected, want 1 each", c, r)
	}
}
