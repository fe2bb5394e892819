package api_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/load"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// Retries in one busy project, 16 containers at once, go through its
// combiner (store/combine.go): every retried build gets exactly one new
// build, a build retried by two containers at once only one, none is
// answered 409, and the table keeps every invariant (ordinals dense, ids
// growing with them, counts right).
func TestBusyProjectRetriesAreCombined(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(map[bool]string{false: "DynamoDB Local", true: "holds"}[held], func(t *testing.T) { busyProjectRetries(t, held) })
	}
}

// busyProjectRetries is TestBusyProjectRetriesAreCombined, through holds
// (the transaction conflicts AWS answers) when held.
func busyProjectRetries(t *testing.T, held bool) {
	env := testenv.New(t)
	db := env.DynamoDB
	if held {
		db, _ = env.UnderHolds()
	}
	const builds, writers = 64, 16
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), creationWorld(1, builds)); err != nil {
		t.Fatal(err)
	}
	// Every build twice, so that some are retried by two writers at once.
	work := make(chan int64, 2*builds)
	for i := range builds {
		work <- int64(500001 + i)
		work <- int64(500001 + i)
	}
	close(work)
	env.Counter.Reset()
	var mu sync.Mutex
	made := map[int64][]int64{} // retried build: the builds made in its place
	var wg sync.WaitGroup
	for range writers {
		s := store.New(db, env.Table)
		wg.Go(func() {
			for id := range work {
				// Longer than a function's 10 s: what is asserted is one
				// build per retried build, not speed, and a loaded DynamoDB
				// Local is slow.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				f, err := s.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: 1}, JobID: id})
				if err != nil || f.Job == nil {
					t.Errorf("lookup %d: %v", id, err)
					cancel()
					return
				}
				j, err := s.Apply(ctx, f.Project, f.Job, jobs.Retry(2, time.Now()))
				cancel()
				switch {
				case errors.Is(err, jobs.ErrNotRetryable):
				case err != nil:
					t.Errorf("retry %d: %v", id, err)
				default:
					mu.Lock()
					made[id] = append(made[id], j.ID)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for i := range builds {
		if got := made[int64(500001+i)]; len(got) != 1 {
			t.Errorf("build %d retried into %v, want one build", 500001+i, got)
		}
	}
	calls := env.Counter.Calls()
	if calls["TransactWriteItems"] >= len(made) {
		t.Errorf("%d transactions for %d creations: none combined", calls["TransactWriteItems"], len(made))
	}
	bad, err := load.Check(context.Background(), load.Stack{DynamoDB: env.DynamoDB, S3: env.S3, Table: env.Table, Bucket: env.Bucket})
	if err != nil || len(bad) > 0 {
		t.Errorf("invariants: %v %v", err, bad)
	}
	t.Logf("%d creations, calls %v", len(made), calls)
}

// A combiner whose container died leaves its lease to run out: creations
// queued meanwhile are placed by a requester that takes the lease over,
// and one retried twice with the same Idempotency-Key makes one build,
// shown to both calls (its record is written with it). A request no
// combiner can read (another version's, here an earlier one's) is answered
// lost, and does not block the queue.
func TestQueuedCreationsOutliveADeadCombiner(t *testing.T) {
	env := testenv.New(t)
	const builds = 6
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), creationWorld(1, builds)); err != nil {
		t.Fatal(err)
	}
	dead := leaseOfTheDead(t, env, time.Second)
	unreadable := map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "P#1#Q#0"}, "SK": &types.AttributeValueMemberS{Value: "00000000000000000001#gone"},
		"tok": &types.AttributeValueMemberS{Value: "gone"}, "dl": &types.AttributeValueMemberN{Value: strconv.FormatInt(dead+9000, 10)},
		"job": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"v": &types.AttributeValueMemberN{Value: "1"}}}}
	if _, err := env.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(env.Table), Item: unreadable}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	once := store.Once{Key: store.OnceKey("caller", 500001, "retry", "key-1"), At: now, Expires: now.Add(time.Hour)}
	calls := []struct {
		id   int64
		once store.Once
	}{{500001, once}, {500001, once}, {500002, store.Once{}}, {500003, store.Once{}}, {500004, store.Once{}}}
	got := make([]int64, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		s := store.New(env.DynamoDB, env.Table)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			f, err := s.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: 1}, JobID: c.id})
			if err != nil || f.Job == nil {
				t.Errorf("lookup %d: %v", c.id, err)
				return
			}
			j, err := s.ApplyOnce(ctx, f.Project, f.Job, jobs.Retry(2, time.Now()), c.once)
			if err != nil {
				t.Errorf("retry %d: %v", c.id, err)
				return
			}
			got[i] = j.ID
		})
	}
	wg.Wait()
	if got[0] == 0 || got[0] != got[1] {
		t.Errorf("the two retries with one key showed builds %d and %d, want one", got[0], got[1])
	}
	f, err := store.New(env.DynamoDB, env.Table).Lookup(context.Background(), store.Lookup{Project: store.ProjectRef{ID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Project; p.Builds != builds+4 || p.Combiner != "" {
		t.Errorf("project after: %d builds, combiner %q; want %d, none", p.Builds, p.Combiner, builds+4)
	}
	left, err := env.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(env.Table),
		Key: map[string]types.AttributeValue{"PK": unreadable["PK"], "SK": unreadable["SK"]}, ConsistentRead: aws.Bool(true)})
	if err != nil || left.Item != nil {
		t.Errorf("the unreadable request after: %v %v, want it gone", left.Item, err)
	}
	bad, err := load.Check(context.Background(), load.Stack{DynamoDB: env.DynamoDB, S3: env.S3, Table: env.Table, Bucket: env.Bucket})
	if err != nil || len(bad) > 0 {
		t.Errorf("invariants: %v %v", err, bad)
	}
}

