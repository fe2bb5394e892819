package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// A real GitLab client against the local API (the gateway emulation in
// front of the in-process functions, S3 behind the redirects): client-go's
// artifact calls get the bytes that were imported.
func TestClientGoArtifacts(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(40)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	api := serveExternal(t, env)
	client := func(tok string) *gitlab.Client {
		c, err := gitlab.NewClient(tok, gitlab.WithBaseURL(api))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	reporter := client(demo.TokenReporter)
	archive := func(name string) []byte {
		b, err := fs.ReadFile(w.Dir, name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	same := func(what string, r *bytes.Reader, err error, want []byte) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, _ := io.ReadAll(r)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, want %d", what, len(got), len(want))
		}
	}

	zip29 := archive("artifacts/29.zip")
	r, _, err := reporter.Jobs.GetJobArtifacts("demo/backend", 29)
	same("GetJobArtifacts", r, err, zip29)
	r, _, err = reporter.Jobs.DownloadArtifactsFile("demo/backend", "main", &gitlab.DownloadArtifactsFileOptions{Job: gitlab.Ptr("compile")})
	same("DownloadArtifactsFile", r, err, zip29)
	r, _, err = reporter.Jobs.DownloadSingleArtifactsFile("demo/backend", 14, "reports/résumé ✓.txt")
	same("DownloadSingleArtifactsFile", r, err, entryOf(t, archive("artifacts/14.zip"), "reports/résumé ✓.txt"))
	r, _, err = reporter.Jobs.DownloadSingleArtifactsFile("demo/backend", 29, "bin/app")
	same("DownloadSingleArtifactsFile, stored binary", r, err, entryOf(t, zip29, "bin/app"))
	r, _, err = client(demo.TokenGuest).Jobs.DownloadSingleArtifactsFileByTagOrBranch("demo/website", "feature/login", "dist/config.json",
		&gitlab.DownloadArtifactsFileOptions{Job: gitlab.Ptr("compile")})
	same("DownloadSingleArtifactsFileByTagOrBranch", r, err, entryOf(t, archive("artifacts/75.zip"), "dist/config.json"))

	// curl --location and python's requests follow the redirect to S3 too,
	// as CI scripts use them (the token header stays on our host: curl
	// drops it on another host, requests on another origin).
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"curl --location", []string{"curl", "-sSf", "--location", "-H", "PRIVATE-TOKEN: " + demo.TokenReporter,
			api + "/projects/demo%2Fbackend/jobs/29/artifacts"}},
		{"python requests", []string{"python3", "-c", `import sys, requests
r = requests.get(sys.argv[1], headers={"PRIVATE-TOKEN": sys.argv[2]}, timeout=30)
r.raise_for_status()
sys.stdout.buffer.write(r.content)`, api + "/projects/1/jobs/artifacts/main/download?job=compile", demo.TokenReporter}},
	} {
		out, err := exec.Command(c.argv[0], c.argv[1:]...).Output()
		same(c.name, bytes.NewReader(out), err, zip29)
	}

	if _, _, err := reporter.Jobs.DownloadSingleArtifactsFile("demo/backend", 29, "nope"); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("missing entry: %v, want ErrNotFound", err)
	}
	maintainer := client(demo.TokenMaintainer)
	if _, _, err := maintainer.Jobs.KeepArtifacts("demo/backend", 29); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("keep of expired artifacts: %v, want ErrNotFound", err)
	}
	if _, err := maintainer.Jobs.DeleteArtifacts("demo/backend", 29); err != nil {
		t.Fatalf("DeleteArtifacts: %v", err)
	}
	if _, _, err := reporter.Jobs.GetJobArtifacts("demo/backend", 29); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("archive after delete: %v, want ErrNotFound", err)
	}
}

// entryOf is one entry of a zip, decoded.
func entryOf(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
