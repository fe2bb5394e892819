// Command localapi serves the Jobs API on loopback as API Gateway would in
// front of the functions: it starts the local stack (DynamoDB Local, S3),
// creates the table, loads the demo world on first start, reads the routes
// from template.yaml and turns every request into an HTTP API event for the
// function the route names.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/gateway"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "where to serve the API")
	data := flag.String("data", ".local/data", "where the local stack keeps its data")
	ddbPort := flag.Int("dynamodb-port", 8000, "DynamoDB Local port")
	s3Port := flag.Int("s3-port", 4569, "local S3 port")
	jobsPerProject := flag.Int("demo-jobs", 1500, "jobs per demo project loaded on first start")
	lambda := flag.Bool("lambda", false, "send each request to its function's real bootstrap under the Lambda emulator (make run-lambda)")
	flag.Parse()
	if err := run(*addr, *data, *ddbPort, *s3Port, *jobsPerProject, *lambda); err != nil {
		log.Fatal(err)
	}
}

func run(addr, data string, ddbPort, s3Port, jobsPerProject int, lambda bool) error {
	root, err := localaws.ModuleRoot()
	if err != nil {
		return err
	}
	tmpl, err := sam.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting DynamoDB Local and S3 ...")
	stack, err := localaws.StartStack(root, localaws.StackOptions{DataDir: filepath.Join(root, data),
		DynamoPort: ddbPort, S3Port: s3Port, Table: "jobs", Bucket: "jobs-artifacts"})
	if err != nil {
		return err
	}
	defer stack.Stop()
	stack.Setenv()
	ctx := context.Background()
	deps, err := config.Load(ctx)
	if err != nil {
		return err
	}
	if err := deps.Store.CreateTable(ctx); err != nil {
		return err
	}
	if err := seedOnce(ctx, deps, jobsPerProject); err != nil {
		return err
	}
	invoke, stopFunctions, err := functions(root, tmpl, deps, stack.Env, lambda)
	if err != nil {
		return err
	}
	defer stopFunctions()
	srv := &http.Server{Addr: addr, Handler: gateway.Handler(gateway.NewRouter(tmpl), invoke),
		ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	printWelcome(addr, stack.Env)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	select {
	case <-stop:
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return srv.Shutdown(context.Background())
}

// functions serves the template's functions in this process or, in Lambda
// mode, each from its real bootstrap under the emulator.
func functions(root string, tmpl *sam.Template, deps *api.Deps, env map[string]string, lambda bool) (gateway.Invoke, func(), error) {
	if !lambda {
		handlers := map[string]http.Handler{}
		for _, f := range tmpl.Functions {
			fn, ok := api.Named(f.Folder)
			if !ok {
				return nil, nil, fmt.Errorf("template.yaml names %s but functions/%s has no handler", f.LogicalID, f.Folder)
			}
			handlers[f.Folder] = fn.Handler(deps)
		}
		return gateway.InProcess(handlers), func() {}, nil
	}
	rieBin, err := rie.Install(root)
	if err != nil {
		return nil, nil, err
	}
	folders := make([]string, len(tmpl.Functions))
	for i, f := range tmpl.Functions {
		folders[i] = f.Folder
	}
	fmt.Fprintf(os.Stderr, "building %d bootstraps for the Lambda emulator ...\n", len(folders))
	bins, err := rie.BuildFunctions(context.Background(), root, rie.LocalBuildDir(root), "", folders...)
	if err != nil {
		return nil, nil, err
	}
	pool, err := rie.StartPool(tmpl, rie.PoolOptions{RIE: rieBin, Bootstraps: bins, Base: env,
		Refs: rie.StackRefs(env["JOBS_TABLE"], env["ARTIFACTS_BUCKET"]), Out: os.Stderr})
	if err != nil {
		return nil, nil, err
	}
	return pool.Invoke, pool.Stop, nil
}

// seedOnce loads the demo world unless the table already holds it.
func seedOnce(ctx context.Context, deps *api.Deps, jobsPerProject int) error {
	f, err := deps.Store.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: demo.ProjectBackend}})
	if err != nil {
		return err
	}
	if f.Project != nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "loading the demo world (%d jobs per project) ...\n", jobsPerProject)
	im := &world.Importer{Store: deps.Store, Files: deps.Files, Now: time.Now, Progress: world.PrintProgress(os.Stderr)}
	_, err = im.Import(ctx, demo.Seed(jobsPerProject))
	return err
}

func printWelcome(addr string, env map[string]string) {
	fmt.Printf("\nJobs API on http://%s/api/v4  (DynamoDB Local %s, S3 %s)\n\n", addr,
		env["AWS_ENDPOINT_URL_DYNAMODB"], env["AWS_ENDPOINT_URL_S3"])
	fmt.Println("Demo tokens:")
	for _, t := range demo.Tokens() {
		fmt.Printf("  %-28s %s\n", t.Role, t.Token)
	}
	fmt.Printf("\nTry:\n  export T=%s\n", demo.TokenMaintainer)
	fmt.Printf("  curl -H \"PRIVATE-TOKEN: $T\" \"http://%s/api/v4/projects/demo%%2Fbackend/jobs?scope[]=failed&scope[]=success&per_page=5\"\n", addr)
	fmt.Printf("  curl -H \"JOB-TOKEN: %s\" \"http://%s/api/v4/job\"\n\n", demo.JobTokenRunning, addr)
}
