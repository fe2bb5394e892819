package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is a test stack holding the seeded demo world.
type fixture struct {
	*testenv.Env
	world *world.World
}

// fixedNow is the clock of the tests: after every seeded timestamp.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newDemo(t *testing.T, jobsPerProject int) *fixture {
	t.Helper()
	return newWorld(t, demo.Seed(jobsPerProject))
}

// newShardedDemo is newDemo with every project's build indexes in shards
// write shards.
func newShardedDemo(t *testing.T, jobsPerProject, shards int) *fixture {
	t.Helper()
	w := demo.Seed(jobsPerProject)
	for i := range w.Projects {
		w.Projects[i].Shards = shards
	}
	return newWorld(t, w)
}

// newWorld is a stack with w imported, its clock at fixedNow.
func newWorld(t *testing.T, w *world.World) *fixture {
	t.Helper()
	env := testenv.New(t)
	env.Deps.Now = func() time.Time { return fixedNow }
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: env.Deps.Now}
	if _, err := im.Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	env.Counter.Reset()
	return &fixture{Env: env, world: w}
}

// call serves one request with the named function's handler, as the local
// API does: the path decoded, the query raw.
func (d *fixture) call(t *testing.T, function, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	fn, ok := api.Named(function)
	if !ok {
		t.Fatalf("no function %q", function)
	}
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	fn.Handler(d.Deps).ServeHTTP(w, r)
	return w
}

func token(tok string) map[string]string { return map[string]string{"PRIVATE-TOKEN": tok} }

func decode[T any](t *testing.T, body io.Reader) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("got %q, want it to contain %q", got, want)
	}
}

func deleteInput(bucket, key string) *s3.DeleteObjectInput {
	return &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}
}

func mustProject(t *testing.T, d *fixture) *jobs.Project {
	t.Helper()
	f, err := d.Deps.Store.Lookup(context.Background(), store.Lookup{Project: store.ProjectRef{ID: 1}})
	if err != nil || f.Project == nil {
		t.Fatal("project 1", err)
	}
	return f.Project
}

func rangeOf(limit int) store.Range { return store.Range{Limit: limit} }
