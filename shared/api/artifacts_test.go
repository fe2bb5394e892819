package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// Archives of the demo world (Seed(40)): the newest pipeline of each ref
// has them, locked and past their expiry at fixedNow.
const (
	archiveMain    = 29 // demo/backend, main (protected), compile: bin/, dist/
	archiveFix     = 14 // demo/backend, fix/cache, integration: reports/ with a unicode name
	archiveWebsite = 75 // demo/website (public), feature/login, compile
	archiveDevOnly = 79 // demo/website, lint, artifacts_access developer
	noArchiveFile  = 3  // demo/backend: shows artifacts_file, but no zip was uploaded
)

const (
	projectAbsentBody = `{"message":"404 Project Not Found"}`
	recordAbsentBody  = `{"message":"404 Not found"}`
	fileAbsentBody    = `{"message":"404 Not Found"}`
	forbiddenBody     = `{"message":"403 Forbidden"}`
	entryAbsentBody   = "404 page not found\n"
)

func jobTokenHeader(tok string) map[string]string { return map[string]string{"JOB-TOKEN": tok} }

// The archive route's order of checks and who may download, over roles,
// visibility, public_builds, access settings and job tokens; a 302 points
// at the one object.
func TestArtifactsArchiveAccess(t *testing.T) {
	d := newDemo(t, 40)
	r, m, g := token(demo.TokenReporter), token(demo.TokenMaintainer), token(demo.TokenGuest)
	tests := []struct {
		name   string
		target string
		header map[string]string
		status int
		body   string
	}{
		{"reporter", "1/jobs/29/artifacts", r, 302, ""},
		{"guest, public pipelines", "1/jobs/29/artifacts", g, 302, ""},
		{"anonymous, private project", "1/jobs/29/artifacts", nil, 404, projectAbsentBody},
		{"non-member, private project", "1/jobs/29/artifacts", token(demo.TokenOutsider), 404, projectAbsentBody},
		{"read_api scope is enough", "1/jobs/29/artifacts", token(demo.TokenReadAPI), 302, ""},
		{"expired token", "1/jobs/29/artifacts", token(demo.TokenExpired), 401, ""},
		{"oauth bearer", "1/jobs/29/artifacts", map[string]string{"Authorization": "Bearer " + demo.TokenReporter}, 302, ""},
		{"job token header", "1/jobs/29/artifacts", jobTokenHeader(demo.JobTokenRunning), 302, ""},
		{"job token param", "1/jobs/29/artifacts?job_token=" + demo.JobTokenRunning, nil, 302, ""},
		{"finished job's token", "1/jobs/29/artifacts", jobTokenHeader(demo.JobTokenFinished), 401, ""},
		{"job token of another project", "3/jobs/75/artifacts", jobTokenHeader(demo.JobTokenRunning), 403,
			`{"message":"403 Forbidden - Authentication by CI/CD job token not allowed from demo/backend to project #3."}`},
		{"anonymous, public project", "demo%2Fwebsite/jobs/75/artifacts", nil, 302, ""},
		{"developer-only artifacts, anonymous", "3/jobs/79/artifacts", nil, 403, forbiddenBody},
		{"developer-only artifacts, non-member", "3/jobs/79/artifacts", token(demo.TokenDeveloper), 403, forbiddenBody},
		{"developer-only artifacts, maintainer", "3/jobs/79/artifacts", m, 302, ""},
		{"guest, pipelines for members only", "2/jobs/90/artifacts", g, 403, forbiddenBody},
		{"unknown job", "1/jobs/999999/artifacts", r, 404, recordAbsentBody},
		{"another project's job", "1/jobs/75/artifacts", r, 404, recordAbsentBody},
		{"bridge", "1/jobs/10/artifacts", r, 404, recordAbsentBody},
		{"job id not an integer", "1/jobs/x/artifacts", r, 400, `{"error":"job_id is invalid"}`},
		{"no artifacts", "1/jobs/7/artifacts", r, 404, fileAbsentBody},
		{"the job token's own job", "1/jobs/7/artifacts", jobTokenHeader(demo.JobTokenRunning), 404, fileAbsentBody},
		{"row without its file", "1/jobs/3/artifacts", r, 404, fileAbsentBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.Counter.Reset()
			w := d.call(t, "get-job-artifacts", http.MethodGet, "/api/v4/projects/"+strings.ReplaceAll(tc.target, "%2F", "/"), tc.header)
			// The counter sees a presign as a GetObject (it runs the SDK's
			// middleware), though signing sends nothing: at most that one.
			if c := d.Counter.Calls(); c["GetObject"] > 1 || c["BatchGetItem"] > 2 || len(c) > 2 {
				t.Errorf("calls %v: want the lookup's BatchGetItems and the presign only", c)
			}
			if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, tc.status, tc.body)
			}
			if tc.status == 302 && !strings.Contains(w.Header().Get("Location"), "/artifacts/archive.zip?") {
				t.Errorf("Location %q", w.Header().Get("Location"))
			}
		})
	}
}

