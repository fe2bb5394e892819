package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// 50 concurrent retries of one job create exactly one new job; the other
// 49 are told the job is not retryable.
func TestConcurrentRetries(t *testing.T) {
	d := newDemo(t, 40)
	const n = 50
	codes := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w := d.post(t, "retry-job", "/api/v4/projects/1/jobs/37/retry", "", token(demo.TokenMaintainer))
			codes[i], bodies[i] = w.Code, w.Body.String()
		})
	}
	wg.Wait()
	created, next := 0, int64(0)
	for i, c := range codes {
		switch {
		case c == http.StatusCreated:
			created++
			next = decode[struct{ ID int64 }](t, strings.NewReader(bodies[i])).ID
		case c != http.StatusForbidden || bodies[i] != `{"message":"403 Forbidden - Job is not retryable"}`:
			t.Errorf("request %d: %d %s", i, c, bodies[i])
		}
	}
	if created != 1 {
		t.Fatalf("%d retries succeeded, want 1", created)
	}
	// Exactly one job was added: it has the next ordinal, the project
	// counts one build more, and the list shows it on top of the rest.
	if j := d.stored(t, next); j.Status != jobs.Pending || j.Ordinal != d.builds(1)+1 {
		t.Errorf("new job %+v", j)
	}
	if p := d.project(t, 1); p.Builds != d.builds(1)+1 || p.MaxBuildID != next {
		t.Errorf("project counts %d builds up to id %d, want %d up to %d", p.Builds, p.MaxBuildID, d.builds(1)+1, next)
	}
	all := listIDs(t, d, "/api/v4/projects/1/jobs?per_page=100")
	if int64(len(all)) != d.builds(1)+1 || all[0] != next {
		t.Errorf("builds listed %v, want %d of them, %d first", all, d.builds(1)+1, next)
	}
	ids := listIDs(t, d, "/api/v4/projects/1/jobs?scope=pending&per_page=100")
	if !slices.Contains(ids, next) {
		t.Errorf("pending list %v lacks the new job %d", ids, next)
	}
	mustCountRight(t, d, next)
}

// Retries of different jobs that race for the build count all succeed, each
// with its own id and ordinal, the ordinals dense and the ids growing with
// them (ids may have gaps: a lost transaction's leased ids are not reused
// by a later build below the project's highest).
func TestConcurrentRetriesOfDifferentJobs(t *testing.T) {
	d := newDemo(t, 40)
	targets := []int64{1, 2, 3, 5, 8, 9, 11, 12, 14, 17}
	ids := make([]int64, len(targets))
	var wg sync.WaitGroup
	for i, id := range targets {
		wg.Go(func() {
			w := d.post(t, "retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", id), "", token(demo.TokenMaintainer))
			if w.Code != http.StatusCreated {
				t.Errorf("retry %d: %d %s", id, w.Code, w.Body)
				return
			}
			ids[i] = decode[struct{ ID int64 }](t, w.Body).ID
		})
	}
	wg.Wait()
	slices.Sort(ids)
	for i, id := range ids {
		if want := d.builds(1) + 1 + int64(i); d.stored(t, id).Ordinal != want {
			t.Errorf("new ids %v: %d has ordinal %d, want %d", ids, id, d.stored(t, id).Ordinal, want)
		}
		if id <= int64(len(d.world.Jobs)) || (i > 0 && id == ids[i-1]) {
			t.Errorf("new ids %v: %d reused", ids, id)
		}
	}
	mustCountRight(t, d, ids...)
}

