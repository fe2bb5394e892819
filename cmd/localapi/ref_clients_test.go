package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// systemPython runs python-gitlab as Debian installs it (apt-get install
// python3-gitlab): for the system's Python, whatever python3 a PATH names.
const systemPython = "/usr/bin/python3"

// listByRef is python-gitlab listing a project's jobs of one ref with an
// iterator (offset pages, or keyset with pagination=keyset), following the
// Link headers to the end; it prints the ids and refs it got as JSON.
const listByRef = `import json, sys, gitlab
url, token, project, ref, mode = sys.argv[1:6]
gl = gitlab.Gitlab(url, private_token=token, timeout=30)
p = gl.projects.get(project, lazy=True)
kw = {"ref": ref, "iterator": True, "per_page": 7}
if mode == "keyset":
    kw.update(pagination="keyset", order_by="id", sort="desc")
print(json.dumps([[j.id, j.ref] for j in p.jobs.list(**kw)]))
`

// python-gitlab's project.jobs.list(ref=…, iterator=True) walks exactly the
// ref's builds, newest first, by offset and by keyset pages, for a ref with
// a slash (sent encoded) and by the project's path.
func TestPythonGitlabJobsByRef(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(60)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	instance := strings.TrimSuffix(serveExternal(t, env), "/api/v4")
	for _, ref := range []string{"feature/login", "main"} {
		var want []int64
		for _, raw := range w.Jobs {
			var j struct {
				ID        int64           `json:"id"`
				ProjectID int64           `json:"project_id"`
				Ref       string          `json:"ref"`
				Bridge    json.RawMessage `json:"downstream_pipeline"`
			}
			if err := json.Unmarshal(raw, &j); err != nil {
				t.Fatal(err)
			}
			if j.ProjectID == 1 && j.Bridge == nil && j.Ref == ref {
				want = append(want, j.ID)
			}
		}
		slices.SortFunc(want, func(a, b int64) int { return int(b - a) })
		for _, mode := range []string{"offset", "keyset"} {
			out, err := exec.Command(systemPython, "-c", listByRef, instance, demo.TokenReporter, "demo/backend", ref, mode).Output()
			if err != nil {
				t.Fatalf("%s %s: %v %s", ref, mode, err, stderr(err))
			}
			var rows [][2]any
			if err := json.Unmarshal(out, &rows); err != nil {
				t.Fatalf("%s %s: %v: %s", ref, mode, err, out)
			}
			var got []int64
			for _, r := range rows {
				if r[1] != ref {
					t.Errorf("%s %s: job %v of ref %v", ref, mode, r[0], r[1])
				}
				got = append(got, int64(r[0].(float64)))
			}
			if len(want) < 8 || !slices.Equal(got, want) {
				t.Errorf("%s %s: python-gitlab got %v, want %v (more than a page)", ref, mode, got, want)
			}
		}
	}
}

// stderr is what a failed command wrote to its standard error.
func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