// The presigned URL serves the imported zip byte for byte, with GitLab's
// Content-Disposition; a HEAD gets a HEAD URL (S3 checks the signed method,
// the local S3 emulator does not, so only the HEAD itself is tried here).
func TestArtifactsArchiveDownload(t *testing.T) {
	d := newDemo(t, 40)
	want, err := fs.ReadFile(d.world.Dir, "artifacts/29.zip")
	if err != nil {
		t.Fatal(err)
	}
	w := d.call(t, "get-job-artifacts", http.MethodGet, "/api/v4/projects/1/jobs/29/artifacts", token(demo.TokenReporter))
	res, err := http.Get(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("presigned GET: %d, %d bytes, want %d", res.StatusCode, len(body), len(want))
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="artifacts.zip"; filename*=UTF-8''artifacts.zip` {
		t.Errorf("Content-Disposition %q", cd)
	}
	head := d.call(t, "get-job-artifacts", http.MethodHead, "/api/v4/projects/1/jobs/29/artifacts", token(demo.TokenReporter))
	if head.Code != 302 || head.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %q", head.Code, head.Body)
	}
	req, _ := http.NewRequest(http.MethodHead, head.Header().Get("Location"), nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("presigned HEAD: %v %v", res, err)
	}
}

// One file out of the archive, as Workhorse serves it, with at most two
// ranged reads of a small archive (its tail holds it all) and none of the
// whole archive of a large one (TestArtifactsLargeArchive).
func TestArtifactsSingleFile(t *testing.T) {
	d := newDemo(t, 40)
	r := token(demo.TokenReporter)
	tests := []struct {
		name, target string
		header       map[string]string
		status       int
		body, ctype  string
		disposition  string
	}{
		{"deflated json", "1/jobs/29/artifacts/dist/config.json", r, 200, "{\"env\":\"staging\"}\n", "application/json", `attachment; filename="config.json"`},
		{"stored binary", "1/jobs/29/artifacts/bin/app", r, 200, "\x7fELF\x02\x01\x01demo binary\x00\x01\x02", "application/octet-stream", `attachment; filename="app"`},
		{"html by extension", "1/jobs/29/artifacts/dist/index.html", r, 200, "<!doctype html><h1>demo</h1>\n", "text/html; charset=utf-8", `attachment; filename="index.html"`},
		{"nested", "1/jobs/14/artifacts/reports/a/b/c/deep.txt", r, 200, "four levels down\n", "text/plain; charset=utf-8", `attachment; filename="deep.txt"`},
		{"unicode name", "1/jobs/14/artifacts/reports/r%C3%A9sum%C3%A9%20%E2%9C%93.txt", r, 200, "unicode names survive\n", "text/plain; charset=utf-8", `attachment; filename="résumé ✓.txt"`},
		{"directory entry", "1/jobs/14/artifacts/reports/", r, 200, "", "application/octet-stream", `attachment; filename="reports"`},
		{"directory without its slash", "1/jobs/14/artifacts/reports", r, 404, entryAbsentBody, "text/plain; charset=utf-8", ""},
		{"missing entry", "1/jobs/29/artifacts/nope.txt", r, 404, entryAbsentBody, "text/plain; charset=utf-8", ""},
		{"case matters", "1/jobs/29/artifacts/DIST/config.json", r, 404, entryAbsentBody, "text/plain; charset=utf-8", ""},
		{"no normalisation of ./", "1/jobs/29/artifacts/./dist/config.json", r, 404, entryAbsentBody, "text/plain; charset=utf-8", ""},
		{"a .. path names no entry", "1/jobs/29/artifacts/dist/../bin/app", r, 404, entryAbsentBody, "text/plain; charset=utf-8", ""},
		{"NUL byte", "1/jobs/29/artifacts/a%00b", r, 400, `{"message":"400 Bad request"}`, "application/json", ""},
		{"not UTF-8", "1/jobs/29/artifacts/a%FFb", r, 400, `{"message":"400 Bad request"}`, "application/json", ""},
		{"anonymous, public project", "3/jobs/75/artifacts/dist/config.json", nil, 200, "{\"env\":\"staging\"}\n", "application/json", `attachment; filename="config.json"`},
		{"developer-only artifacts", "3/jobs/79/artifacts/lint-report.txt", nil, 403, forbiddenBody, "application/json", ""},
		{"anonymous, private project", "1/jobs/29/artifacts/bin/app", nil, 404, projectAbsentBody, "application/json", ""},
		{"guest, pipelines for members only", "2/jobs/90/artifacts/x", token(demo.TokenGuest), 403, forbiddenBody, "application/json", ""},
		{"job token", "1/jobs/29/artifacts/bin/app", jobTokenHeader(demo.JobTokenRunning), 200, "\x7fELF\x02\x01\x01demo binary\x00\x01\x02", "application/octet-stream", `attachment; filename="app"`},
		{"expired, unlocked", "1/jobs/3/artifacts/x", r, 404, fileAbsentBody, "application/json", ""},
		{"no artifacts", "1/jobs/7/artifacts/x", r, 404, fileAbsentBody, "application/json", ""},
		{"unknown job", "1/jobs/999999/artifacts/x", r, 404, recordAbsentBody, "application/json", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.Counter.Reset()
			w := d.call(t, "get-job-artifact-file", http.MethodGet, "/api/v4/projects/"+tc.target, tc.header)
			if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Content-Type") != tc.ctype ||
				w.Header().Get("Content-Disposition") != tc.disposition {
				t.Fatalf("got %d %q %q %q, want %d %q %q %q", w.Code, w.Body, w.Header().Get("Content-Type"),
					w.Header().Get("Content-Disposition"), tc.status, tc.body, tc.ctype, tc.disposition)
			}
			if gets := d.Counter.Calls()["GetObject"]; gets > 2 {
				t.Errorf("%d GetObject calls for one file of a small archive", gets)
			}
		})
	}
}

// A Range is honoured on the decoded entry (GitLab ignores it).
func TestArtifactsSingleFileRange(t *testing.T) {
	d := newDemo(t, 40)
	w := d.call(t, "get-job-artifact-file", http.MethodGet, "/api/v4/projects/1/jobs/14/artifacts/reports/a/b/c/deep.txt",
		map[string]string{"PRIVATE-TOKEN": demo.TokenReporter, "Range": "bytes=5-10"})
	if w.Code != http.StatusPartialContent || w.Body.String() != "levels" {
		t.Fatalf("ranged: %d %q", w.Code, w.Body)
	}
}

// The by-ref routes: the newest successful pipeline of the ref, the job
// by exact name, GitLab's 400 and 404s; raw sniffs the type.
func TestArtifactsByRef(t *testing.T) {
	d := newDemo(t, 40)
	r := token(demo.TokenReporter)
	tests := []struct {
		name, target string
		header       map[string]string
		status       int
		body, ctype  string
	}{
		{"download, ref with a slash", "3/jobs/artifacts/feature/login/download?job=compile", nil, 302, "", ""},
		{"download by the encoded path", "demo/website/jobs/artifacts/feature/login/download?job=compile", nil, 302, "", ""},
		{"raw html is text", "3/jobs/artifacts/feature/login/raw/dist/index.html?job=compile", nil, 200, "<!doctype html><h1>demo</h1>\n", "text/plain; charset=utf-8"},
		{"raw json is text", "3/jobs/artifacts/feature/login/raw/dist/config.json?job=compile", nil, 200, "{\"env\":\"staging\"}\n", "text/plain; charset=utf-8"},
		{"raw binary", "3/jobs/artifacts/feature/login/raw/bin/app?job=compile", nil, 200, "\x7fELF\x02\x01\x01demo binary\x00\x01\x02", "application/octet-stream"},
		{"raw missing entry", "3/jobs/artifacts/feature/login/raw/nope?job=compile", nil, 404, entryAbsentBody, "text/plain; charset=utf-8"},
		{"job is required", "1/jobs/artifacts/main/download", r, 400, `{"error":"job is missing"}`, "application/json"},
		{"job names exactly", "3/jobs/artifacts/feature/login/download?job=Compile", nil, 404, recordAbsentBody, "application/json"},
		{"unknown ref", "1/jobs/artifacts/nope/download?job=compile", r, 404, recordAbsentBody, "application/json"},
		{"a sha is not a ref", "1/jobs/artifacts/HEAD/download?job=compile", r, 404, recordAbsentBody, "application/json"},
		{"the newest pipeline only", "1/jobs/artifacts/main/download?job=unit", r, 404, recordAbsentBody, "application/json"},
		{"search: an older pipeline's job (its zip never uploaded)", "1/jobs/artifacts/main/download?job=unit&search_recent_successful_pipelines=true", r, 404, fileAbsentBody, "application/json"},
		{"search: the newest pipeline first", "1/jobs/artifacts/main/download?job=compile&search_recent_successful_pipelines=1", r, 302, "", ""},
		{"search mode's own 404", "1/jobs/artifacts/nope/download?job=compile&search_recent_successful_pipelines=true", r, 404, `{"message":"404 Job Not Found"}`, "application/json"},
		{"search flag not a boolean", "1/jobs/artifacts/main/download?job=compile&search_recent_successful_pipelines=maybe", r, 400, `{"error":"search_recent_successful_pipelines is invalid"}`, "application/json"},
		{"developer-only artifacts", "3/jobs/artifacts/feature/login/download?job=lint", nil, 403, forbiddenBody, "application/json"},
		{"private project", "1/jobs/artifacts/main/download?job=compile", nil, 404, projectAbsentBody, "application/json"},
		{"guest, pipelines for members only", "2/jobs/artifacts/main/download?job=compile", token(demo.TokenGuest), 403, forbiddenBody, "application/json"},
		{"job token", "1/jobs/artifacts/main/download?job=compile", jobTokenHeader(demo.JobTokenRunning), 302, "", ""},
		{"neither download nor raw", "1/jobs/artifacts/main/other?job=compile", r, 404, `{"error":"404 Not Found"}`, "application/json"},
		{"raw without a path", "1/jobs/artifacts/main/raw/?job=compile", r, 404, `{"error":"404 Not Found"}`, "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.Counter.Reset()
			w := d.call(t, "get-ref-artifacts", http.MethodGet, "/api/v4/projects/"+tc.target, tc.header)
			if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Content-Type") != tc.ctype {
				t.Fatalf("got %d %q %q, want %d %q %q", w.Code, w.Body, w.Header().Get("Content-Type"), tc.status, tc.body, tc.ctype)
			}
			if q, n := d.Counter.Calls()["Query"], d.Counter.Scanned(); q > 1 || n > 1 {
				t.Errorf("%d Queries reading %d items, want at most one reading one", q, n)
			}
			if b := d.Counter.Calls()["BatchGetItem"]; b > 2 {
				t.Errorf("%d BatchGetItem, want at most 2 (the lookup)", b)
			}
		})
	}
}

// customArchive imports the demo world plus a build of demo/backend's
// newest main pipeline with the given zip, and returns its id.
func customArchive(t *testing.T, zipData []byte) (*fixture, int64) {
	t.Helper()
	env := testenv.New(t)
	env.Deps.Now = func() time.Time { return fixedNow }
	w := demo.Seed(1)
	const id = 90001
	w.Dir.(fstest.MapFS)["custom.zip"] = &fstest.MapFile{Data: zipData}
	job := map[string]any{"id": id, "status": "success", "stage": "test", "name": "custom", "ref": "custom-ref",
		"created_at": "2026-01-05T09:00:00.000Z", "started_at": "2026-01-05T09:00:01.000Z",
		"finished_at": "2026-01-05T09:10:00.000Z", "project_id": 1,
		"artifacts_file":    map[string]any{"filename": "artifacts.zip", "size": len(zipData)},
		"artifacts_archive": "custom.zip",
		"pipeline":          map[string]any{"id": 90000, "project_id": 1, "ref": "custom-ref", "status": "success"}}
	raw, _ := json.Marshal(job)
	w.Jobs = append(w.Jobs, raw)
	if _, err := (&world.Importer{Store: env.Deps.Store, Files: env.Files, Now: env.Deps.Now}).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	env.Counter.Reset()
	return &fixture{Env: env, world: w}, id
}

type entry struct {
	name   string
	data   []byte
	stored bool
}

// makeZip writes entries; with zip64, after 70,000 empty ones first: more
// than a zip's 16-bit entry count holds, so the archive needs zip64's end
// records, as a large runner upload does.
func makeZip(t testing.TB, entries []entry, zip64 bool) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	if zip64 {
		for i := range 70000 {
			if _, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("many/%05d", i), Method: zip.Store}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.stored {
			h.Method = zip.Store
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Zip edge cases: zip64 records, a corrupt archive (Workhorse's 500, in
// plain text, never our own), an entry too big for a Lambda response (a
// copy of it behind a presigned URL).
func TestArtifactsZipEdgeCases(t *testing.T) {
	r := token(demo.TokenReporter)
	t.Run("zip64", func(t *testing.T) {
		data := makeZip(t, []entry{{name: "a.txt", data: []byte("zip64 entry\n")}}, true)
		if !bytes.Contains(data, []byte("PK\x06\x06")) {
			t.Fatal("the test archive has no zip64 end record")
		}
		d, id := customArchive(t, data)
		w := d.call(t, "get-job-artifact-file", http.MethodGet, "/api/v4/projects/1/jobs/"+itoa(id)+"/artifacts/a.txt", r)
		if w.Code != 200 || w.Body.String() != "zip64 entry\n" {
			t.Fatalf("zip64: %d %q", w.Code, w.Body)
		}
	})
	t.Run("corrupt archive", func(t *testing.T) {
		d, id := customArchive(t, []byte("this is not a zip at all"))
		w := d.call(t, "get-job-artifact-file", http.MethodGet, "/api/v4/projects/1/jobs/"+itoa(id)+"/artifacts/a.txt", r)
		if w.Code != 500 || w.Body.String() != "Internal Server Error\n" || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("corrupt: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Type"))
		}
	})
	t.Run("damaged entry", func(t *testing.T) {
		data := makeZip(t, []entry{{name: "a.txt", data: bytes.Repeat([]byte("damaged "), 100)}}, false)
		data[40] ^= 0xff // inside the deflated data
		d, id := customArchive(t, data)
		w := d.call(t, "get-job-artifact-file", http.MethodGet, "/api/v4/projects/1/jobs/"+itoa(id)+"/artifacts/a.txt", r)
		if w.Code != 500 || w.Body.String() != "Internal Server Error\n" {
			t.Fatalf("damaged: %d %q", w.Code, w.Body)
		}
	})
	t.Run("entry over 6 MB", func(t *testing.T) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 7<<16) // 7 MiB
		data := makeZip(t, []entry{{name: "big.bin", data: big}}, false)
		d, id := customArchive(t, data)
		w := d.call(t, "get-job-artifact-file", http.MethodGet, "/api/v4/projects/1/jobs/"+itoa(id)+"/artifacts/big.bin", r)
		if w.Code != 302 {
			t.Fatalf("big entry: %d %q", w.Code, w.Body)
		}
		res, err := http.Get(w.Header().Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(got, big) || res.Header.Get("Content-Disposition") != `attachment; filename="big.bin"` {
			t.Fatalf("presigned copy: %d, %d bytes, %q", res.StatusCode, len(got), res.Header.Get("Content-Disposition"))
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Keep: the artifacts no longer expire; expired ones (even locked) are
// not current, and only developers on unprotected refs may keep.
func TestArtifactsKeep(t *testing.T) {
	d := newDemo(t, 40)
	d.Deps.Now = func() time.Time { return time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC) } // before expiry
	dev := token(demo.TokenDeveloper)
	w := d.call(t, "keep-job-artifacts", http.MethodPost, "/api/v4/projects/1/jobs/14/artifacts/keep", dev)
	got := decode[map[string]any](t, w.Body)
	if w.Code != 200 || got["id"] != float64(14) || got["artifacts_expire_at"] != nil || got["artifacts_file"] == nil {
		t.Fatalf("keep: %d %v", w.Code, got)
	}
	if j := d.stored(t, 14); j.ArtifactsExpireAt != nil {
		t.Errorf("stored expiry %v", j.ArtifactsExpireAt)
	}
	if w := d.call(t, "keep-job-artifacts", http.MethodPost, "/api/v4/projects/1/jobs/14/artifacts/keep", dev); w.Code != 200 {
		t.Errorf("keep again: %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct {
		name, target string
		header       map[string]string
		status       int
		body         string
	}{
		{"protected ref, developer", "1/jobs/29/artifacts/keep", dev, 403, forbiddenBody},
		{"reporter", "1/jobs/12/artifacts/keep", token(demo.TokenReporter), 403, forbiddenBody},
		{"job token is not read", "1/jobs/12/artifacts/keep", jobTokenHeader(demo.JobTokenRunning), 401, `{"message":"401 Unauthorized"}`},
		{"read_api scope", "1/jobs/12/artifacts/keep", token(demo.TokenReadAPI), 403, ""},
		{"unknown job", "1/jobs/999999/artifacts/keep", dev, 404, recordAbsentBody},
		{"no artifacts", "1/jobs/7/artifacts/keep", token(demo.TokenMaintainer), 404, `{"message":"404 #\u003cCi::Build\u003e Not Found"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := d.call(t, "keep-job-artifacts", http.MethodPost, "/api/v4/projects/"+tc.target, tc.header)
			if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, tc.status, tc.body)
			}
		})
	}
	d.Deps.Now = func() time.Time { return fixedNow }
	if w := d.call(t, "keep-job-artifacts", http.MethodPost, "/api/v4/projects/1/jobs/12/artifacts/keep", dev); w.Code != 404 {
		t.Errorf("keep of expired (locked) artifacts: %d %s", w.Code, w.Body)
	}
}

