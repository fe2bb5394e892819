// Command lambdabench is make bench-coldstart (BENCHMARKS.md): it builds
// every function of template.yaml and a hello-world Lambda (./hello) the
// same way, runs each bootstrap under AWS's Lambda Runtime Interface
// Emulator against a local stack holding the demo world, and prints, as a
// markdown table, each one's cold start (emulator process start → first
// response) and warm invoke latency, medians and ratios to hello, and its
// bootstrap size, against the goals: cold ≤ 1.5× hello, size ≤ 12 MiB.
// A second baseline, ./floor, makes a list page's one Query and nothing
// else: the least a list function's cold start can be on this stack.
//
//	go run ./cmd/lambdabench -n 11 -warm 20 [-only list-project-jobs,get-job]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/golden"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

const (
	helloPkg     = "./cmd/lambdabench/hello"
	hello        = "hello"
	floorPkg     = "./cmd/lambdabench/floor"
	floor        = "floor"
	maxColdRatio = 1.5
	maxSize      = 12 << 20 // as the emulator CI test checks
	awsArch      = "arm64"  // what template.yaml deploys
)

// fixedNow is the CI emulator test's clock: the world is imported at it
// and the functions run at it, so that every event answers as its golden
// file says.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func main() {
	n := flag.Int("n", 11, "cold starts per function (the median is reported)")
	warm := flag.Int("warm", 20, "warm invokes after each cold start")
	only := flag.String("only", "", "comma-separated functions to measure (with hello); all when empty")
	flag.Parse()
	if *n < 1 || *warm < 1 {
		log.Fatal("-n and -warm must be at least 1")
	}
	// Ctrl-C cancels the run, so that the deferred Stops kill the emulator
	// and DynamoDB Local by their process ids before we exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *n, *warm, *only)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

// target is one bootstrap under test and what was measured of it.
type target struct {
	name     string // function folder, or hello
	payload  []byte
	golden   int              // the status its golden file pins
	size     map[string]int64 // bootstrap bytes by GOARCH
	em       *rie.Emulator
	cold     []time.Duration
	warm     []time.Duration
	statuses []int // distinct, in order seen
	stream   bool  // invoked by the table's stream, not API Gateway
}

func run(ctx context.Context, n, warm int, only string) error {
	root, err := localaws.ModuleRoot()
	if err != nil {
		return err
	}
	tmpl, err := sam.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	rieBin, err := rie.Install(root)
	if err != nil {
		return err
	}
	work := filepath.Join(root, ".local", "lambdabench")
	if only != "" {
		keep := strings.Split(only, ",")
		tmpl.Functions = slices.DeleteFunc(tmpl.Functions, func(f sam.Function) bool { return !slices.Contains(keep, f.Folder) })
	}
	targets, bootstraps, err := build(ctx, root, work, tmpl)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "lambdabench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	env, stopStack, err := startWorld(ctx, root, tmp)
	if err != nil {
		return err
	}
	defer stopStack()
	opts := rie.PoolOptions{Bootstraps: bootstraps, Base: env,
		Refs: rie.StackRefs(env["JOBS_TABLE"], env["ARTIFACTS_BUCKET"])}
	for _, t := range targets {
		if t.em, err = emulator(tmpl, t.name, opts); err != nil {
			return err
		}
	}
	logs, err := os.Create(filepath.Join(work, "functions.log"))
	if err != nil {
		return err
	}
	defer logs.Close()
	// Rounds go over every target in turn rather than one target n times,
	// so that a slow spell of the machine weighs on all of them alike.
	for round := 1; round <= n; round++ {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", round, n)
		for _, t := range targets {
			if err := t.measure(ctx, rieBin, logs, warm); err != nil {
				if ctx.Err() != nil {
					return errors.New("interrupted")
				}
				return fmt.Errorf("%s: %w (function output in %s)", t.name, err, logs.Name())
			}
		}
	}
	report(os.Stdout, targets, n, warm)
	return nil
}