// A retry whose transaction loses the build count to another container's
// creation writes again from what the lost transaction returned (the
// project's count and its ref's, as they now are): one transaction more
// than a retry that raced nobody, and no read more.
func TestLostRaceWritesAgainWithoutReading(t *testing.T) {
	d := newDemo(t, 40)
	ctx := context.Background()
	ids := jobsOf(t, d, 4, retryable)
	retry := func(st *store.Store, id int64) (*jobs.Job, map[string]int) {
		t.Helper()
		f, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: 1}, JobID: id})
		if err != nil || f.Job == nil {
			t.Fatal(id, err)
		}
		d.Counter.Reset()
		j, err := st.Apply(ctx, f.Project, f.Job, jobs.Retry(2, fixedNow))
		if err != nil {
			t.Fatal(id, err)
		}
		return j, d.Counter.Calls()
	}
	// Two containers; mine creates once to warm its caches, and once more.
	mine, other := store.New(d.DynamoDB, d.Table), store.New(d.DynamoDB, d.Table)
	warm, _ := retry(mine, ids[0])
	first, alone := retry(mine, ids[1])
	second, _ := retry(other, ids[2])
	// mine still has project 1 as it wrote it: its next transaction loses.
	third, lost := retry(mine, ids[3])
	if alone["TransactWriteItems"] != 1 || lost["TransactWriteItems"] != 2 {
		t.Errorf("transactions: %d alone, %d after losing the build count, want 1 and 2", alone["TransactWriteItems"], lost["TransactWriteItems"])
	}
	for _, call := range []string{"BatchGetItem", "GetItem", "Query"} {
		if lost[call] != alone[call] {
			t.Errorf("%s: %d after losing the build count, %d alone", call, lost[call], alone[call])
		}
	}
	if want := d.builds(1) + 4; third.Ordinal != want || third.ID <= second.ID || second.ID <= first.ID {
		t.Errorf("builds %d, %d, %d have ordinals %d, %d, %d: want the last %d", first.ID, second.ID, third.ID,
			first.Ordinal, second.Ordinal, third.Ordinal, want)
	}
	mustCountRight(t, d, warm.ID, first.ID, second.ID, third.ID)
}

// A transaction DynamoDB cancels for another in flight on one of its items
// (TransactionConflict: on AWS the usual loss on a busy pipeline's counts;
// DynamoDB Local runs transactions one at a time and never answers it, so
// the transport answers it here) is written again as it was, after a short
// pause, without reading anything again: one transaction more than an
// action that met no conflict, and no read more.
func TestConflictingTransactionIsWrittenAgain(t *testing.T) {
	d := newDemo(t, 40)
	ctx := context.Background()
	armed := false
	f := &faulty{plan: func(op string) fault {
		if armed && op == "TransactWriteItems" {
			armed = false
			return conflict
		}
		return pass
	}}
	st := faultyDeps(d, f, api.Budget{}).Store
	for _, tc := range []struct {
		name string
		pick func(*jobs.Job) bool
		act  jobs.Action
		want func(*jobs.Job) bool
	}{
		{"cancel", func(j *jobs.Job) bool { return j.Status.Cancelable() }, jobs.Cancel(false, fixedNow),
			func(j *jobs.Job) bool { return j.Status == jobs.Canceled || j.Status == jobs.Canceling }},
		{"retry", retryable, jobs.Retry(2, fixedNow), func(j *jobs.Job) bool { return j.Status == jobs.Pending }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := jobsOf(t, d, 3, tc.pick)
			var created []int64
			act := func(id int64, conflicts bool) map[string]int {
				t.Helper()
				lk, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: 1}, JobID: id})
				if err != nil || lk.Job == nil {
					t.Fatal(id, err)
				}
				d.Counter.Reset()
				armed = conflicts
				j, err := st.Apply(ctx, lk.Project, lk.Job, tc.act)
				if err != nil || !tc.want(j) || armed {
					t.Fatalf("job %d: %+v, %v (conflict still armed: %v)", id, j, err, armed)
				}
				if j.ID != id {
					created = append(created, j.ID)
				}
				return d.Counter.Calls()
			}
			act(ids[0], false) // warms the store's caches
			alone, conflicted := act(ids[1], false), act(ids[2], true)
			if alone["TransactWriteItems"] != 1 || conflicted["TransactWriteItems"] != 2 {
				t.Errorf("transactions: %d alone, %d after a conflict, want 1 and 2", alone["TransactWriteItems"], conflicted["TransactWriteItems"])
			}
			for _, call := range []string{"BatchGetItem", "GetItem", "Query"} {
				if conflicted[call] != alone[call] {
					t.Errorf("%s: %d after a conflict, %d alone", call, conflicted[call], alone[call])
				}
			}
			mustCountRight(t, d, created...)
		})
	}
}