// DELETE job artifacts: 204, the entity as GitLab shows it afterwards,
// the zip gone from S3, the log kept; maintainers only.
func TestArtifactsDeleteJob(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	before := d.stored(t, archiveMain)
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"developer", token(demo.TokenDeveloper), 403},
		{"anonymous", nil, 401},
		{"job token is not read", jobTokenHeader(demo.JobTokenRunning), 401},
	} {
		if w := d.call(t, "delete-job-artifacts", http.MethodDelete, "/api/v4/projects/1/jobs/29/artifacts", tc.header); w.Code != tc.status {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	w := d.call(t, "delete-job-artifacts", http.MethodDelete, "/api/v4/projects/1/jobs/29/artifacts", m)
	if w.Code != 204 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Fatalf("delete: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Type"))
	}
	got := decode[map[string]any](t, d.call(t, "get-job", http.MethodGet, "/api/v4/projects/1/jobs/29", m).Body)
	arts := got["artifacts"].([]any)
	if _, ok := got["artifacts_file"]; ok || len(arts) != 1 || arts[0].(map[string]any)["file_type"] != "trace" ||
		got["artifacts_expire_at"] == nil || got["erased_at"] != nil {
		t.Errorf("job after delete: %v", got)
	}
	d.mustHaveFiles(t, 1, archiveMain, 1) // the log
	if j := d.stored(t, archiveMain); j.ArchivePending || j.Archive != nil || !j.ArtifactsExpireAt.Equal(*before.ArtifactsExpireAt) {
		t.Errorf("stored job %+v", j)
	}
	if w := d.call(t, "get-job-artifacts", http.MethodGet, "/api/v4/projects/1/jobs/29/artifacts", m); w.Code != 404 || w.Body.String() != fileAbsentBody {
		t.Errorf("archive after delete: %d %s", w.Code, w.Body)
	}
	if w := d.call(t, "get-ref-artifacts", http.MethodGet, "/api/v4/projects/1/jobs/artifacts/main/download?job=compile", m); w.Code != 404 || w.Body.String() != recordAbsentBody {
		t.Errorf("by ref after delete: %d %s", w.Code, w.Body)
	}
	if w := d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/29/trace", m); w.Code != 200 || w.Body.Len() == 0 {
		t.Errorf("trace after delete: %d", w.Code)
	}
	if w := d.call(t, "delete-job-artifacts", http.MethodDelete, "/api/v4/projects/1/jobs/29/artifacts", m); w.Code != 204 {
		t.Errorf("delete again: %d %s", w.Code, w.Body)
	}
}

