package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// pageHeaderNames are the headers a 304 must keep from its 200.
var pageHeaderNames = []string{"Link", "X-Page", "X-Per-Page", "X-Next-Page", "X-Prev-Page", "X-Total",
	"X-Total-Pages", "X-Next-Cursor"}

// Every JSON read answers with a strong entity tag; the same request with
// If-None-Match (strong or weak form, alone or in a list) is a 304 with no
// body, the pagination headers and the same store calls as the 200; a tag
// that is not current gets the 200.
func TestNotModified(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	tests := []struct {
		name, function, target string
		header                 map[string]string
	}{
		{"job", "get-job", "/api/v4/projects/1/jobs/42", m},
		{"running job", "get-job", "/api/v4/projects/1/jobs/7", m},
		{"project jobs", "list-project-jobs", "/api/v4/projects/1/jobs?per_page=5&page=2", m},
		{"project jobs, scoped", "list-project-jobs", "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed", m},
		{"project jobs, keyset", "list-project-jobs", "/api/v4/projects/demo%2Fbackend/jobs?pagination=keyset&per_page=3", m},
		{"pipeline jobs", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?per_page=3&page=2", m},
		{"pipeline jobs, keyset", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?pagination=keyset&per_page=3", m},
		{"pipeline bridges", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1001/bridges", m},
		{"job of the token", "get-job-by-token", "/api/v4/job", map[string]string{"JOB-TOKEN": demo.JobTokenRunning}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Warm the container's caches first, so that the 200 and the
			// 304 compared below meet the same caches.
			d.call(t, tc.function, http.MethodGet, tc.target, tc.header)
			d.Counter.Reset()
			first := d.call(t, tc.function, http.MethodGet, tc.target, tc.header)
			calls200 := d.Counter.Calls()
			tag := first.Header().Get("ETag")
			if first.Code != 200 || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 10 {
				t.Fatalf("200 with a strong tag: got %d, ETag %q", first.Code, tag)
			}
			for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag} {
				d.Counter.Reset()
				w := d.call(t, tc.function, http.MethodGet, tc.target, with(tc.header, "If-None-Match", inm))
				if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("ETag") != tag {
					t.Fatalf("If-None-Match %s: %d %q ETag %q", inm, w.Code, w.Body, w.Header().Get("ETag"))
				}
				if got := d.Counter.Calls(); fmt.Sprint(got) != fmt.Sprint(calls200) {
					t.Errorf("304 calls %v, 200 calls %v", got, calls200)
				}
				for _, k := range pageHeaderNames {
					if w.Header().Get(k) != first.Header().Get(k) {
						t.Errorf("304 %s = %q, 200 had %q", k, w.Header().Get(k), first.Header().Get(k))
					}
				}
				if _, ok := w.Header()["X-Request-Id"]; !ok || w.Header().Get("Content-Type") != "" {
					t.Errorf("304 headers %v: want X-Request-Id and no Content-Type", w.Header())
				}
			}
			w := d.call(t, tc.function, http.MethodGet, tc.target, with(tc.header, "If-None-Match", `"stale"`))
			if w.Code != 200 || w.Body.String() != first.Body.String() || w.Header().Get("ETag") != tag {
				t.Errorf("stale tag: %d, same body %v, ETag %q", w.Code, w.Body.String() == first.Body.String(), w.Header().Get("ETag"))
			}
			w = d.call(t, tc.function, http.MethodHead, tc.target, with(tc.header, "If-None-Match", tag))
			if w.Code != http.StatusNotModified {
				t.Errorf("HEAD with the tag: %d", w.Code)
			}
		})
	}
}

// The tag changes exactly when the body does: an action on a job changes
// the job's and its lists' tags; a running job's durations grow with the
// clock, so its tag does too, while a finished job's stays.
func TestEntityTagFollowsTheBody(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	tagOf := func(function, target string) (string, string) {
		w := d.call(t, function, http.MethodGet, target, m)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
		return w.Header().Get("ETag"), w.Body.String()
	}
	targets := []struct{ function, target string }{
		{"get-job", "/api/v4/projects/1/jobs/7"},
		{"list-project-jobs", "/api/v4/projects/1/jobs?per_page=100"},
		{"list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs"},
	}
	before := map[string]string{}
	for _, tg := range targets {
		tag, body := tagOf(tg.function, tg.target)
		again, same := tagOf(tg.function, tg.target)
		if tag != again || body != same {
			t.Fatalf("%s: two reads, tags %s and %s", tg.target, tag, again)
		}
		before[tg.target] = tag
	}
	finished, _ := tagOf("get-job", "/api/v4/projects/1/jobs/42")
	d.Deps.Now = func() time.Time { return fixedNow.Add(time.Minute) }
	if tag, _ := tagOf("get-job", "/api/v4/projects/1/jobs/7"); tag == before["/api/v4/projects/1/jobs/7"] {
		t.Error("a running job's tag did not change with its duration")
	}
	if tag, _ := tagOf("get-job", "/api/v4/projects/1/jobs/42"); tag != finished {
		t.Error("a finished job's tag changed with the clock")
	}
	d.Deps.Now = func() time.Time { return fixedNow }
	if w := d.call(t, "cancel-job", http.MethodPost, "/api/v4/projects/1/jobs/7/cancel", m); w.Code != 201 {
		t.Fatalf("cancel: %d %s", w.Code, w.Body)
	}
	for _, tg := range targets {
		if tag, _ := tagOf(tg.function, tg.target); tag == before[tg.target] {
			t.Errorf("%s: tag unchanged after the job was canceled", tg.target)
		}
	}
}

// with is header plus one more field.
func with(header map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range header {
		out[hk] = hv
	}
	return out
}
