// Command jobsctl manages the Jobs API's data: it creates the table, imports
// a world document, writes the demo world and reshards a project's builds. It reaches DynamoDB and S3
// through the SDK's standard environment, as the functions do. Its trace
// command is a client of any GitLab-compatible API instead.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/progress"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

const usage = `usage:
  jobsctl create-table        create the table (from the one schema definition)
  jobsctl import [-checkpoint F] [-calls N] FILE|-
                              import a world document, idempotently, resuming after a crash
  jobsctl reshard PROJECT SHARDS
                              move a project's builds to SHARDS write shards of its build
                              indexes (1 to 32; lists read both counts' keys until it ends, so
                              they stay whole: it first waits 10 s, until every function knows);
                              a project stored before ref counts had items of their own gets them
  jobsctl recount PROJECT      count a project stored before rank masks were kept, so that its deep
                              filtered pages of completed builds (and of each ref's) cost what
                              shallow ones do
  jobsctl seed [-jobs N] [-o FILE [-bulk [-pipeline-jobs M]]]
                              import the demo world (or write it to FILE) and print its tokens;
                              -bulk writes one project of N jobs as generated, for measuring imports
                              (-pipeline-jobs: at most M jobs per pipeline, for many pipelines)
  jobsctl trace [--follow] [-url URL] [-token T | -job-token T] [-interval 3s] PROJECT JOB
                              print a job's log; with --follow, print what it gains until the job
                              finishes (If-None-Match and Range polls; whole logs where ranges are not served)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "jobsctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "create-table":
		deps, err := config.Load(ctx, s3config.Files)
		if err != nil {
			return err
		}
		return deps.Store.CreateTable(ctx)
	case "import":
		return importCommand(ctx, args)
	case "trace":
		return traceCommand(ctx, args)
	case "reshard":
		return reshard(ctx, args)
	case "recount":
		return recount(ctx, args)
	case "seed":
		fs := flag.NewFlagSet("seed", flag.ContinueOnError)
		n := fs.Int("jobs", 1500, "jobs per demo project")
		out := fs.String("o", "", "write the world document to this file instead of importing it")
		bulk := fs.Bool("bulk", false, "with -o: one project of -jobs jobs, written as generated (flat memory), no archives")
		pipelineJobs := fs.Int("pipeline-jobs", 0, "with -bulk: at most this many jobs per pipeline (0: 9 to 12)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *bulk {
			if *out == "" {
				return fmt.Errorf("seed -bulk needs -o FILE")
			}
			return writeBulk(*out, *n, *pipelineJobs)
		}
		w := demo.Seed(*n)
		if *out != "" {
			b, err := json.MarshalIndent(w, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(*out, b, 0o644); err != nil {
				return err
			}
			return writeFiles(filepath.Dir(*out), w.Dir)
		}
		if err := load(ctx, func(im *world.Importer) (*world.Summary, error) { return im.Import(ctx, w) }); err != nil {
			return err
		}
		for _, t := range demo.Tokens() {
			fmt.Printf("%-28s %s\n", t.Role, t.Token)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func reshard(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("reshard needs a PROJECT id and SHARDS")
	}
	pid, err := projectID(args[0])
	if err != nil {
		return err
	}
	shards, err := strconv.Atoi(args[1])
	if err != nil {
		return fmt.Errorf("shards %q: %w", args[1], err)
	}
	deps, err := config.Load(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	// The functions' containers trust a project they read for store.WarmTTL:
	// lists read both counts' keys once every one of them knows of the move.
	moved, err := deps.Store.Reshard(ctx, pid, shards, store.WarmTTL, func(done int) {
		fmt.Fprintf(os.Stderr, "\rmoved %d builds", done)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nproject %d: %d shards, %d builds moved in %s\n", pid, shards, moved, time.Since(start).Round(time.Millisecond))
	return nil
}

func recount(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("recount needs a PROJECT id")
	}
	pid, err := projectID(args[0])
	if err != nil {
		return err
	}
	deps, err := config.Load(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := deps.Store.Recount(ctx, pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "project %d: %d completed builds counted in %s\n", pid, n, time.Since(start).Round(time.Millisecond))
	return nil
}

// projectID is a command's PROJECT argument.
func projectID(arg string) (int64, error) {
	pid, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("project id %q: %w", arg, err)
	}
	return pid, nil
}

// importCommand reads a document from a file, or from standard input,
// which is spooled to a temporary file first: the importer reads the
// document twice and finds its sections in any order.
func importCommand(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("import", flag.ContinueOnError)
	checkpoint := fl.String("checkpoint", "", "where to record progress, to resume after a crash (default FILE.checkpoint; none for - unless given)")
	calls := fl.Int("calls", 0, "batch calls each writer and check keeps going (default 4, what DynamoDB Local takes best; on DynamoDB, 16)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return fmt.Errorf("import needs a FILE or -")
	}
	if *calls < 0 {
		return fmt.Errorf("-calls must be 1 or more (0 for the default)")
	}
	name, dir := fl.Arg(0), "." // artifacts_archive paths of a document on standard input are relative to here
	var f *os.File
	if name == "-" {
		tmp, err := os.CreateTemp("", "jobsctl-import-*.json")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if _, err := io.Copy(tmp, os.Stdin); err != nil {
			return fmt.Errorf("spool standard input: %w", err)
		}
		f = tmp
	} else {
		var err error
		if f, err = os.Open(name); err != nil {
			return err
		}
		defer f.Close()
		dir = filepath.Dir(name)
		if *checkpoint == "" {
			*checkpoint = name + ".checkpoint"
		}
	}
	return load(ctx, func(im *world.Importer) (*world.Summary, error) {
		im.Checkpoint = *checkpoint
		im.Store.SetImportCalls(*calls)
		return im.ImportFile(ctx, f, os.DirFS(dir))
	})
}

const importAttempt = 30 * time.Second

func load(ctx context.Context, run func(*world.Importer) (*world.Summary, error)) error {
	deps, err := config.Load(ctx, s3config.Files)
	if err != nil {
		return err
	}
	cfg, err := config.AWS(ctx)
	if err != nil {
		return err
	}
	// An import's calls are full batches, many at a time, against a store
	// that may be busy (DynamoDB Local is): an attempt gets far longer than a
	// request's calls may take.
	db := dynamodb.New(config.DynamoDBClient(cfg).Options(), func(o *dynamodb.Options) { o.HTTPClient = config.HTTPClient(importAttempt) })
	start := time.Now()
	im := &world.Importer{Store: store.New(db, deps.Store.Table()), Files: deps.Files.(*jobfiles.Store), Now: time.Now, Meter: progress.New(os.Stderr, progress.IsTerminal(os.Stderr))}
	sum, err := run(im)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imported %d users, %d tokens, %d projects, %d pipelines, %d traces, %d jobs (%d new) in %s\n",
		sum.Users, sum.Tokens, sum.Projects, sum.Pipelines, sum.Traces, sum.Jobs, sum.NewJobs, time.Since(start).Round(time.Millisecond))
	return nil
}

func writeBulk(path string, n, pipelineJobs int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := demo.Bulk(f, n, pipelineJobs); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFiles writes the files of fsys (the archives a demo document names)
// under dir, replacing those of an earlier seed -o.
func writeFiles(dir string, fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