// When S3 fails to delete the zip, the job already shows no artifacts
// and keeps the record (ArchivePending) that the next DELETE finishes.
func TestArtifactsDeleteWhenS3Fails(t *testing.T) {
	d := newDemo(t, 40)
	var failing atomic.Bool
	failing.Store(true)
	deps := *d.Deps
	deps.Files = failingS3(t, d.Env, &failing, deletesObject)
	del := func() int {
		w := d.callWith(t, &deps, "delete-job-artifacts", http.MethodDelete, "/api/v4/projects/1/jobs/29/artifacts", token(demo.TokenMaintainer))
		return w.Code
	}
	if code := del(); code != 500 {
		t.Fatalf("delete during an S3 outage: %d", code)
	}
	if j := d.stored(t, archiveMain); !j.ArchivePending || j.Archive != nil || j.ArtifactsFile != nil {
		t.Errorf("job after the failed delete %+v", j)
	}
	d.mustHaveFiles(t, 1, archiveMain, 2)
	failing.Store(false)
	if code := del(); code != 204 {
		t.Fatalf("second delete: %d", code)
	}
	d.mustHaveFiles(t, 1, archiveMain, 1)
	if j := d.stored(t, archiveMain); j.ArchivePending {
		t.Errorf("job after the second delete %+v", j)
	}
}

