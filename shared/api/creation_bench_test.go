package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
			b, _ := json.Marshal(map[string]any{"id": id, "status": "failed", "stage": "test", "name": "rspec", "ref": "main",
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
// project 1), and within one project through holds, which answers the
// transaction conflicts AWS would (project 2). It reports creations/s, the
// retries answered 409 (every attempt lost), the transactions lost, the
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
	}{
		{"across-projects", func(g int) int { return g + 1 }, env.DynamoDB},
		{"one-project", func(int) int { return 1 }, env.DynamoDB},
		{"one-project-holds", func(int) int { return 2 }, dynamodb.New(held)},
	} {
		b.Run(c.name, func(b *testing.B) {
			const workers = creationProjects
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
			b.ReportMetric(float64(calls["TransactWriteItems"]-made)/float64(b.N), "lost/op")
			b.ReportMetric(float64(tr.Conflicts()-conflicts)/float64(b.N), "conflicts/op")
			b.ReportMetric(float64(calls["UpdateItem"])/float64(b.N), "leases/op")
			b.ReportMetric(float64(calls["BatchGetItem"])/float64(b.N), "reads/op") // its lookup's, and re-reads after lost races
		})
	}
}