// build builds every bootstrap for this machine (to run) and for arm64 (to
// weigh), and returns the targets, hello first, with the host bootstraps
// by name.
func build(ctx context.Context, root, work string, tmpl *sam.Template) ([]*target, map[string]string, error) {
	targets := []*target{{name: hello, golden: 200}, {name: floor, golden: 200}}
	pkgs := []string{helloPkg, floorPkg}
	for _, f := range tmpl.Functions {
		if api.Function(f.Folder).Route().Stream {
			// A stream event's answer is the emulator's: 200 when the
			// handler returned no error.
			targets = append(targets, &target{name: f.Folder, golden: 200, stream: true})
			pkgs = append(pkgs, "./functions/"+f.Folder)
			continue
		}
		event := filepath.Join(root, "events", f.Folder+".json")
		want, err := golden.Read(golden.Path(filepath.Join(root, "shared", "api", "testdata", "events"), event))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: no golden response: %w", f.Folder, err)
		}
		targets = append(targets, &target{name: f.Folder, golden: want.StatusCode})
		pkgs = append(pkgs, "./functions/"+f.Folder)
	}
	var host map[string]string
	for _, arch := range []string{runtime.GOARCH, awsArch} {
		fmt.Fprintf(os.Stderr, "building %d bootstraps for linux/%s ...\n", len(pkgs), arch)
		built, err := rie.Build(ctx, root, filepath.Join(work, arch), arch, pkgs...)
		if err != nil {
			return nil, nil, err
		}
		byName := map[string]string{}
		for pkg, path := range built {
			byName[filepath.Base(pkg)] = path
		}
		for _, t := range targets {
			st, err := os.Stat(byName[t.name])
			if err != nil {
				return nil, nil, err
			}
			if t.size == nil {
				t.size = map[string]int64{}
			}
			t.size[arch] = st.Size()
		}
		if arch == runtime.GOARCH {
			host = byName
		}
	}
	// Every target gets its own event; hello ignores it but decodes it,
	// floor reads the page list-project-jobs' event names.
	for _, t := range targets {
		event := t.name
		switch t.name {
		case hello:
			event = "get-job"
		case floor:
			event = "list-project-jobs"
		}
		var err error
		if t.payload, err = os.ReadFile(filepath.Join(root, "events", event+".json")); err != nil {
			return nil, nil, err
		}
	}
	return targets, host, nil
}

// startWorld starts DynamoDB Local and the S3 stand-in on free loopback
// ports with their data under dir, imports the demo world of the CI
// emulator test, and returns the functions' base environment.
func startWorld(ctx context.Context, root, dir string) (map[string]string, func(), error) {
	fmt.Fprintln(os.Stderr, "starting DynamoDB Local and S3, importing the demo world ...")
	stack, err := localaws.StartStack(root, localaws.StackOptions{DataDir: dir, Table: "jobs", Bucket: "jobs-artifacts"})
	if err != nil {
		return nil, nil, err
	}
	stack.Setenv()
	deps, err := config.Load(ctx, s3config.Files)
	if err == nil {
		err = deps.Store.CreateTable(ctx)
	}
	if err == nil {
		im := &world.Importer{Store: deps.Store, Files: deps.Files.(*jobfiles.Store), Now: func() time.Time { return fixedNow }}
		// The import is idempotent: on a machine busy enough that DynamoDB
		// Local misses the functions' attempt timeout, try again.
		for try := 0; try < 5; try++ {
			if _, err = im.Import(ctx, demo.Seed(40)); err == nil {
				break
			}
			fmt.Fprintf(os.Stderr, "import: %v; again\n", err)
		}
	}
	if err != nil {
		stack.Stop()
		return nil, nil, err
	}
	env := map[string]string{config.FixedTimeEnv: fixedNow.Format(time.RFC3339)}
	for k, v := range stack.Env {
		env[k] = v
	}
	return env, stack.Stop, nil
}

// emulator prepares the emulator of a function with its template
// environment; the baselines get the same base environment and Lambda's
// defaults.
func emulator(tmpl *sam.Template, name string, opts rie.PoolOptions) (*rie.Emulator, error) {
	switch name {
	case hello:
		return rie.NewEmulator(&sam.Function{LogicalID: "HelloFunction", Folder: hello}, opts)
	case floor:
		return rie.NewEmulator(&sam.Function{LogicalID: "FloorFunction", Folder: floor}, opts)
	}
	f, ok := tmpl.Function(name)
	if !ok {
		return nil, fmt.Errorf("template.yaml has no function %s", name)
	}
	return rie.NewEmulator(f, opts)
}