// callWith is call with other dependencies.
func (d *fixture) callWith(t *testing.T, deps *api.Deps, function, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	fn, _ := api.Named(function)
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	fn.Handler(deps).ServeHTTP(w, r)
	return w
}

// expireRequestEvent is the stream record DELETE /projects/:id/artifacts
// makes, as Lambda hands it to the cleanup function.
func expireRequestEvent(project int64) events.DynamoDBEvent {
	return events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{EventName: "INSERT",
		Change: events.DynamoDBStreamRecord{Keys: map[string]events.DynamoDBAttributeValue{
			"PK": events.NewStringAttribute("P#" + itoa(project)), "SK": events.NewStringAttribute(store.ExpireRequestSK)}}}}}
}

// pendingJobEvent is the stream record of a job written with files still
// to delete (its fp or apd mark), as Lambda hands it to the cleanup function.
func pendingJobEvent(job int64) events.DynamoDBEvent {
	return events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{EventName: "MODIFY",
		Change: events.DynamoDBStreamRecord{Keys: map[string]events.DynamoDBAttributeValue{
			"PK": events.NewStringAttribute("J#" + itoa(job)), "SK": events.NewStringAttribute(store.JobSK)},
			NewImage: map[string]events.DynamoDBAttributeValue{"fp": events.NewBooleanAttribute(true)}}}}}
}

