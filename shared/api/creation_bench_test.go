package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/holds"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// creationProjects and creationPool size BenchmarkCreations' world: so
// many projects with so many failed (retryable) builds each.
const creationProjects, creationPool = 16, 400

// creationWorld is the demo's users and tokens with projects 1..n, each
// with perProject failed builds of its own pipelines.
func creationWorld(n, perProject int) *world.World {
	w := demo.Seed(1)
	w.Jobs, w.Pipelines = w.Jobs[:0], w.Pipelines[:0]
	proto := w.Projects[0]
	w.Projects = w.Projects[:0]
	id := 500000
	for p := 1; p <= n; p++ {
		pr := proto
		pr.ID, pr.PathWithNamespace, pr.Name, pr.Path = int64(p), fmt.Sprintf("bench/p%d", p), fmt.Sprintf("p%d", p), fmt.Sprintf("p%d", p)
		w.Projects = append(w.Projects, pr)
		for i := range perProject {
			id++
			pl := map[string]any{"id": 900000 + p*1000 + i/50, "iid": i / 50, "project_id": p, "sha": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd",
				"ref": "main", "status": "failed", "source": "push", "created_at": "2026-02-01T00:00:00.000Z",
				"updated_at": "2026-02-01T00:00:00.000Z", "web_url": "https://gitlab.example.com/bench/-/pipelines/1"}
			b, _ := json.Marshal(map[string]any{"id": id, "status": "failed", "stage": "test", "name": fmt.Sprintf("rspec %d", i), "ref": "main",
				"tag": false, "coverage": nil, "allow_failure": false, "created_at": "2026-02-01T00:00:00.000Z",
				"started_at": nil, "finished_at": nil, "erased_at": nil, "duration": nil, "queued_duration": nil,
				"pipeline": pl, "project_id": p, "tag_list": []string{}, "artifacts": []any{}})
			w.Jobs = append(w.Jobs, b)
		}
	}
	return w
}

