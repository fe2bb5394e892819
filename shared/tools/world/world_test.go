package world_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/load"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/progress"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var clock = func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }

func importer(env *testenv.Env) *world.Importer {
	return &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: clock}
}

func TestImportTwiceChangesNothing(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(30)
	sum, err := importer(env).Import(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewJobs != len(w.Jobs) || sum.Traces == 0 {
		t.Fatalf("first import: %+v", sum)
	}
	before := env.Dump(t)
	sum, err = importer(env).Import(context.Background(), demo.Seed(30))
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewJobs != 0 {
		t.Errorf("second import wrote %d jobs", sum.NewJobs)
	}
	after := env.Dump(t)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("second import changed the table: %d items before, %d after", len(before), len(after))
	}
	// Only hashes of tokens are stored.
	for _, line := range after {
		if strings.Contains(line, demo.TokenMaintainer) || strings.Contains(line, demo.JobTokenRunning) {
			t.Fatalf("a token secret is stored: %.200s", line)
		}
	}
}

// Importing older jobs after newer ones renumbers the project's builds, so
// lists stay in id order and offset pages stay exact.
func TestImportOutOfOrderRenumbers(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(30)
	var late []json.RawMessage
	keep := w.Jobs[:0]
	for i, j := range w.Jobs {
		if i%3 == 0 {
			late = append(late, j)
		} else {
			keep = append(keep, j)
		}
	}
	w.Jobs = keep
	if _, err := importer(env).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	w2 := demo.Seed(30)
	w2.Jobs = late
	env.Counter.Reset()
	if _, err := importer(env).Import(context.Background(), w2); err != nil {
		t.Fatal(err)
	}
	// The second import read only the builds above its lowest one, and
	// the one below, of each project.
	want := 0
	for pid, low := range lowest(t, late) {
		below := false
		for _, raw := range keep {
			switch b := build(t, raw); {
			case b.bridge || b.project != pid:
			case b.id > low:
				want++
			default:
				below = true
			}
		}
		if below {
			want++
		}
	}
	if got := env.Counter.Scanned(); got != want {
		t.Errorf("the second import read %d builds, want %d", got, want)
	}
	for pid := range int64(3) {
		denseOrdinals(t, env, pid+1)
	}
}