// project reads a project as the store holds it.
func (d *fixture) project(t *testing.T, id int64) *jobs.Project {
	t.Helper()
	f, err := d.Deps.Store.Lookup(context.Background(), store.Lookup{Project: store.ProjectRef{ID: id}})
	if err != nil || f.Project == nil {
		t.Fatalf("project %d: %v", id, err)
	}
	return f.Project
}

func listIDs(t *testing.T, d *fixture, target string) []int64 {
	t.Helper()
	w := d.call(t, "list-project-jobs", http.MethodGet, target, token(demo.TokenMaintainer))
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", target, w.Code, w.Body)
	}
	var ids []int64
	for _, j := range decode[[]struct{ ID int64 }](t, w.Body) {
		ids = append(ids, j.ID)
	}
	return ids
}

// Lists read indexes keyed by status: after each action the job shows
// under its new status only, on the very next request.
func TestActionsKeepListsRight(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	in := func(scope string, id int64) bool {
		return slices.Contains(listIDs(t, d, "/api/v4/projects/1/jobs?per_page=100&scope="+scope), id)
	}
	steps := []struct {
		function, target string
		job              int64
		from, to         string
	}{
		{"cancel-job", "/api/v4/projects/1/jobs/16/cancel", 16, "created", "canceled"},
		{"play-job", "/api/v4/projects/1/jobs/23/play", 23, "manual", "pending"},
		{"cancel-job", "/api/v4/projects/1/jobs/7/cancel", 7, "running", "canceling"},
		{"cancel-job", "/api/v4/projects/1/jobs/7/cancel?force=true", 7, "canceling", "canceled"},
	}
	for _, s := range steps {
		if !in(s.from, s.job) {
			t.Fatalf("job %d not under %s before", s.job, s.from)
		}
		if w := d.post(t, s.function, s.target, "", m); w.Code >= 300 {
			t.Fatalf("%s: %d %s", s.target, w.Code, w.Body)
		}
		if in(s.from, s.job) || !in(s.to, s.job) {
			t.Errorf("%s: job %d still under %s or not under %s", s.target, s.job, s.from, s.to)
		}
	}
	w := d.post(t, "retry-job", "/api/v4/projects/1/jobs/42/retry", "", m)
	next := decode[struct{ ID int64 }](t, w.Body).ID
	if top := listIDs(t, d, "/api/v4/projects/1/jobs?per_page=1"); !slices.Equal(top, []int64{next}) {
		t.Errorf("newest build %v, want %d", top, next)
	}
	if !in("pending", next) || !in("failed", 42) {
		t.Errorf("retry: new job %d not pending or old job 42 not failed", next)
	}
	mustCountRight(t, d, next)
}