// leaseOfTheDead gives project 1's combiner lease to a container that died,
// to run out in d: until then every creation in the project queues. It
// returns when the lease ends, in Unix milliseconds.
func leaseOfTheDead(t *testing.T, env *testenv.Env, d time.Duration) int64 {
	t.Helper()
	dead := time.Now().Add(d).UnixMilli()
	if _, err := env.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(env.Table),
		Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: "P#1"}, "SK": &types.AttributeValueMemberS{Value: "P"}},
		UpdateExpression: aws.String("SET cl = :dead, ce = :until"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":dead": &types.AttributeValueMemberS{Value: "a container that died"}, ":until": &types.AttributeValueMemberN{Value: strconv.FormatInt(dead, 10)}},
	}); err != nil {
		t.Fatal(err)
	}
	return dead
}

// A retry that went through the queue answers what a client then reads of
// the new job, byte for byte, as a direct retry does: POST .../retry and
// GET .../jobs/:id render the same Job entity, whichever path stored it.
// Two queued retries of one build with one Idempotency-Key both show the
// one build made.
func TestQueuedRetriesAnswerAsTheJobReads(t *testing.T) {
	d := newWorld(t, creationWorld(1, 8))
	leaseOfTheDead(t, d.Env, time.Second)
	const queued = 6
	once := map[string]string{"PRIVATE-TOKEN": demo.TokenMaintainer, api.IdempotencyKeyHeader: "k-1"}
	calls := []map[string]string{once}
	for range queued - 1 {
		calls = append(calls, token(demo.TokenMaintainer))
	}
	calls = append(calls, once) // build 500001 again
	bodies := make([]string, len(calls)+1)
	var wg sync.WaitGroup
	for i, header := range calls {
		deps := *d.Deps // a container of its own
		deps.Store = store.New(d.DynamoDB, d.Table)
		build := 500001 + i%queued
		wg.Go(func() {
			w := d.callWith(t, &deps, "retry-job", http.MethodPost, "/api/v4/projects/1/jobs/"+strconv.Itoa(build)+"/retry", header)
			if w.Code != http.StatusCreated {
				t.Errorf("retry %d: %d %s", build, w.Code, w.Body)
			}
			bodies[i] = w.Body.String()
		})
	}
	wg.Wait()
	// Each queued retry wrote its request (a direct one writes none).
	if n := d.Counter.Calls()["PutItem"]; n < queued {
		t.Fatalf("%d requests queued for %d retries", n, queued)
	}
	if bodies[0] != bodies[queued] {
		t.Errorf("two retries with one key answered\n%s\nand\n%s", bodies[0], bodies[queued])
	}
	// Then one more retry, which takes the direct path once the queue's
	// combiner has given its lease up.
	w := d.post(t, "retry-job", "/api/v4/projects/1/jobs/"+strconv.Itoa(500001+queued)+"/retry", "", token(demo.TokenMaintainer))
	if w.Code != http.StatusCreated {
		t.Fatalf("direct retry: %d %s", w.Code, w.Body)
	}
	bodies[len(calls)] = w.Body.String()
	d.coldContainer()
	for i, body := range bodies {
		id := decode[struct{ ID int64 }](t, strings.NewReader(body)).ID
		got := d.call(t, "get-job", http.MethodGet, "/api/v4/projects/1/jobs/"+strconv.FormatInt(id, 10), token(demo.TokenMaintainer))
		if got.Code != http.StatusOK || got.Body.String() != body {
			t.Errorf("retry %d answered\n%s\nand its job reads %d\n%s", i, body, got.Code, got.Body)
		}
	}
}
