package gateway

import (
	"reflect"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

// Greedy path variables take one or more segments, and only what no full
// match takes; literal segments and exact methods still win.
func TestMatchGreedy(t *testing.T) {
	tmpl := &sam.Template{Functions: []sam.Function{
		{Folder: "file", Routes: []sam.Route{{Method: "ANY", Path: "/p/{p1}/jobs/{job_id}/artifacts/{artifact_path+}"}}},
		{Folder: "archive", Routes: []sam.Route{{Method: "ANY", Path: "/p/{p1}/jobs/{job_id}/artifacts"}}},
		{Folder: "keep", Routes: []sam.Route{{Method: "POST", Path: "/p/{p1}/jobs/{job_id}/artifacts/keep"}}},
		{Folder: "by-ref", Routes: []sam.Route{
			{Method: "ANY", Path: "/p/{p1}/jobs/artifacts/{ref_path+}"},
			{Method: "ANY", Path: "/p/{p1}/{p2}/jobs/artifacts/{ref_path+}"}}},
		{Folder: "not-found", Routes: []sam.Route{{}}},
	}}
	r := NewRouter(tmpl)
	tests := []struct {
		method, path, function string
		params                 map[string]string
	}{
		{"GET", "/p/1/jobs/7/artifacts", "archive", map[string]string{"p1": "1", "job_id": "7"}},
		{"GET", "/p/1/jobs/7/artifacts/a", "file", map[string]string{"p1": "1", "job_id": "7", "artifact_path": "a"}},
		{"GET", "/p/1/jobs/7/artifacts/dir/sub file.txt", "file", map[string]string{"p1": "1", "job_id": "7", "artifact_path": "dir/sub file.txt"}},
		{"POST", "/p/1/jobs/7/artifacts/keep", "keep", map[string]string{"p1": "1", "job_id": "7"}},
		{"GET", "/p/1/jobs/7/artifacts/keep", "file", map[string]string{"p1": "1", "job_id": "7", "artifact_path": "keep"}},
		{"GET", "/p/1/jobs/artifacts/release/2.x/download", "by-ref", map[string]string{"p1": "1", "ref_path": "release/2.x/download"}},
		{"GET", "/p/g/x/jobs/artifacts/main/raw/a/b", "by-ref", map[string]string{"p1": "g", "p2": "x", "ref_path": "main/raw/a/b"}},
		{"GET", "/p/1/jobs/artifacts", "not-found", nil},
	}
	for _, tc := range tests {
		fn, _, params, ok := r.Match(tc.method, tc.path)
		if !ok || fn != tc.function || (tc.params != nil && !reflect.DeepEqual(params, tc.params)) {
			t.Errorf("%s %s: %q %v, want %q %v", tc.method, tc.path, fn, params, tc.function, tc.params)
		}
	}
}