// BenchmarkCreations retries failed builds concurrently against DynamoDB
// Local, each goroutine with a Store of its own (a Lambda container serves
// one request at a time): across projects (goroutine g retries builds of
// project g), within one project (every goroutine retries builds of
// project 1), within one project through holds, which answers the
// transaction conflicts AWS would (project 2), and with 64 goroutines in
// one project (project 3). It reports creations/s, the
// retries answered 409 (every attempt lost), the transactions sent, the
// conflicts answered, the id leases and the BatchGetItems per retry. Run
// with -benchtime=Nx, N at most creationPool.
func BenchmarkCreations(b *testing.B) {
	env := testenv.New(b)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), creationWorld(creationProjects, creationPool)); err != nil {
		b.Fatal(err)
	}
	// pools[p] are project p's builds not retried yet.
	pools := make([]chan int64, creationProjects+1)
	for p := 1; p <= creationProjects; p++ {
		pools[p] = make(chan int64, creationPool)
		for i := range creationPool {
			pools[p] <- int64(500000 + (p-1)*creationPool + i + 1)
		}
	}
	held := env.DynamoDB.Options()
	tr := holds.New(held.HTTPClient, "PK", "SK")
	held.HTTPClient = tr
	for _, c := range []struct {
		name    string
		project func(g int) int
		db      *dynamodb.Client
		workers int
	}{
		{"across-projects", func(g int) int { return g + 1 }, env.DynamoDB, creationProjects},
		{"one-project", func(int) int { return 1 }, env.DynamoDB, creationProjects},
		{"one-project-holds", func(int) int { return 2 }, dynamodb.New(held), creationProjects},
		{"one-project-64", func(int) int { return 3 }, env.DynamoDB, 64},
	} {
		b.Run(c.name, func(b *testing.B) {
			workers := c.workers
			if b.N > creationPool {
				b.Fatalf("b.N %d above the pool of %d builds a project: run with -benchtime=%dx", b.N, creationPool, creationPool)
			}
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			env.Counter.Reset()
			conflicts := tr.Conflicts()
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Int64
			for g := range workers {
				s := store.New(c.db, env.Table)
				p := int64(c.project(g))
				wg.Go(func() {
					for range work {
						var id int64
						select {
						case id = <-pools[p]:
						default: // -count or an earlier run used them up: fail, not hang
							b.Errorf("project %d has no failed build left to retry: run once, with -benchtime=%dx at most", p, creationPool)
							return
						}
						f, err := s.Lookup(context.Background(), store.Lookup{Project: store.ProjectRef{ID: p}, JobID: id})
						if err != nil || f.Job == nil {
							b.Errorf("lookup %d: %v", id, err)
							return
						}
						_, err = s.Apply(context.Background(), f.Project, f.Job, jobs.Retry(2, time.Now()))
						switch {
						case errors.Is(err, store.ErrConflict):
							failed.Add(1) // GitLab's 409: maxAttempts lost races
						case err != nil:
							b.Errorf("retry %d: %v", id, err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			calls := env.Counter.Calls()
			made := b.N - int(failed.Load())
			b.ReportMetric(float64(made)/elapsed.Seconds(), "creations/s")
			b.ReportMetric(float64(failed.Load())/float64(b.N), "409s/op")
			b.ReportMetric(float64(calls["TransactWriteItems"])/float64(b.N), "transactions/op") // lost ones too; a combined one places many
			b.ReportMetric(float64(tr.Conflicts()-conflicts)/float64(b.N), "conflicts/op")
			b.ReportMetric(float64(calls["UpdateItem"])/float64(b.N), "leases/op")
			b.ReportMetric(float64(calls["BatchGetItem"])/float64(b.N), "reads/op") // its lookup's, and re-reads after lost races
		})
	}
}

// BenchmarkBatchedPlacements measures the premise of combined placement
// (BENCHMARKS.md, "Ids and shards", the fifth design), which is not built:
// what DynamoDB Local commits in one project when each transaction places
// batch creations, writers at once. A transaction is what placing batch
// retries writes: the project's build count and its ref's, each moved on
// by batch on the condition that it is as read (one strongly consistent
// BatchGetItem before), and per creation the retried job's update and the
// new job's put, about 1 KB each. Run with -benchtime=Nx (N creations).
func BenchmarkBatchedPlacements(b *testing.B) {
	env := testenv.New(b)
	db, table := env.DynamoDB, env.Table
	ctx := context.Background()
	n := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	pad := s(strings.Repeat("x", 900))
	var ids atomic.Int64
	for _, c := range []struct{ writers, batch int }{{1, 1}, {16, 1}, {1, 16}, {1, 48}, {16, 48}} {
		b.Run(fmt.Sprintf("writers=%d/batch=%d", c.writers, c.batch), func(b *testing.B) {
			// A project of its own for each run: counts start at 0.
			run := strconv.FormatInt(ids.Add(1), 10)
			project := map[string]types.AttributeValue{"PK": s("P#x" + run), "SK": s("P")}
			ref := map[string]types.AttributeValue{"PK": s("P#x" + run + "#RF#main"), "SK": s("RF")}
			for _, k := range []map[string]types.AttributeValue{project, ref} {
				if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]types.AttributeValue{"PK": k["PK"], "SK": k["SK"], "n": n(0)}}); err != nil {
					b.Fatal(err)
				}
			}
			moveOn := func(k map[string]types.AttributeValue, old, by int64) types.TransactWriteItem {
				return types.TransactWriteItem{Update: &types.Update{TableName: &table, Key: k,
					UpdateExpression: aws.String("SET n = :new"), ConditionExpression: aws.String("n = :old"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":new": n(old + by), ":old": n(old)}}}
			}
			var placed, lost atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for range c.writers {
				wg.Go(func() {
					for placed.Load() < int64(b.N) {
						got, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
							table: {ConsistentRead: aws.Bool(true), Keys: []map[string]types.AttributeValue{project, ref}}}})
						if err != nil {
							b.Error(err)
							return
						}
						counts := map[string]int64{}
						for _, it := range got.Responses[table] {
							counts[it["PK"].(*types.AttributeValueMemberS).Value], _ = strconv.ParseInt(it["n"].(*types.AttributeValueMemberN).Value, 10, 64)
						}
						pk := func(k map[string]types.AttributeValue) string { return k["PK"].(*types.AttributeValueMemberS).Value }
						nb := counts[pk(project)]
						items := []types.TransactWriteItem{moveOn(project, nb, int64(c.batch)), moveOn(ref, counts[pk(ref)], int64(c.batch))}
						for i := range c.batch {
							id := strconv.FormatInt(ids.Add(1), 10)
							items = append(items,
								types.TransactWriteItem{Put: &types.Put{TableName: &table, ConditionExpression: aws.String("attribute_not_exists(PK)"),
									Item: map[string]types.AttributeValue{"PK": s("J#" + id), "SK": s("J"), "x": pad, "GSI1PK": s(pk(project) + "#B"), "GSI1SK": n(nb + int64(i) + 1)}}},
								types.TransactWriteItem{Update: &types.Update{TableName: &table, Key: map[string]types.AttributeValue{"PK": s("J#" + id + "r"), "SK": s("J")},
									UpdateExpression: aws.String("SET x = :x"), ConditionExpression: aws.String("attribute_not_exists(PK)"),
									ExpressionAttributeValues: map[string]types.AttributeValue{":x": pad}}})
						}
						_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
						var canceled *types.TransactionCanceledException
						switch {
						case err == nil:
							placed.Add(int64(c.batch))
						case errors.As(err, &canceled):
							lost.Add(1)
						default:
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(placed.Load())/time.Since(start).Seconds(), "creations/s")
			b.ReportMetric(float64(lost.Load())*float64(c.batch)/float64(placed.Load()), "lost/op")
		})
	}
}