// What each action costs in a cold container (nothing cached): the
// lookup's two BatchGetItem round trips, then
// one write (a PutItem where no count changes, else one transaction);
// a retry's (and a play's) lookup reads the job's ref's build count in its
// second round trip; in a project without leased ids left a retry leases a
// block of them (one UpdateItem), which the next retry there uses; erase lists and deletes in
// S3 and clears the erase mark.
func TestActionStoreCalls(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	tests := []struct {
		function, target string
		want             map[string]int
	}{
		{"cancel-job", "/api/v4/projects/1/jobs/22/cancel", map[string]int{"BatchGetItem": 2, "TransactWriteItems": 1}},
		{"cancel-job", "/api/v4/projects/1/jobs/1/cancel", map[string]int{"BatchGetItem": 2}},
		{"retry-job", "/api/v4/projects/1/jobs/42/retry", map[string]int{"BatchGetItem": 2, "UpdateItem": 1, "TransactWriteItems": 1}},
		{"retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", jobsOf(t, d, 1, retryable)[0]), map[string]int{"BatchGetItem": 2, "TransactWriteItems": 1}},
		{"play-job", "/api/v4/projects/1/jobs/23/play", map[string]int{"BatchGetItem": 2, "TransactWriteItems": 1}},
		{"erase-job", "/api/v4/projects/1/jobs/44/erase", map[string]int{"BatchGetItem": 2, "PutItem": 2, "ListObjectsV2": 1, "DeleteObjects": 1}},
	}
	for _, tc := range tests {
		d.coldContainer()
		d.Counter.Reset()
		if w := d.post(t, tc.function, tc.target, "", m); w.Code >= 300 {
			t.Fatalf("%s: %d %s", tc.target, w.Code, w.Body)
		}
		if got := d.Counter.Calls(); !maps.Equal(got, tc.want) {
			t.Errorf("%s: calls %v, want %v", tc.target, got, tc.want)
		}
	}
}

// failingS3 serves the demo's bucket but answers S3's 503 to the requests
// fails picks while failing is set, as an S3 outage would.
func failingS3(t *testing.T, env *testenv.Env, failing *atomic.Bool, fails func(*http.Request) bool) *jobfiles.Store {
	t.Helper()
	target, err := url.Parse(env.S3URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && fails(r) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	client := s3.NewFromConfig(testenv.Config(t), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
		o.RetryMaxAttempts = 1
	})
	return jobfiles.New(client, env.Bucket)
}

// deletesObjects picks DeleteObjects calls (POST ?delete), deletesObject
// single DeleteObject calls.
func deletesObjects(r *http.Request) bool {
	_, del := r.URL.Query()["delete"]
	return del && r.Method == http.MethodPost
}

func deletesObject(r *http.Request) bool { return r.Method == http.MethodDelete }

// When S3 fails to delete, erase still answers 201 (the erase is the
// job's mark, as GitLab's erase is its database commit); the job shows
// erased (no log, no artifacts) while its files wait, and the next read of
// its log, once S3 answers, deletes them: nobody repeats the
// erase, which is now refused (exactly one erase wins).
func TestEraseWhenS3Fails(t *testing.T) {
	d := newDemo(t, 40)
	var failing atomic.Bool
	failing.Store(true)
	deps := *d.Deps
	deps.Files = failingS3(t, d.Env, &failing, deletesObjects)
	call := func(function, method, path string) *httptest.ResponseRecorder {
		fn, _ := api.Named(function)
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("PRIVATE-TOKEN", demo.TokenMaintainer)
		w := httptest.NewRecorder()
		fn.Handler(&deps).ServeHTTP(w, r)
		return w
	}
	const job = "/api/v4/projects/1/jobs/42"
	if w := call("erase-job", http.MethodPost, job+"/erase"); w.Code != http.StatusCreated {
		t.Fatalf("erase during an S3 outage: %d %s", w.Code, w.Body)
	}
	d.mustHaveFiles(t, 1, 42, 2) // its log and its artifacts zip
	if j := d.stored(t, 42); j.ErasedAt == nil || !j.FilesPending || j.HasTrace || j.Artifacts != nil {
		t.Errorf("job after the erase during the outage %+v", j)
	}
	if w := call("get-job-trace", http.MethodGet, job+"/trace"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("trace during the outage: %d %q", w.Code, w.Body)
	}
	// The mark's stream record reaches the cleanup function, which fails
	// while S3 does (Lambda retries the batch), then finishes.
	cleanup := api.CleanupArtifacts.StreamHandler(&deps)
	if err := cleanup(context.Background(), pendingJobEvent(42)); err == nil {
		t.Error("the cleanup succeeded during the outage")
	}
	failing.Store(false)
	if err := cleanup(context.Background(), pendingJobEvent(42)); err != nil {
		t.Fatalf("the cleanup after the outage: %v", err)
	}
	d.mustHaveFiles(t, 1, 42, 0)
	if j := d.stored(t, 42); j.FilesPending || j.ErasedAt == nil {
		t.Errorf("job after the cleanup %+v", j)
	}
	if w := call("erase-job", http.MethodPost, job+"/erase"); w.Code != http.StatusForbidden {
		t.Errorf("repeated erase: %d %s", w.Code, w.Body)
	}
}

