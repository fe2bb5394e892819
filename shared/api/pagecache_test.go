package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// A page served from the page cache is still answered per caller: each
// request authorizes with its own credentials first (a caller who may not
// read the project gets its 404, one without credentials its 401, even while
// the page is cached), its entity
// tag is the one of the bytes sent (a repeat with it is a 304), and an
// action in the same container shows on the next page at once.
func TestPageCacheIsPerCallerAndTagged(t *testing.T) {
	d := newDemo(t, 200)
	d.Deps.Now = time.Now
	const target = "/api/v4/projects/1/jobs"
	first := d.call(t, "list-project-jobs", http.MethodGet, target, token(demo.TokenMaintainer))
	tag := first.Header().Get("ETag")
	if first.Code != 200 || tag == "" {
		t.Fatalf("page 1: %d, tag %q", first.Code, tag)
	}
	rows := decode[[]jobRow](t, first.Body)
	for _, tc := range []struct {
		name   string
		header map[string]string
		code   int
		calls  string
	}{
		{"same tag: 304 from the cache", map[string]string{"PRIVATE-TOKEN": demo.TokenMaintainer, "If-None-Match": tag}, 304, "map[]"},
		{"another member: 200 from the cache", token(demo.TokenReporter), 200, fmt.Sprint(map[string]int{"BatchGetItem": 2})},
		{"a non-member: 404", token(demo.TokenOutsider), 404, fmt.Sprint(map[string]int{"BatchGetItem": 2})},
		{"anonymous: 401", nil, 401, "map[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.Counter.Reset()
			w := d.call(t, "list-project-jobs", http.MethodGet, target, tc.header)
			if w.Code != tc.code {
				t.Fatalf("%d %.200s, want %d", w.Code, w.Body, tc.code)
			}
			if got := fmt.Sprint(d.Counter.Calls()); got != tc.calls {
				t.Errorf("calls %s, want %s (no Query: the page is cached)", got, tc.calls)
			}
			if tc.code == 200 && w.Header().Get("ETag") != tag {
				t.Errorf("tag %q, want %q: the same bytes", w.Header().Get("ETag"), tag)
			}
		})
	}
	i := slices.IndexFunc(rows, func(r jobRow) bool { return jobs.Status(r.Status).Cancelable() })
	if i < 0 {
		t.Fatalf("no cancelable job on page 1: %v", rows)
	}
	if w := d.call(t, "cancel-job", http.MethodPost, fmt.Sprintf("/api/v4/projects/1/jobs/%d/cancel", rows[i].ID),
		token(demo.TokenMaintainer)); w.Code != 201 {
		t.Fatalf("cancel: %d %.200s", w.Code, w.Body)
	}
	w := d.call(t, "list-project-jobs", http.MethodGet, target,
		map[string]string{"PRIVATE-TOKEN": demo.TokenMaintainer, "If-None-Match": tag})
	if w.Code != 200 || w.Header().Get("ETag") == tag {
		t.Fatalf("after the cancel: %d, tag %q (was %q)", w.Code, w.Header().Get("ETag"), tag)
	}
	if after := decode[[]jobRow](t, w.Body); after[i].ID != rows[i].ID || after[i].Status == rows[i].Status {
		t.Errorf("after the cancel: %v, was %v", after[i], rows[i])
	}
}