// denseOrdinals checks that a project's builds list in id order with
// ordinals from its count down to 1, so that offset pages stay exact.
func denseOrdinals(t *testing.T, env *testenv.Env, pid int64) {
	t.Helper()
	st := env.Deps.Store
	f, err := st.Lookup(context.Background(), store.Lookup{Project: store.ProjectRef{ID: pid}})
	if err != nil || f.Project == nil {
		t.Fatal(err)
	}
	page, err := st.ProjectBuilds(context.Background(), f.Project, store.Range{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(page.Jobs)) != f.Project.Builds {
		t.Fatalf("project %d: %d builds listed, project counts %d", pid, len(page.Jobs), f.Project.Builds)
	}
	for i, j := range page.Jobs {
		if want := f.Project.Builds - int64(i); j.Ordinal != want {
			t.Fatalf("job %d has ordinal %d, want %d", j.ID, j.Ordinal, want)
		}
	}
}

func TestImportRejectsBadDocuments(t *testing.T) {
	env := testenv.New(t)
	tests := []struct{ name, job, want string }{
		{"bad status", `{"id":1,"status":"nope","created_at":"2026-01-01T00:00:00Z","project_id":1,"pipeline":{"id":5,"project_id":1}}`, "valid status"},
		{"no pipeline", `{"id":1,"status":"success","created_at":"2026-01-01T00:00:00Z","project_id":1}`, "pipeline"},
		{"unknown project", `{"id":1,"status":"success","created_at":"2026-01-01T00:00:00Z","project_id":77,"pipeline":{"id":5,"project_id":77}}`, "project 77"},
		{"bad time", `{"id":1,"status":"success","created_at":"yesterday","project_id":1,"pipeline":{"id":5,"project_id":1}}`, "cannot parse"},
		{"bad access", `{"id":1,"status":"success","created_at":"2026-01-01T00:00:00Z","project_id":1,"pipeline":{"id":5,"project_id":1},"artifacts_access":"all"}`, "artifacts_access"},
		{"archive without artifacts_file", `{"id":1,"status":"success","created_at":"2026-01-01T00:00:00Z","project_id":1,"pipeline":{"id":5,"project_id":1},"artifacts_archive":"a.zip"}`, "artifacts_file"},
		{"missing archive", `{"id":1,"status":"success","created_at":"2026-01-01T00:00:00Z","project_id":1,"pipeline":{"id":5,"project_id":1},"artifacts_file":{"filename":"artifacts.zip","size":3},"artifacts_archive":"nope.zip"}`, "nope.zip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := demo.Seed(1)
			w.Jobs = []json.RawMessage{json.RawMessage(tc.job)}
			_, err := importer(env).Import(context.Background(), w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// The demo world has what the README promises: every status, retried jobs,
// manual jobs, bridges, coloured traces, a running job with a token.
func TestSeedCoversTheDemo(t *testing.T) {
	w := demo.Seed(100)
	seen := map[string]int{}
	for _, raw := range w.Jobs {
		var j map[string]any
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatal(err)
		}
		seen["status "+fmt.Sprint(j["status"])]++
		if j["retried"] == true {
			seen["retried"]++
		}
		if j["when"] == "manual" {
			seen["manual"]++
		}
		if _, ok := j["downstream_pipeline"]; ok {
			seen["bridge"]++
		}
		if tr, ok := j["trace"].(string); ok && strings.Contains(tr, "\x1b[") {
			seen["ansi trace"]++
		}
		if j["token"] != nil {
			seen["job token"]++
		}
	}
	for _, st := range jobs.Statuses {
		if seen["status "+string(st)] == 0 {
			t.Errorf("no %s job", st)
		}
	}
	for _, k := range []string{"retried", "manual", "bridge", "ansi trace", "job token"} {
		if seen[k] == 0 {
			t.Errorf("no %s", k)
		}
	}
}

// artifacts_archive uploads the zip under the job's prefix and records its
// size; locks follow the newest successful pipeline of each ref; neither
// import-only key is rendered back (TestImportRoundTrip).
func TestImportArchivesAndLocks(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(30)
	if _, err := importer(env).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	locked := map[string]int64{} // project and ref -> the locked pipeline
	archives, restricted := 0, 0
	for _, raw := range w.Jobs {
		var d struct {
			ID        int64  `json:"id"`
			ProjectID int64  `json:"project_id"`
			Archive   string `json:"artifacts_archive"`
			Access    string `json:"artifacts_access"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		f, err := env.Deps.Store.Lookup(context.Background(), store.Lookup{JobID: d.ID})
		if err != nil || f.Job == nil {
			t.Fatal(d.ID, err)
		}
		j := f.Job
		if d.Archive != "" {
			archives++
			want, err := fs.ReadFile(w.Dir, d.Archive)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &env.Bucket,
				Key: aws.String(jobfiles.ArchiveKey(d.ProjectID, d.ID))})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if !bytes.Equal(body, want) || j.Archive == nil || j.Archive.Size != int64(len(want)) ||
				j.ArtifactsFile.Size != int64(len(want)) {
				t.Errorf("job %d: stored %d bytes, recorded %+v, shown %+v; the document's zip has %d",
					d.ID, len(body), j.Archive, j.ArtifactsFile, len(want))
			}
		}
		if d.Access != "" {
			restricted++
			if j.ArtifactsAccess != d.Access {
				t.Errorf("job %d access %q, want %q", d.ID, j.ArtifactsAccess, d.Access)
			}
		}
		if j.Locked && !j.IsBridge() {
			k := fmt.Sprintf("%d %s", j.ProjectID, j.Ref)
			if pl, ok := locked[k]; ok && pl != j.PipelineID {
				t.Errorf("%s locks pipelines %d and %d", k, pl, j.PipelineID)
			}
			locked[k] = j.PipelineID
		}
	}
	if archives < 5 || restricted == 0 || len(locked) < 6 {
		t.Errorf("%d archives, %d with an access setting, locked pipelines %v", archives, restricted, locked)
	}
}

type buildOf struct {
	id, project int64
	bridge      bool
}

func build(t *testing.T, raw json.RawMessage) buildOf {
	var d struct {
		ID         int64           `json:"id"`
		ProjectID  int64           `json:"project_id"`
		Downstream json.RawMessage `json:"downstream_pipeline"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return buildOf{d.ID, d.ProjectID, d.Downstream != nil}
}

// lowest is the lowest build id of each project among js.
func lowest(t *testing.T, js []json.RawMessage) map[int64]int64 {
	out := map[int64]int64{}
	for _, raw := range js {
		if b := build(t, raw); !b.bridge && (out[b.project] == 0 || b.id < out[b.project]) {
			out[b.project] = b.id
		}
	}
	return out
}

// An import of newer builds reads one build of each project's history,
// its newest, whose ordinal the new builds continue from.
func TestImportNewerBuildsReadOnlyTheTop(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(30)
	n := len(w.Jobs) * 2 / 3
	late := w.Jobs[n:]
	w.Jobs = w.Jobs[:n]
	if _, err := importer(env).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	w2 := demo.Seed(30)
	w2.Jobs = late
	env.Counter.Reset()
	sum, err := importer(env).Import(context.Background(), w2)
	if err != nil {
		t.Fatal(err)
	}
	if projects := len(lowest(t, late)); env.Counter.Scanned() != projects || sum.NewJobs != len(late) {
		t.Errorf("read %d builds for %d projects, wrote %d of %d jobs", env.Counter.Scanned(), projects, sum.NewJobs, len(late))
	}
	for pid := range int64(3) {
		denseOrdinals(t, env, pid+1)
	}
}

// A document file imports as the same world in memory does, whatever the
// order of its sections, its jobs and pipelines read one at a time: the
// pipelines it lists win over the copies jobs embed (also for the project
// of a job without project_id), and one no job embeds is written too.
func TestImportFileAnyKeyOrder(t *testing.T) {
	seed := func(t *testing.T) *world.World {
		w := demo.Seed(30)
		var p, j map[string]any
		if err := json.Unmarshal(w.Pipelines[0], &p); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(w.Jobs[0], &j); err != nil {
			t.Fatal(err)
		}
		embedded := j["pipeline"].(map[string]any)
		if p["id"] != embedded["id"] || p["project_id"] != float64(1) {
			t.Fatalf("the demo's first job is not of its first pipeline, of project 1: %v %v", p, embedded)
		}
		p["name"] = "as listed"
		w.Pipelines[0] = mustJSON(t, p)
		w.Pipelines = append(w.Pipelines, json.RawMessage(`{"id":99999,"project_id":3,"status":"success","ref":"main"}`))
		delete(j, "project_id")
		embedded["project_id"] = 2 // the listed project (1) wins
		w.Jobs[0] = mustJSON(t, j)
		return w
	}
	for _, first := range []string{"jobs", "pipelines"} {
		t.Run(first+" first", func(t *testing.T) {
			w := seed(t)
			sections, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(sections, &doc); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			fmt.Fprintf(&b, "{%q: %s", first, doc[first])
			for k, v := range doc {
				if k != first {
					fmt.Fprintf(&b, ",\n %q: %s", k, v)
				}
			}
			b.WriteString(`, "unknown": [1, {"a": 2}]}` + "\n")
			path := filepath.Join(t.TempDir(), "world.json")
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fromFile, inMemory := testenv.New(t), testenv.New(t)
			sum, err := importer(fromFile).ImportFile(context.Background(), f, w.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if sum.NewJobs != len(w.Jobs) {
				t.Errorf("%d of %d jobs written", sum.NewJobs, len(w.Jobs))
			}
			if _, err := importer(inMemory).Import(context.Background(), seed(t)); err != nil {
				t.Fatal(err)
			}
			if a, b := fromFile.Dump(t), inMemory.Dump(t); strings.Join(a, "\n") != strings.Join(b, "\n") {
				t.Errorf("the file's import differs: %d items, %d in memory", len(a), len(b))
			}
			first := decodeJobOf(t, w.Jobs[0])
			for id, want := range map[int64]string{first.Pipeline: `"name":"as listed"`, 99999: `"project_id":3`} {
				f, err := fromFile.Deps.Store.Lookup(context.Background(), store.Lookup{PipelineID: id})
				if err != nil || f.Pipeline == nil || !strings.Contains(string(f.Pipeline.Doc), want) {
					t.Errorf("pipeline %d: %+v (%v), want its listed document (%s)", id, f.Pipeline, err, want)
				}
			}
			if f, err := fromFile.Deps.Store.Lookup(context.Background(), store.Lookup{JobID: first.ID}); err != nil || f.Job == nil || f.Job.ProjectID != 1 {
				t.Errorf("job %d without project_id: %+v (%v), want it in its listed pipeline's project, 1", first.ID, f.Job, err)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A job's web_url comes back as imported: GitLab's documentation example
// (another host than the instance's) is not rewritten; one that is the
// project's URL and the job's path is left to rendering, not stored.
func TestImportKeepsWebURL(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(1)
	const given = "https://example.com/foo/bar/-/jobs/7"
	w.Jobs = []json.RawMessage{
		json.RawMessage(`{"id":7,"status":"success","created_at":"2015-12-24T15:51:21.880Z","project_id":1,` +
			`"pipeline":{"id":6,"project_id":1,"ref":"main","sha":"0ff3ae198f8601a285adcf5c0fff204ee6fba5fd","status":"pending"},` +
			`"web_url":"` + given + `"}`),
		json.RawMessage(`{"id":8,"status":"success","created_at":"2015-12-24T15:51:21.880Z","project_id":1,` +
			`"pipeline":{"id":6,"project_id":1},"web_url":"https://gitlab.example.com/demo/backend/-/jobs/8"}`),
	}
	if _, err := importer(env).Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]string{7: given, 8: "https://gitlab.example.com/demo/backend/-/jobs/8"} {
		f, err := env.Deps.Store.Lookup(context.Background(), store.Lookup{JobID: id, Project: store.ProjectRef{ID: 1}})
		if err != nil || f.Job == nil || f.Project == nil {
			t.Fatal(id, err)
		}
		if got := render.JobWebURL(f.Project, f.Job); got != want || (id == 8) != (f.Job.WebURL == "") {
			t.Errorf("job %d: web_url %q (stored %q), want %q", id, got, f.Job.WebURL, want)
		}
	}
}

// hook is a progress writer that calls fn once, on the first line of
// phase's end: the import is then between its plan and its writes.
type hook struct {
	phase string
	fn    func()
	done  bool
}

func (h *hook) Write(p []byte) (int, error) {
	if !h.done && strings.HasPrefix(string(p), h.phase+" ") && strings.Contains(string(p), " in ") {
		h.done = true
		h.fn()
	}
	return len(p), nil
}

type jobOf struct {
	ID, Pipeline int64
	Status       string
	Bridge       bool
}

func decodeJobOf(t *testing.T, raw json.RawMessage) jobOf {
	t.Helper()
	var d struct {
		ID         int64              `json:"id"`
		Status     string             `json:"status"`
		Pipeline   struct{ ID int64 } `json:"pipeline"`
		Downstream json.RawMessage    `json:"downstream_pipeline"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return jobOf{d.ID, d.Pipeline.ID, d.Status, d.Downstream != nil}
}

// An import in two parts, the second's builds among the first's (they are
// renumbered), into unsharded and sharded projects, while an action moves a
// pipeline's counts between the second's plan and its writes, keeps what
// must hold of the stored jobs (load.Check: ordinals 1..n per project and
// ref in id order, the refs' counts, every pipeline's counts those of its
// jobs, the id counter above every id): the import adds to counts and never
// overwrites them. A build created afterwards takes an id above every
// imported one and the project's next ordinal. So it does into projects
// keeping their ref counts together, as stored before counts moved apart.
func TestImportInPartsKeepsTheInvariants(t *testing.T) {
	for _, c := range []struct {
		shards   int
		together bool
		// Once the second part is planned, resharded to this count (0: not):
		// its builds are written under the old count and its ref counts
		// (if together) move apart before it counts.
		reshard int
	}{{1, false, 0}, {4, false, 0}, {1, true, 0}, {1, true, 4}, {4, false, 2}} {
		shards := c.shards
		t.Run(fmt.Sprintf("%d shards, ref counts together %v, resharded to %d", shards, c.together, c.reshard), func(t *testing.T) {
			ctx := context.Background()
			env := testenv.New(t)
			seed := func() *world.World {
				w := demo.Seed(30)
				for i := range w.Projects {
					w.Projects[i].Shards = shards
				}
				return w
			}
			w := seed()
			var first []json.RawMessage
			later := map[int64]bool{} // pipelines with jobs in the second part
			var maxID int64
			for i, raw := range w.Jobs {
				j := decodeJobOf(t, raw)
				maxID = max(maxID, j.ID)
				if i%3 == 0 {
					later[j.Pipeline] = true
				} else {
					first = append(first, raw)
				}
			}
			w.Jobs = first
			if _, err := importer(env).Import(ctx, w); err != nil {
				t.Fatal(err)
			}
			for pid := int64(1); pid <= 3 && c.together; pid++ {
				env.KeepRefCountsTogether(t, pid)
			}
			var cancel jobOf // a job of the first part that the action cancels
			for _, raw := range first {
				if j := decodeJobOf(t, raw); !j.Bridge && later[j.Pipeline] && (j.Status == "pending" || j.Status == "created") {
					cancel = j
					break
				}
			}
			if cancel.ID == 0 {
				t.Fatal("the demo has no pending or created build in a pipeline of the second part")
			}
			st := env.Deps.Store
			act := func(id int64, a jobs.Action) *jobs.Job {
				t.Helper()
				f, err := st.Lookup(ctx, store.Lookup{JobID: id})
				if err != nil || f.Job == nil {
					t.Fatal(id, err)
				}
				if f, err = st.Lookup(ctx, store.Lookup{JobID: id, Project: store.ProjectRef{ID: f.Job.ProjectID}}); err != nil || f.Project == nil {
					t.Fatal(id, err)
				}
				j, err := st.Apply(ctx, f.Project, f.Job, a)
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			im := importer(env)
			im.Meter = progress.New(&hook{phase: "place", fn: func() {
				act(cancel.ID, jobs.Cancel(false, clock()))
				for pid := int64(1); pid <= 3 && c.reshard > 0; pid++ {
					if _, err := store.New(env.DynamoDB, env.Table).Reshard(ctx, pid, c.reshard, 0, nil); err != nil { // jobsctl's
						t.Fatal(err)
					}
				}
			}}, false)
			if _, err := im.Import(ctx, seed()); err != nil {
				t.Fatal(err)
			}
			stack := load.Stack{DynamoDB: env.DynamoDB, S3: env.S3, Table: env.Table, Bucket: env.Bucket}
			if bad, err := load.Check(ctx, stack); err != nil || len(bad) > 0 {
				t.Fatalf("after the import: %v %q", err, bad)
			}
			f, err := st.Lookup(ctx, store.Lookup{JobID: cancel.ID})
			if err != nil || f.Job == nil || f.Job.Status != jobs.Canceled {
				t.Fatalf("the canceled job is %+v (%v)", f.Job, err)
			}
			retried := act(cancel.ID, jobs.Retry(1, clock()))
			p, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: retried.ProjectID}})
			if err != nil || p.Project == nil {
				t.Fatal(err)
			}
			if retried.ID <= maxID || retried.Ordinal != p.Project.Builds {
				t.Errorf("the retry is job %d of ordinal %d: want an id above %d and ordinal %d", retried.ID, retried.Ordinal, maxID, p.Project.Builds)
			}
			if bad, err := load.Check(ctx, stack); err != nil || len(bad) > 0 {
				t.Fatalf("after a retry: %v %q", err, bad)
			}
			for pid := range int64(3) {
				denseOrdinals(t, env, pid+1)
				counting := 0
				for _, n := range env.RefEntryCounts(t, pid+1) {
					if n > 0 {
						counting++
					}
				}
				if c.together && (c.reshard == 0) != (counting > 0) {
					t.Errorf("project %d: %d ref entries hold counts", pid+1, counting)
				}
			}
		})
	}
}

// An import meets the conflicts AWS answers (holds): its own ref count
// transactions, 16 at a time, each check the project item, and into a
// live project, cancels hold the pipeline and count items that it adds
// to. The first part goes in, then, while the second part is written,
// cancels of jobs in its pipelines go through, so does the import, and
// the table keeps every invariant.
func TestImportIntoALiveProjectUnderHolds(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t)
	db, tr := env.UnderHolds()
	w := demo.Seed(30)
	var first []json.RawMessage
	later := map[int64]bool{} // pipelines with jobs in the second part
	for i, raw := range w.Jobs {
		if j := decodeJobOf(t, raw); i%3 == 0 {
			later[j.Pipeline] = true
		} else {
			first = append(first, raw)
		}
	}
	w.Jobs = first
	if _, err := importer(env).Import(ctx, w); err != nil {
		t.Fatalf("the first part: %v", err)
	}
	var cancels []int64
	for _, raw := range first {
		if j := decodeJobOf(t, raw); !j.Bridge && later[j.Pipeline] && jobs.Status(j.Status).Cancelable() && len(cancels) < 8 {
			cancels = append(cancels, j.ID)
		}
	}
	if len(cancels) < 2 {
		t.Fatalf("only %d cancelable jobs in the second part's pipelines", len(cancels))
	}
	var wg sync.WaitGroup
	im := importer(env)
	im.Meter = progress.New(&hook{phase: "place", fn: func() {
		for i, id := range cancels {
			st := store.New(db, env.Table) // a container each
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 15 * time.Millisecond) // spread over the write phase
				f, err := st.Lookup(ctx, store.Lookup{JobID: id})
				if err == nil && f.Job != nil {
					f, err = st.Lookup(ctx, store.Lookup{JobID: id, Project: store.ProjectRef{ID: f.Job.ProjectID}})
				}
				if err == nil && f.Project != nil {
					_, err = st.Apply(ctx, f.Project, f.Job, jobs.Cancel(false, clock()))
				}
				if err != nil {
					t.Errorf("cancel %d: %v", id, err)
				}
			})
		}
	}}, false)
	_, err := im.Import(ctx, demo.Seed(30))
	wg.Wait()
	t.Logf("%d cancels; %d transactions canceled, %d single writes rejected", len(cancels), tr.Conflicts(), tr.Rejections())
	if err != nil {
		t.Fatal(err)
	}
	stack := load.Stack{DynamoDB: env.DynamoDB, S3: env.S3, Table: env.Table, Bucket: env.Bucket}
	if bad, err := load.Check(ctx, stack); err != nil || len(bad) > 0 {
		t.Fatalf("after the import: %v %q", err, bad)
	}
	for _, id := range cancels {
		if f, err := env.Deps.Store.Lookup(ctx, store.Lookup{JobID: id}); err != nil || f.Job == nil ||
			(f.Job.Status != jobs.Canceled && f.Job.Status != jobs.Canceling) {
			t.Errorf("job %d after its cancel: %+v (%v)", id, f.Job, err)
		}
	}
}

// On AWS the ordinal index shows a write a moment after it (DynamoDB Local
// shows it at once, so the test hides it): an import just after a retry
// created a build waits until the index shows that build, instead of
// numbering from the builds it does show and giving one of its own the
// created build's ordinal.
func TestImportBesideALaggingIndex(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t)
	w := demo.Seed(30)
	n := len(w.Jobs) * 2 / 3
	late := w.Jobs[n:]
	w.Jobs = w.Jobs[:n]
	if _, err := importer(env).Import(ctx, w); err != nil {
		t.Fatal(err)
	}
	st := env.Deps.Store
	f, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: demo.ProjectWebsite}})
	if err != nil || f.Project == nil {
		t.Fatal(err)
	}
	done, err := st.ProjectBuilds(ctx, f.Project, store.Range{Statuses: []jobs.Status{jobs.Success, jobs.Failed, jobs.Canceled}, Limit: 1, Whole: true})
	if err != nil || len(done.Jobs) == 0 {
		t.Fatalf("completed builds %v: %v", done, err)
	}
	created, err := st.Apply(ctx, f.Project, done.Jobs[0], jobs.Retry(1, clock()))
	if err != nil {
		t.Fatal(err)
	}
	// The index hides it from the first three Queries that reach it.
	opts := env.DynamoDB.Options()
	hid := testenv.HideFromIndexes(&opts, "J#"+strconv.FormatInt(created.ID, 10), 3)
	im := &world.Importer{Store: store.New(dynamodb.New(opts), env.Table), Files: env.Files, Now: clock}
	w2 := demo.Seed(30)
	w2.Jobs = late
	if _, err := im.Import(ctx, w2); err != nil {
		t.Fatal(err)
	}
	for pid := range int64(3) {
		denseOrdinals(t, env, pid+1)
	}
	if hid.Load() != 3 {
		t.Errorf("the index hid the created build from %d Queries, want 3", hid.Load())
	}
}
