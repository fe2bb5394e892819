package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// KeepRefCountsTogether makes project pid's ref counts as those of a
// project stored before they moved apart: each in its ref's entry in the
// project's partition, and the project not marked (ra). Deps.Store is a
// new container's, whose caches know nothing of the counts.
func (e *Env) KeepRefCountsTogether(t testing.TB, pid int64) {
	t.Helper()
	ctx := context.Background()
	table := aws.String(e.Table)
	pk := fmt.Sprintf("P#%d", pid)
	for ref := range e.RefEntryCounts(t, pid) {
		count := tableKey(pk+"#RF#"+ref, "RF")
		got, err := e.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: count, ConsistentRead: aws.Bool(true)})
		if err != nil || got.Item["n"] == nil {
			t.Fatalf("ref %s has no count item (%v)", ref, err)
		}
		if _, err := e.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: table, Key: tableKey(pk, "RF#"+ref),
			UpdateExpression:          aws.String("SET n = :n REMOVE ap"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": got.Item["n"]}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: count}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: table, Key: tableKey(pk, "P"),
		UpdateExpression: aws.String("REMOVE ra")}); err != nil {
		t.Fatal(err)
	}
	e.Deps.Store = store.New(e.DynamoDB, e.Table)
}

// RefEntryCounts are the refs project pid lists in its partition, each
// with the count its entry holds (0: none, as where counts are apart).
func (e *Env) RefEntryCounts(t testing.TB, pid int64) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	p := dynamodb.NewQueryPaginator(e.DynamoDB, &dynamodb.QueryInput{
		TableName: aws.String(e.Table), KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :rf)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("P#%d", pid)}, ":rf": &types.AttributeValueMemberS{Value: "RF#"}},
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			var entry struct {
				SK string
				N  int64 `dynamodbav:"n"`
			}
			if err := attributevalue.UnmarshalMap(it, &entry); err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(entry.SK, "RF#")] = entry.N
		}
	}
	return out
}

func tableKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}
}
