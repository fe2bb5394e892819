package rie_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/agreement"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/golden"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// fixedNow is the in-process event test's clock (shared/api main_test.go),
// so that durations render as in the golden files.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// maxBootstrap is the size goal of a bootstrap as Lambda runs it, linux/arm64
// (BENCHMARKS.md).
const maxBootstrap = 12 << 20

// Every bootstrap is within the size goal on both architectures. They link
// the whole endpoint table, and the S3 client only where they use files.
func TestBootstrapSize(t *testing.T) {
	root, _ := setup(t)
	// A list function (DynamoDB only) and the largest with S3, on what
	// Lambda runs (arm64) and what the emulator runs here (amd64).
	functions := []string{"list-project-jobs", "get-job-artifact-file"}
	for _, arch := range []string{"arm64", "amd64"} {
		bins, err := rie.BuildFunctions(context.Background(), root, t.TempDir(), arch, functions...)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range functions {
			st, err := os.Stat(bins[f])
			if err != nil || st.Size() > maxBootstrap {
				t.Errorf("bootstrap %s (%s): %v, %d bytes (goal ≤ %d)", f, arch, err, st.Size(), maxBootstrap)
			}
		}
	}
}

// Every function's real bootstrap, built as for Lambda, runs under the
// emulator with its template environment against a fresh demo world, and
// answers every event of events/ as the golden file says. Its DynamoDB and
// S3 calls, seen by proxies in front of the local servers, must be what its
// permissions file declares and what template.yaml grants.
func TestEventsThroughEmulator(t *testing.T) {
	root, rieBin := setup(t)
	tmpl, err := sam.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byFunction := eventsByFunction(t, root)
	folders := make([]string, 0, len(byFunction))
	dirs, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		folders = append(folders, d.Name())
	}
	start := time.Now()
	bins, err := rie.BuildFunctions(context.Background(), root, t.TempDir(), "", folders...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d bootstraps in %v", len(bins), time.Since(start).Round(time.Millisecond))

	for _, folder := range folders {
		t.Run(folder, func(t *testing.T) {
			f, ok := tmpl.Function(folder)
			if !ok {
				t.Fatalf("functions/%s has no function in template.yaml: no route reaches it", folder)
			}
			if fn, _ := api.Named(folder); fn.Route().Stream {
				t.Skip("a stream function takes no API Gateway event: shared/api's cleanup tests run it against the local stack")
			}
			files := byFunction[folder]
			if len(files) == 0 {
				t.Fatalf("functions/%s has no event in events/", folder)
			}
			declared, err := agreement.Declared(filepath.Join(root, "functions"), folder)
			if err != nil {
				t.Fatalf("no declared permissions: %v", err)
			}
			granted, errs := agreement.Granted(tmpl, f)
			for _, err := range errs {
				t.Error(err)
			}
			calls := runEvents(t, rieBin, bins[folder], f, files)
			used := map[agreement.Permission]bool{}
			for _, c := range calls {
				if !agreement.Allows(declared, c) {
					t.Errorf("the code calls %s, which functions/%s/permissions does not declare", c, folder)
				}
				if !agreement.Allows(granted, c) {
					t.Errorf("the code calls %s, which template.yaml does not grant %s", c, f.LogicalID)
				}
				for _, d := range declared {
					if agreement.Allows([]agreement.Permission{d}, c) {
						used[d] = true
					}
				}
			}
			unobserved, err := agreement.Unobserved(filepath.Join(root, "functions"), folder)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range declared {
				if why, ok := unobserved[d]; ok {
					t.Logf("%s: %s not observed: %s", folder, d, why)
				} else if !used[d] {
					t.Errorf("functions/%s/permissions declares %s, which no event exercises: add an event, drop it, or say why no call can show it (# unobserved: ...)", folder, d)
				}
			}
		})
	}
}

// runEvents sends the events of one function, in file name order, to its
// bootstrap under the emulator against a fresh world, compares each answer
// with its golden file and returns the DynamoDB and S3 calls made.
func runEvents(t *testing.T, rieBin, bootstrap string, f *sam.Function, files []string) []agreement.Permission {
	env := testenv.New(t)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: func() time.Time { return fixedNow }}
	if _, err := im.Import(context.Background(), demo.Seed(40)); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{env.Table: "table", env.Bucket: "bucket"}
	ddb := newRecorder(t, *env.DynamoDB.Options().BaseEndpoint, false, names)
	s3 := newRecorder(t, env.S3URL, true, names)
	base := localaws.LocalEnv(ddb.URL, s3.URL, env.Table, env.Bucket)
	base[config.FixedTimeEnv] = fixedNow.Format(time.RFC3339)
	em, err := rie.NewEmulator(f, rie.PoolOptions{Bootstraps: map[string]string{f.Folder: bootstrap},
		Refs: rie.StackRefs(env.Table, env.Bucket), Base: base})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	if err := em.Start(rieBin, &syncWriter{w: &logs}); err != nil {
		t.Fatal(err)
	}
	defer em.Stop()
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		payload, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := em.InvokePayload(context.Background(), payload)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, err := golden.Read(golden.Path(filepath.Join(filepath.Dir(file), "..", "shared", "api", "testdata", "events"), file))
		if err != nil {
			t.Errorf("%s: no golden response: %v", name, err)
			continue
		}
		for _, d := range golden.Diff(golden.From(resp), want) {
			t.Errorf("%s: %s", name, d)
		}
	}
	em.Stop()
	if t.Failed() {
		t.Logf("function output:\n%s", logs.String())
	}
	return append(ddb.take(), s3.take()...)
}

// eventsByFunction groups events/*.json by function folder, in file name order.
func eventsByFunction(t *testing.T, root string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no events", err)
	}
	sort.Strings(files)
	out := map[string][]string{}
	for _, file := range files {
		fn := string(agreement.FunctionOf(file, api.Functions()))
		if fn == "" {
			t.Errorf("%s names no function", file)
			continue
		}
		out[fn] = append(out[fn], file)
	}
	return out
}
