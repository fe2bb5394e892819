package load_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/load"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A bounded mix of reads, keyset walks and racing actions through the
// local gateway leaves no 5xx and every invariant of the stored jobs.
func TestMixHoldsTheInvariants(t *testing.T) {
	env := testenv.New(t)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), demo.Seed(60)); err != nil {
		t.Fatal(err)
	}
	stack := load.Stack{DynamoDB: env.DynamoDB, S3: env.S3, Table: env.Table, Bucket: env.Bucket}
	if bad, err := load.Check(context.Background(), stack); err != nil || len(bad) > 0 {
		t.Fatalf("the demo world itself: %v %v", bad, err)
	}
	rep, err := load.Run(context.Background(), load.Options{BaseURL: serve(t, env),
		Projects: []string{"1", "demo/platform/frontend", "3"}, Tokens: []string{demo.TokenMaintainer, demo.TokenAdmin},
		Duration: 20 * time.Second, MaxRequests: 600, Workers: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests in %v: %v %v", rep.Requests, rep.Elapsed.Round(time.Millisecond), rep.ByStatus, rep.ByKind)
	if len(rep.ServerErr) > 0 {
		t.Errorf("%d responses >= 500: %v", len(rep.ServerErr), rep.ServerErr)
	}
	if rep.ByKind["retry"] == 0 || rep.ByKind["keyset"] == 0 {
		t.Errorf("the mix did not act and walk: %v", rep.ByKind)
	}
	bad, err := load.Check(context.Background(), stack)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	// A count left in a ref's entry of a project keeping counts apart (as a
	// move gone wrong would leave it) is seen, though its value is right.
	counts := env.RefEntryCounts(t, 1)
	if _, ok := counts["main"]; !ok || counts["main"] != 0 {
		t.Fatalf("ref entries of project 1: %v", counts)
	}
	item, err := env.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(env.Table),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "P#1#RF#main"}, "SK": &types.AttributeValueMemberS{Value: "RF"}}})
	if err != nil || item.Item["n"] == nil {
		t.Fatalf("ref main's count item: %v %v", item, err)
	}
	if _, err := env.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(env.Table),
		Key:              map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "P#1"}, "SK": &types.AttributeValueMemberS{Value: "RF#main"}},
		UpdateExpression: aws.String("SET n = :n"), ExpressionAttributeValues: map[string]types.AttributeValue{":n": item.Item["n"]},
	}); err != nil {
		t.Fatal(err)
	}
	if bad, err := load.Check(context.Background(), stack); err != nil || len(bad) != 1 || !strings.Contains(bad[0], `ref "main" of project 1 has a count in its entry`) {
		t.Errorf("a count in both places: %q, %v", bad, err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1/api/v4", "http://example.com/api/v4", "https://192.168.1.1"} {
		if _, err := load.Run(context.Background(), load.Options{BaseURL: u}); err != load.ErrNotLoopback {
			t.Errorf("%s: %v", u, err)
		}
	}
}
