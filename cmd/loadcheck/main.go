// Command loadcheck drives a bounded mix of list pages, keyset walks, job
// reads and racing actions at a Jobs API on loopback, then checks the
// stored jobs' invariants (shared/tools/load) in the stack the SDK
// environment names. It stops by itself and exits 1 on any 5xx or broken
// invariant. `make loadcheck` runs it against `make run`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/load"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:3000/api/v4", "the API, on loopback")
	duration := flag.Duration("duration", 30*time.Second, "at most this long (at most 10m)")
	requests := flag.Int("requests", 20000, "at most this many requests")
	workers := flag.Int("workers", 8, "requests in flight")
	projects := flag.String("projects", "1,demo/platform/frontend,3", "projects to work on, by id or path")
	tokens := flag.String("tokens", demo.TokenMaintainer+","+demo.TokenAdmin, "tokens that may act on them")
	seed := flag.Uint64("seed", 1, "the workload's random choices")
	flag.Parse()
	ctx := context.Background()
	cfg, err := config.AWS(ctx)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := load.Run(ctx, load.Options{BaseURL: *base, Projects: strings.Split(*projects, ","),
		Tokens: strings.Split(*tokens, ","), Duration: min(*duration, 10*time.Minute), MaxRequests: *requests,
		Workers: *workers, Seed: *seed})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d requests in %v (%.0f/s)\n", rep.Requests, rep.Elapsed.Round(time.Millisecond),
		float64(rep.Requests)/rep.Elapsed.Seconds())
	for _, k := range sorted(rep.ByKind) {
		fmt.Printf("  %-7s %6d   slowest %v\n", k, rep.ByKind[k], rep.Latency[k].Round(time.Millisecond))
	}
	fmt.Printf("statuses: %v\n", rep.ByStatus)
	bad, err := load.Check(ctx, load.Stack{DynamoDB: config.DynamoDBClient(cfg), S3: s3config.Client(cfg),
		Table: os.Getenv("JOBS_TABLE"), Bucket: os.Getenv("ARTIFACTS_BUCKET")})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range rep.ServerErr {
		fmt.Println("5xx:", e)
	}
	for _, b := range bad {
		fmt.Println("invariant:", b)
	}
	fmt.Printf("%d responses >= 500, %d broken invariants\n", len(rep.ServerErr), len(bad))
	if len(rep.ServerErr) > 0 || len(bad) > 0 {
		os.Exit(1)
	}
}

func sorted(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