// measure starts a fresh emulator, times it from just before the process
// starts to the first response (cold), then times warm invokes one after
// another (an emulator takes one invoke at a time), and stops it.
func (t *target) measure(ctx context.Context, rieBin string, logs *os.File, warm int) error {
	start := time.Now()
	if err := t.em.Start(rieBin, logs); err != nil {
		return err
	}
	defer t.em.Stop()
	if err := t.invoke(ctx); err != nil {
		return err
	}
	t.cold = append(t.cold, time.Since(start))
	for i := 0; i < warm; i++ {
		start := time.Now()
		if err := t.invoke(ctx); err != nil {
			return err
		}
		t.warm = append(t.warm, time.Since(start))
	}
	return nil
}

func (t *target) invoke(ctx context.Context) error {
	status, err := t.answer(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(t.statuses, status) {
		t.statuses = append(t.statuses, status)
	}
	return nil
}

// answer is the status of one invoke: the HTTP response's, or for a stream
// function the emulator's.
func (t *target) answer(ctx context.Context) (int, error) {
	if t.stream {
		status, _, err := t.em.Raw(ctx, t.payload)
		return status, err
	}
	resp, err := t.em.InvokePayload(ctx, t.payload)
	return resp.StatusCode, err
}

// report prints the markdown table and the summary line.
func report(w io.Writer, targets []*target, n, warm int) {
	fmt.Fprintf(w, "%s linux/%s, %d CPUs; median of %d cold starts and of %d×%d warm invokes per bootstrap\n\n",
		runtime.Version(), runtime.GOARCH, runtime.NumCPU(), n, n, warm)
	fmt.Fprintf(w, "| function | size %s (MiB) | size %s (MiB) | cold (ms) | cold × hello | warm (ms) | warm × hello | status | goals |\n",
		runtime.GOARCH, awsArch)
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|---|---|")
	base := targets[0]
	helloCold, helloWarm := median(base.cold), median(base.warm)
	passed := 0
	for _, t := range targets {
		cold, warmMed := median(t.cold), median(t.warm)
		coldRatio := ms(cold) / ms(helloCold)
		verdict := "baseline"
		switch {
		case t.name == floor:
			verdict = "baseline: one Query"
		case t != base:
			verdict = goals(t, coldRatio)
			if verdict == "PASS" {
				passed++
			}
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %.2f | %.2f | %.2f | %s | %s |\n", t.name,
			mib(t.size[runtime.GOARCH]), mib(t.size[awsArch]), ms(cold), coldRatio,
			ms(warmMed), ms(warmMed)/ms(helloWarm), t.statusText(), verdict)
	}
	fmt.Fprintf(w, "\n%d/%d functions meet both goals (cold start ≤ %.1f× hello, bootstrap ≤ %d MiB on %s and %s)\n",
		passed, len(targets)-2, maxColdRatio, maxSize>>20, runtime.GOARCH, awsArch)
}

// goals is PASS, or FAIL with the goals missed.
func goals(t *target, coldRatio float64) string {
	var missed []string
	if coldRatio > maxColdRatio {
		missed = append(missed, fmt.Sprintf("cold %.3f× > %.1f×", coldRatio, maxColdRatio))
	}
	for _, arch := range []string{runtime.GOARCH, awsArch} {
		if t.size[arch] > maxSize {
			missed = append(missed, fmt.Sprintf("%s %.1f MiB > %d", arch, mib(t.size[arch]), maxSize>>20))
		}
	}
	if len(missed) == 0 {
		return "PASS"
	}
	return "FAIL: " + strings.Join(missed, ", ")
}

// statusText lists the statuses the function answered; an action answers
// its golden status once, then what repeating it on the same job gives.
func (t *target) statusText() string {
	parts := make([]string, len(t.statuses))
	for i, s := range t.statuses {
		parts[i] = fmt.Sprint(s)
	}
	text := strings.Join(parts, ", ")
	if len(t.statuses) == 0 || t.statuses[0] != t.golden {
		text += fmt.Sprintf(" (golden %d!)", t.golden)
	}
	return text
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
