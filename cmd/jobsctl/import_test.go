package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

// A real jobsctl import killed (SIGKILL, by its pid) once its checkpoint
// records a written batch continues from there when run again, and leaves
// the table and the bucket as an uninterrupted import does, whatever its
// batch calls at a time (-calls).
func TestImportResumesAfterKill(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "jobsctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	doc := filepath.Join(dir, "world.json")
	f, err := os.Create(doc)
	if err != nil {
		t.Fatal(err)
	}
	const jobs = 3000
	if err := demo.Bulk(f, jobs, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	importInto := func(env *testenv.Env, flags ...string) *exec.Cmd {
		cmd := exec.Command(bin, append(append([]string{"import"}, flags...), doc)...)
		cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_DYNAMODB="+env.DynamoURL, "AWS_ENDPOINT_URL_S3="+env.S3URL,
			"S3_FORCE_PATH_STYLE=true", "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_REQUEST_CHECKSUM_CALCULATION=when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION=when_required",
			"JOBS_TABLE="+env.Table, "ARTIFACTS_BUCKET="+env.Bucket)
		return cmd
	}
	killed, whole := testenv.New(t), testenv.New(t)
	cmd := importInto(killed)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	next := doc + ".checkpoint.next"
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(next); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after 3 minutes:\n%s", stderr.String())
		}
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || strings.Contains(stderr.String(), "imported") {
		t.Fatalf("the import finished before it was killed:\n%s", stderr.String())
	}
	b, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	var at struct{ Index int }
	if err := json.Unmarshal(b, &at); err != nil || at.Index <= 0 || at.Index >= jobs {
		t.Fatalf("checkpoint %s: %v", b, err)
	}
	// Resumed with twice the batch calls at a time: the same items.
	out, err := importInto(killed, "-calls", "8").CombinedOutput()
	if err != nil {
		t.Fatalf("resumed import: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "write") || strings.Contains(string(out), "\ncheck") {
		t.Errorf("the resumed import did not skip the check pass:\n%s", out)
	}
	for _, p := range []string{doc + ".checkpoint", next} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after the import", p)
		}
	}
	if out, err := importInto(whole).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted import: %v\n%s", err, out)
	}
	// A pending job's queued_at (in L) is the import's clock less its queued_duration: the two imports ran apart.
	got, want := withoutQueuedAt(killed.Dump(t)), withoutQueuedAt(whole.Dump(t))
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("killed and resumed, item %d:\n%.600s\nuninterrupted:\n%.600s", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Errorf("killed and resumed: %d items; uninterrupted: %d", len(got), len(want))
	}
	if a, b := objects(t, killed), objects(t, whole); a != b || a == 0 {
		t.Errorf("%d objects in the bucket, %d uninterrupted", a, b)
	}
}

var queuedAt = regexp.MustCompile(`"QueuedAt":"[^"]*",`)

func withoutQueuedAt(items []string) []string {
	for i, it := range items {
		items[i] = queuedAt.ReplaceAllString(it, "")
	}
	return items
}

func objects(t *testing.T, env *testenv.Env) int {
	n := 0
	p := s3.NewListObjectsV2Paginator(env.S3, &s3.ListObjectsV2Input{Bucket: aws.String(env.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	return n
}
