package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
)

// A logical id or a folder builds that folder into out/bootstrap; -all
// builds every folder into its own subfolder.
func TestPlan(t *testing.T) {
	root, err := localaws.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"GetJobTraceFunction", "get-job-trace"} {
		got, err := plan(root, "/a", "arm64", false, []string{name})
		if err != nil || len(got) != 1 || got[0] != (build{"get-job-trace", "/a/bootstrap"}) {
			t.Errorf("plan(%s) = %v, %v", name, got, err)
		}
	}
	for _, bad := range [][]string{{"NoSuchFunction"}, {}, {"get-job", "get-job-trace"}} {
		if _, err := plan(root, "/a", "arm64", false, bad); err == nil {
			t.Errorf("plan(%v) builds something", bad)
		}
	}
	all, err := plan(root, "/b", "arm64", true, nil)
	if err != nil || !slices.Contains(all, build{"get-job", filepath.Join("/b", "get-job", "bootstrap")}) {
		t.Errorf("plan(-all) = %v, %v", all, err)
	}
}
