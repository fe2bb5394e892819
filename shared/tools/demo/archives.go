package demo

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing/fstest"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// file is one entry of a demo archive; a name ending in "/" is a directory.
type file struct {
	name   string
	data   string
	stored bool // zip.Store rather than zip.Deflate
}

// archiveFiles are the demo's artifacts archives, by job name: what the
// first job of that name in a project uploads. Each kind of content the
// artifacts routes must serve is there: a build output folder, a JUnit
// report, a nested directory with a unicode name and a large file.
var archiveFiles = map[string][]file{
	"compile": {
		{name: "bin/"},
		{name: "bin/app", data: "\x7fELF\x02\x01\x01demo binary\x00\x01\x02", stored: true},
		{name: "dist/index.html", data: "<!doctype html><h1>demo</h1>\n"},
		{name: "dist/config.json", data: "{\"env\":\"staging\"}\n"},
	},
	"unit": {
		{name: "junit.xml", data: `<testsuites tests="2" failures="0"><testsuite name="unit" tests="2">` +
			`<testcase classname="api" name="TestGetJob"/><testcase classname="api" name="TestTrace"/>` +
			"</testsuite></testsuites>\n"},
		{name: "coverage/cover.out", data: "mode: set\nshared/api/job.go:10.2,12.3 2 1\n"},
	},
	"integration": {
		{name: "reports/"},
		{name: "reports/a/b/c/deep.txt", data: "four levels down\n"},
		{name: "reports/résumé ✓.txt", data: "unicode names survive\n"},
	},
	"docker-image": {
		{name: "image/layer.tar", data: strings.Repeat("\x00", 256<<10)},
	},
	"lint": {
		{name: "lint-report.txt", data: "0 problems\n"},
	},
}

// archiveAccess are the artifacts:access settings of the demo archives that
// have one (absent: everyone who may read the job).
var archiveAccess = map[string]string{"lint": "developer"}

// archive builds a demo zip of exactly size bytes, the size the job's
// artifacts_file shows: the archive comment pads it.
func archive(files []file, size int) []byte {
	build := func(comment string) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for _, f := range files {
			h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: seedEpoch}
			// Unix modes, as the runner's archiver writes them.
			h.SetMode(0o644)
			if f.stored || strings.HasSuffix(f.name, "/") {
				h.Method = zip.Store
			}
			if strings.HasSuffix(f.name, "/") {
				h.SetMode(fs.ModeDir | 0o755)
			}
			w, err := zw.CreateHeader(h)
			if err != nil {
				panic(err)
			}
			if _, err := w.Write([]byte(f.data)); err != nil {
				panic(err)
			}
		}
		if err := zw.SetComment(comment); err != nil {
			panic(err)
		}
		if err := zw.Close(); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	bare := build("")
	if len(bare) > size || size-len(bare) > 0xffff {
		panic(fmt.Sprintf("demo archive of %d bytes cannot be padded to %d", len(bare), size))
	}
	return build(strings.Repeat(" ", size-len(bare)))
}

// addArchives gives zips to the builds of the newest pipeline of each ref
// of the backend and the website, the pipelines whose artifacts are locked
// (kept past their expiry) and that the by-ref downloads read: each build
// with artifacts whose name has demo files. Rendered fields stay as they
// were: the zips have the sizes the jobs show, and artifacts_archive and
// artifacts_access are import-only keys.
func addArchives(w *world.World) {
	archives := fstest.MapFS{}
	w.Dir = archives
	type ref struct {
		project int64
		ref     string
	}
	newest := map[ref]int64{}
	for i := len(w.Jobs) - 1; i >= 0; i-- {
		var j struct {
			ID        int64               `json:"id"`
			ProjectID int64               `json:"project_id"`
			Name      string              `json:"name"`
			Ref       string              `json:"ref"`
			Retried   bool                `json:"retried"`
			Pipeline  struct{ ID int64 }  `json:"pipeline"`
			File      *struct{ Size int } `json:"artifacts_file"`
		}
		if err := json.Unmarshal(w.Jobs[i], &j); err != nil {
			panic(err)
		}
		k := ref{j.ProjectID, j.Ref}
		if j.ProjectID == ProjectFrontend {
			continue
		}
		if newest[k] == 0 {
			newest[k] = j.Pipeline.ID
		}
		files, ok := archiveFiles[j.Name]
		if !ok || j.File == nil || j.Retried || j.Pipeline.ID != newest[k] {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(w.Jobs[i], &doc); err != nil {
			panic(err)
		}
		path := fmt.Sprintf("artifacts/%d.zip", j.ID)
		archives[path] = &fstest.MapFile{Data: archive(files, j.File.Size)}
		doc["artifacts_archive"] = path
		if a := archiveAccess[j.Name]; a != "" {
			doc["artifacts_access"] = a
		}
		w.Jobs[i] = mustJSON(doc)
	}
}
