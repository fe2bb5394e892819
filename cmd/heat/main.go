// Command heat is the partition-heat model (make heat): it replays a
// workload mix through the real store on a DynamoDB Local it starts, with a
// recording client, and prints the hottest partition keys against
// DynamoDB's per-partition limits (shared/tools/heat; BENCHMARKS.md).
package main

import (
	"context"
	"flag"
	"log"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/heat"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
)

func main() {
	m := heat.DefaultMix
	flag.Float64Var(&m.JobWrites, "job-writes", m.JobWrites, "status changes a second of the hot project's jobs")
	flag.Float64Var(&m.ListReads, "list-reads", m.ListReads, "page-1 reads a second of the hot project")
	flag.Float64Var(&m.Creations, "creations", m.Creations, "new jobs a second over the installation")
	flag.IntVar(&m.Pipelines, "pipelines", m.Pipelines, "active pipelines of the hot project the job writes spread over")
	flag.IntVar(&m.CreationProjects, "creation-projects", m.CreationProjects, "projects the creations spread over")
	flag.IntVar(&m.CreationPipelines, "creation-pipelines", m.CreationPipelines, "pipelines per creation project")
	flag.IntVar(&m.CreationRefs, "creation-refs", m.CreationRefs, "refs a creation project's pipelines are dealt over")
	flag.IntVar(&m.CreationWriters, "creation-writers", m.CreationWriters, "containers retrying in each creation project at once (1: one at a time, the direct path)")
	flag.IntVar(&m.Callers, "callers", m.Callers, "distinct tokens reading the hot page")
	flag.Float64Var(&m.ContainerRPS, "container-rps", m.ContainerRPS, "requests a second one warm container serves")
	flag.IntVar(&m.Samples, "samples", m.Samples, "recordings of each list read kind")
	flag.IntVar(&m.HotShards, "hot-shards", m.HotShards, "write shards of the hot project's build indexes")
	flag.IntVar(&m.CreationShards, "creation-shards", m.CreationShards, "write shards of each creation project's build indexes")
	flag.Float64Var(&m.Imports, "imports", m.Imports, "jobs a second imported into one project")
	flag.IntVar(&m.ImportShards, "import-shards", m.ImportShards, "write shards of the import project's build indexes")
	flag.IntVar(&m.ImportJobs, "import-jobs", m.ImportJobs, "jobs of the recorded import")
	flag.IntVar(&m.ImportPipelineJobs, "import-pipeline-jobs", m.ImportPipelineJobs, "jobs per pipeline of the recorded import")
	top := flag.Int("top", 20, "partition keys to print")
	check := flag.Bool("check", false, "exit 1 when a partition key is above 80% of its limit")
	flag.Parse()

	root, err := localaws.ModuleRoot()
	if err != nil {
		log.Fatal(err)
	}
	ddb, err := localaws.StartDynamoDB(root, "", 0)
	if err != nil {
		log.Fatal(err)
	}
	defer ddb.Stop()
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("heat", "heat", "")))
	if err != nil {
		log.Fatal(err)
	}
	const table = "heat"
	if err := store.New(rawClient(cfg, ddb.Endpoint), table).CreateTable(ctx); err != nil {
		log.Fatal(err)
	}
	st, err := heat.NewStack(ctx, cfg, ddb.Endpoint, table)
	if err != nil {
		log.Fatal(err)
	}
	r, err := heat.Replay(ctx, st, m)
	if err != nil {
		log.Fatal(err)
	}
	r.Write(os.Stdout, *top)
	if *check {
		for _, row := range r.Rows {
			if row.Over() {
				ddb.Stop()
				os.Exit(1)
			}
		}
	}
}

func rawClient(cfg aws.Config, endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}
