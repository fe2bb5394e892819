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

	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

const usage = `usage:
  jobsctl create-table        create the table (from the one schema definition)
  jobsctl import FILE|-       import a world document, idempotently
  jobsctl reshard PROJECT SHARDS
                              move a project's builds to SHARDS write shards of its build
                              indexes (1 to 32; lists miss unmoved builds while it runs)
  jobsctl seed [-jobs N] [-o FILE]
                              import the demo world (or write it to FILE) and print its tokens
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
		if len(args) != 1 {
			return fmt.Errorf("import needs a FILE or -")
		}
		var in io.Reader = os.Stdin
		dir := "." // artifacts_archive paths of a document on standard input are relative to here
		if args[0] != "-" {
			dir = filepath.Dir(args[0])
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		var w world.World
		if err := json.NewDecoder(in).Decode(&w); err != nil {
			return fmt.Errorf("read world: %w", err)
		}
		w.Dir = os.DirFS(dir)
		return load(ctx, &w)
	case "trace":
		return traceCommand(ctx, args)
	case "reshard":
		return reshard(ctx, args)
	case "seed":
		fs := flag.NewFlagSet("seed", flag.ContinueOnError)
		n := fs.Int("jobs", 1500, "jobs per demo project")
		out := fs.String("o", "", "write the world document to this file instead of importing it")
		if err := fs.Parse(args); err != nil {
			return err
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
		if err := load(ctx, w); err != nil {
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
	pid, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return fmt.Errorf("project id %q: %w", args[0], err)
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
	moved, err := deps.Store.Reshard(ctx, pid, shards, func(done int) {
		fmt.Fprintf(os.Stderr, "\rmoved %d builds", done)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nproject %d: %d shards, %d builds moved in %s\n", pid, shards, moved, time.Since(start).Round(time.Millisecond))
	return nil
}

func load(ctx context.Context, w *world.World) error {
	deps, err := config.Load(ctx, s3config.Files)
	if err != nil {
		return err
	}
	start := time.Now()
	im := &world.Importer{Store: deps.Store, Files: deps.Files.(*jobfiles.Store), Now: time.Now, Progress: world.PrintProgress(os.Stderr)}
	sum, err := im.Import(ctx, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imported %d users, %d tokens, %d projects, %d pipelines, %d traces, %d jobs (%d new) in %s\n",
		sum.Users, sum.Tokens, sum.Projects, sum.Pipelines, sum.Traces, sum.Jobs, sum.NewJobs, time.Since(start).Round(time.Millisecond))
	return nil
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