// mustCountRight checks the job counts every pipeline item keeps against
// the jobs themselves, read one by one up to id last.
func mustCountRight(t *testing.T, d *fixture, created ...int64) {
	t.Helper()
	want := map[int64]map[string]int64{}
	all := created
	for id := int64(1); id <= int64(len(d.world.Jobs)); id++ {
		all = append(all, id)
	}
	for _, id := range all {
		j := d.stored(t, id)
		if want[j.PipelineID] == nil {
			want[j.PipelineID] = map[string]int64{}
		}
		want[j.PipelineID][jobs.CountKey(j.Kind, j.Status, j.Retried)]++
	}
	for pl, counts := range want {
		// The lookup reads the pipeline fresh (Related serves its
		// documents from the warm cache).
		f, err := d.Deps.Store.Lookup(context.Background(), store.Lookup{PipelineID: pl})
		if err != nil || f.Pipeline == nil {
			t.Fatal(pl, err)
		}
		got := f.Pipeline.Counts
		for k, v := range got {
			if v != counts[k] {
				t.Errorf("pipeline %d: %s = %d, want %d", pl, k, v, counts[k])
			}
		}
		for k, v := range counts {
			if got[k] != v {
				t.Errorf("pipeline %d: %s = %d, want %d", pl, k, got[k], v)
			}
		}
	}
}

// A job imported under an id that a project had leased for its next
// builds does not block them: the retry that finds its id taken leases new
// ids and succeeds, and the imported job stays as imported.
func TestRetryPastAnImportedID(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	ids := jobsOf(t, d, 2, retryable)
	first := d.post(t, "retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", ids[0]), "", m)
	if first.Code != http.StatusCreated {
		t.Fatalf("retry: %d %s", first.Code, first.Body)
	}
	leased := decode[struct{ ID int64 }](t, first.Body).ID + 1 // project 1's next id
	// A build of project 2 imported under that id.
	var doc map[string]any
	for _, raw := range d.world.Jobs {
		doc = nil
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if doc["project_id"] == float64(2) && doc["downstream_pipeline"] == nil && doc["status"] == "success" {
			break
		}
	}
	if doc["project_id"] != float64(2) {
		t.Fatal("no successful build of project 2")
	}
	doc["id"] = leased
	delete(doc, "artifacts_archive")
	raw, _ := json.Marshal(doc)
	w := *d.world
	w.Jobs = []json.RawMessage{raw}
	im := &world.Importer{Store: d.Deps.Store, Files: d.Files, Now: d.Deps.Now}
	if _, err := im.Import(context.Background(), &w); err != nil {
		t.Fatal(err)
	}
	second := d.post(t, "retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", ids[1]), "", m)
	if second.Code != http.StatusCreated {
		t.Fatalf("retry after the import: %d %s", second.Code, second.Body)
	}
	if got := decode[struct{ ID int64 }](t, second.Body).ID; got <= leased {
		t.Errorf("new build %d, want above the imported %d", got, leased)
	}
	if j := d.stored(t, leased); j.ProjectID != 2 || j.Status != jobs.Success {
		t.Errorf("imported job now %+v", j)
	}
}