// DELETE project artifacts answers 202 and records the request; the
// cleanup function then deletes every unlocked build's artifacts (log
// kept), leaves locked pipelines' alone, and clears the request. During an
// S3 outage it fails (Lambda retries the batch) with the request and the
// pending zip's record kept, and the retry finishes.
func TestArtifactsDeleteProject(t *testing.T) {
	d := newDemo(t, 40)
	ctx := context.Background()
	p := mustProject(t, d)
	// Job 12's pipeline is locked; unlock it, so that its zip is the cleanup's.
	if _, err := d.Deps.Store.Apply(ctx, p, d.stored(t, 12), func(j *jobs.Job) (jobs.Transition, error) {
		c := *j
		c.Locked = false
		return jobs.Transition{Job: &c}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if w := d.call(t, "delete-project-artifacts", http.MethodDelete, "/api/v4/projects/1/artifacts", token(demo.TokenDeveloper)); w.Code != 403 {
		t.Errorf("developer: %d %s", w.Code, w.Body)
	}
	if w := d.call(t, "delete-project-artifacts", http.MethodDelete, "/api/v4/projects/1/artifacts", nil); w.Code != 401 {
		t.Errorf("anonymous: %d %s", w.Code, w.Body)
	}
	w := d.call(t, "delete-project-artifacts", http.MethodDelete, "/api/v4/projects/1/artifacts", token(demo.TokenMaintainer))
	if w.Code != 202 || w.Body.String() != `{"message":"202 Accepted"}` {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if j := d.stored(t, noArchiveFile); j.ArtifactsFile == nil {
		t.Fatal("artifacts gone before the cleanup ran")
	}
	var failing atomic.Bool
	failing.Store(true)
	deps := *d.Deps
	deps.Files = failingS3(t, d.Env, &failing, deletesObject)
	cleanup := api.CleanupArtifacts.StreamHandler(&deps)
	if err := cleanup(ctx, expireRequestEvent(1)); err == nil {
		t.Fatal("cleanup during an S3 outage succeeded")
	}
	if _, err := d.Deps.Store.ExpireRequest(ctx, 1); err != nil {
		t.Fatalf("request after the failed cleanup: %v", err)
	}
	if j := d.stored(t, 12); !j.ArchivePending || j.ArtifactsFile != nil {
		t.Errorf("job 12 after the failed cleanup %+v", j)
	}
	failing.Store(false)
	if err := cleanup(ctx, expireRequestEvent(1)); err != nil {
		t.Fatal(err)
	}
	d.mustHaveFiles(t, 1, 12, 1) // the log
	for _, id := range []int64{noArchiveFile, 12} {
		j := d.stored(t, id)
		if j.ArtifactsFile != nil || j.Archive != nil || j.ArchivePending || !j.HasTrace {
			t.Errorf("unlocked job %d after cleanup %+v", id, j)
		}
	}
	if j := d.stored(t, archiveMain); j.ArtifactsFile == nil || j.Archive == nil {
		t.Errorf("locked job %d lost its artifacts", archiveMain)
	}
	d.mustHaveFiles(t, 1, archiveMain, 2)
	if _, err := d.Deps.Store.ExpireRequest(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("request after the cleanup: %v", err)
	}
	if err := cleanup(ctx, expireRequestEvent(1)); err != nil {
		t.Errorf("a repeated event: %v", err)
	}
}

// The archive's tree, from the zip's directory: subdirectories first, then
// files; recursive; paginated with totals; GitLab's 404s and 400.
func TestArtifactsTree(t *testing.T) {
	d := newDemo(t, 40)
	r := token(demo.TokenReporter)
	tests := []struct {
		name, query string
		status      int
		paths       []string
		body        string
	}{
		{"root", "", 200, []string{"bin/", "dist/"}, ""},
		{"a directory", "?path=dist", 200, []string{"dist/config.json", "dist/index.html"}, ""},
		{"trailing slash", "?path=bin/", 200, []string{"bin/app"}, ""},
		{"recursive", "?recursive=true", 200, []string{"bin/", "bin/app", "dist/", "dist/config.json", "dist/index.html"}, ""},
		{"page 2", "?recursive=true&per_page=2&page=2", 200, []string{"dist/", "dist/config.json"}, ""},
		{"a file is no path", "?path=bin/app", 404, nil, `{"message":"404 Path Not Found"}`},
		{"recursive not a boolean", "?recursive=maybe", 400, nil, `{"error":"recursive is invalid"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := d.call(t, "get-job-artifacts-tree", http.MethodGet, "/api/v4/projects/1/jobs/29/artifacts/tree"+tc.query, r)
			if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
				t.Fatalf("got %d %s", w.Code, w.Body)
			}
			if tc.status != 200 {
				return
			}
			var rows []struct{ Path, Type, Mode string }
			if err := json.Unmarshal(w.Body.Bytes(), &rows); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, row := range rows {
				got = append(got, row.Path)
			}
			if strings.Join(got, " ") != strings.Join(tc.paths, " ") {
				t.Errorf("paths %v, want %v", got, tc.paths)
			}
		})
	}
	w := d.call(t, "get-job-artifacts-tree", http.MethodGet, "/api/v4/projects/1/jobs/29/artifacts/tree?recursive=true&per_page=2", r)
	if w.Header().Get("X-Total") != "5" || w.Header().Get("X-Total-Pages") != "3" || w.Header().Get("X-Next-Page") != "2" {
		t.Errorf("headers %v", w.Header())
	}
	if w := d.call(t, "get-job-artifacts-tree", http.MethodGet, "/api/v4/projects/1/jobs/3/artifacts/tree", r); w.Code != 404 || w.Body.String() != `{"message":"404 Artifacts Not Found"}` {
		t.Errorf("expired, unlocked: %d %s", w.Code, w.Body)
	}
	if w := d.call(t, "get-job-artifacts-tree", http.MethodGet, "/api/v4/projects/3/jobs/79/artifacts/tree", nil); w.Code != 403 {
		t.Errorf("developer-only: %d %s", w.Code, w.Body)
	}
}
