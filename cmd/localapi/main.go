// Command localapi serves the Jobs API on loopback as API Gateway would in
// front of the functions: it starts the local stack (DynamoDB Local, S3),
// creates the table, loads the demo world on first start, reads the routes
// from template.yaml and turns every request into an HTTP API event for the
// function the route names. With -external it serves an existing stack
// instead (another DynamoDB Local, a shared test table, an AWS account).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/gateway"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/progress"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// options are the command line's.
type options struct {
	addr, data       string
	ddbPort, s3Port  int
	jobsPerProject   int
	lambda, external bool
	memory           bool
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:3000", "where to serve the API")
	flag.StringVar(&o.data, "data", ".local/data", "where the local stack keeps its data")
	flag.IntVar(&o.ddbPort, "dynamodb-port", 8000, "DynamoDB Local port")
	flag.IntVar(&o.s3Port, "s3-port", 4569, "local S3 port")
	flag.IntVar(&o.jobsPerProject, "demo-jobs", 1500, "jobs per demo project loaded on first start")
	flag.BoolVar(&o.lambda, "lambda", false, "send each request to its function's real bootstrap under the Lambda emulator (make run-lambda)")
	flag.BoolVar(&o.memory, "memory", false, "keep the stack's tables and objects in memory, not under -data (lost when it stops)")
	flag.BoolVar(&o.external, "external", false, "serve an existing stack: the SDK environment's endpoints (AWS when unset), "+
		"JOBS_TABLE and ARTIFACTS_BUCKET; start, create and load nothing")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, o, ln); err != nil {
		log.Fatal(err)
	}
}

// run serves the API on ln until ctx ends.
func run(ctx context.Context, o options, ln net.Listener) error {
	root, err := localaws.ModuleRoot()
	if err != nil {
		return err
	}
	tmpl, err := sam.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	env := externalEnv()
	if !o.external {
		fmt.Fprintln(os.Stderr, "starting DynamoDB Local and S3 ...")
		stack, err := localaws.StartStack(root, localaws.StackOptions{DataDir: filepath.Join(root, o.data),
			InMemory: o.memory, DynamoPort: o.ddbPort, S3Port: o.s3Port, Table: "jobs", Bucket: "jobs-artifacts"})
		if err != nil {
			return err
		}
		defer stack.Stop()
		stack.Setenv()
		env = stack.Env
	}
	deps, err := config.Load(ctx, s3config.Files)
	if err != nil {
		return err
	}
	if !o.external {
		if err := deps.Store.CreateTable(ctx); err != nil {
			return err
		}
		if err := seedOnce(ctx, deps, o.jobsPerProject); err != nil {
			return err
		}
	}
	invoke, stopFunctions, err := functions(root, tmpl, deps, env, o.lambda)
	if err != nil {
		return err
	}
	defer stopFunctions()
	srv := &http.Server{Handler: gateway.Handler(gateway.NewRouter(tmpl), invoke), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	printWelcome(ln.Addr().String(), env, o.external)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return srv.Shutdown(context.Background())
}

// externalEnv is what of this process's environment points the functions at
// an existing stack: the SDK's variables, the table and the bucket (and
// HOME, where the SDK finds shared config and credential files).
func externalEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || k == "S3_FORCE_PATH_STYLE" || k == "JOBS_TABLE" || k == "ARTIFACTS_BUCKET" || k == "HOME" {
			env[k] = v
		}
	}
	return env
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
	im := &world.Importer{Store: deps.Store, Files: deps.Files.(*jobfiles.Store), Now: time.Now, Meter: progress.New(os.Stderr, progress.IsTerminal(os.Stderr))}
	_, err = im.Import(ctx, demo.Seed(jobsPerProject))
	return err
}

func printWelcome(addr string, env map[string]string, external bool) {
	endpoint := func(k string) string { return cmp.Or(env[k], "AWS") }
	fmt.Printf("\nJobs API on http://%s/api/v4  (table %s on DynamoDB %s, bucket %s on S3 %s)\n\n", addr,
		env["JOBS_TABLE"], endpoint("AWS_ENDPOINT_URL_DYNAMODB"), env["ARTIFACTS_BUCKET"], endpoint("AWS_ENDPOINT_URL_S3"))
	if external {
		return // the stack's tokens are its own
	}
	fmt.Println("Demo tokens:")
	for _, t := range demo.Tokens() {
		fmt.Printf("  %-28s %s\n", t.Role, t.Token)
	}
	fmt.Printf("\nTry:\n  export T=%s\n", demo.TokenMaintainer)
	fmt.Printf("  curl -H \"PRIVATE-TOKEN: $T\" \"http://%s/api/v4/projects/demo%%2Fbackend/jobs?scope[]=failed&scope[]=success&per_page=5\"\n", addr)
	fmt.Printf("  curl -H \"JOB-TOKEN: %s\" \"http://%s/api/v4/job\"\n\n", demo.JobTokenRunning, addr)
}
