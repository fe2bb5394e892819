package rie_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/gateway"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

// A function that errors, panics or times out under the emulator answers
// as an HTTP API does (500 {"message":"Internal Server Error"}), and the
// next invoke of the same function succeeds, as on Lambda.
func TestFunctionFailuresAsHTTPAPI(t *testing.T) {
	root, rieBin := setup(t)
	bins, err := rie.Build(context.Background(), root, t.TempDir(), "", "./shared/tools/rie/testdata/faulty")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &sam.Template{Functions: []sam.Function{{LogicalID: "FaultyFunction", Folder: "faulty", Timeout: 1,
		Routes: []sam.Route{{Method: "GET", Path: "/{what}"}}}}}
	var logs strings.Builder
	pool, err := rie.StartPool(tmpl, rie.PoolOptions{RIE: rieBin, Out: &syncWriter{w: &logs},
		Bootstraps: map[string]string{"faulty": bins["./shared/tools/rie/testdata/faulty"]}})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Stop()
	srv := httptest.NewServer(gateway.Handler(gateway.NewRouter(tmpl), pool.Invoke))
	defer srv.Close()

	const internal = `{"message":"Internal Server Error"}`
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/ok", 200, ""},
		{"/error", 500, internal},
		{"/ok", 200, ""},
		{"/panic", 500, internal},
		{"/ok", 200, ""},
		{"/sleep", 500, internal},
		{"/ok", 200, ""},
		{"/a/b", 404, `{"message":"Not Found"}`}, // no route and no $default
	} {
		status, body := get(t, srv.URL+c.path)
		if status != c.status || (c.body != "" && body != c.body) {
			t.Errorf("GET %s = %d %s, want %d %s", c.path, status, body, c.status, c.body)
		}
	}
	if !strings.Contains(logs.String(), "Task timed out after 1.00 seconds") && !strings.Contains(logs.String(), "Duration: 1000") {
		t.Errorf("the emulator did not report the timeout:\n%s", logs.String())
	}

	// Concurrent requests are serialized: one emulator never sees two invokes.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if status, body := get(t, srv.URL+"/ok"); status != 200 {
				t.Errorf("concurrent GET /ok = %d %s", status, body)
			}
		})
	}
	wg.Wait()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// setup finds the module root and the emulator, installing it if needed.
func setup(t *testing.T) (root, rieBin string) {
	t.Helper()
	testenv.Slow(t)
	root, err := localaws.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if rieBin, err = rie.Install(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "template.yaml")); err != nil {
		t.Fatal(err)
	}
	return root, rieBin
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
