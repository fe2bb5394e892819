package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/load"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// The same builds in unsharded projects and in projects of 8 shards answer
// every list request byte for byte alike: bodies, status codes, Link and
// pagination headers, over offset pages (first, deep, past the end),
// keyset walks to the end, one and several scopes, and after a retry
// created a build in each.
func TestShardedListsMatchUnsharded(t *testing.T) {
	one, eight := newDemo(t, 200), newShardedDemo(t, 200, 8)
	m := token(demo.TokenMaintainer)
	same := func(t *testing.T, function, method, target string) string {
		t.Helper()
		a := one.call(t, function, method, target, m)
		b := eight.call(t, function, method, target, m)
		if a.Code != b.Code || a.Body.String() != b.Body.String() {
			t.Fatalf("%s %s: unsharded %d %.200s, sharded %d %.200s", method, target, a.Code, a.Body, b.Code, b.Body)
		}
		for _, h := range []string{"Link", "X-Total", "X-Total-Pages", "X-Page", "X-Next-Page", "X-Prev-Page", "X-Per-Page"} {
			if a.Header().Get(h) != b.Header().Get(h) {
				t.Errorf("%s %s: %s %q unsharded, %q sharded", method, target, h, a.Header().Get(h), b.Header().Get(h))
			}
		}
		return a.Header().Get("Link")
	}
	targets := func() []string {
		var out []string
		for _, p := range []string{"1", "2", "demo%2Fwebsite"} {
			base := "/api/v4/projects/" + p + "/jobs"
			for _, q := range []string{"", "?per_page=1", "?per_page=7&page=3", "?page=9&per_page=20", "?per_page=100&page=2",
				"?page=400", "?scope=failed", "?scope[]=success&scope[]=failed&per_page=9&page=4",
				"?scope[]=pending&scope[]=running&scope[]=manual", "?scope=canceled&page=3&per_page=5"} {
				out = append(out, base+q)
			}
		}
		return out
	}
	walk := func(t *testing.T, target string) int {
		pages := 0
		for target != "" {
			pages++
			target = nextLink(t, same(t, "list-project-jobs", http.MethodGet, target))
		}
		return pages
	}
	check := func(t *testing.T) {
		for _, target := range targets() {
			same(t, "list-project-jobs", http.MethodGet, target)
		}
		for _, q := range []string{"per_page=13", "per_page=50&scope[]=success&scope[]=failed", "per_page=3&scope=running"} {
			if pages := walk(t, "/api/v4/projects/1/jobs?pagination=keyset&"+q); pages < 2 {
				t.Errorf("keyset walk %s: %d pages", q, pages)
			}
		}
	}
	t.Run("imported", check)
	retried := jobsOf(t, one, 3, retryable)
	for _, id := range retried {
		same(t, "retry-job", http.MethodPost, fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", id))
	}
	t.Run("after retries", check)
	// The sharded project's builds lie in all eight shards.
	eight.Counter.Reset()
	top := listIDs(t, eight, "/api/v4/projects/1/jobs?per_page=100")
	if q := eight.Counter.Calls()["Query"]; q != 8 {
		t.Errorf("a sharded page made %d Queries, want 8", q)
	}
	if !slices.IsSortedFunc(top, func(a, b int64) int { return int(b - a) }) || len(top) != 100 {
		t.Errorf("sharded page ids %v", top)
	}
	// Importing again keeps a project's shards; another count for a
	// project with builds is refused, not written under mixed keys.
	im := &world.Importer{Store: eight.Deps.Store, Files: eight.Files, Now: eight.Deps.Now}
	if _, err := im.Import(context.Background(), eight.world); err != nil {
		t.Errorf("import again: %v", err)
	}
	eight.world.Projects[0].Shards = 4
	if _, err := im.Import(context.Background(), eight.world); err == nil || !strings.Contains(err.Error(), "jobsctl reshard") {
		t.Errorf("import with other shards: %v", err)
	}
}

// Resharding a project with builds, while retries create builds in it,
// keeps every list answer as it was (but for the new builds, which show
// once each): to 8 shards, to 4 (where a build's keys may stay, but for
// its ref's, dealt by its ref ordinal) and back to 1.
func TestReshard(t *testing.T) {
	d := newDemo(t, 200)
	m := token(demo.TokenMaintainer)
	targets := []string{"/api/v4/projects/1/jobs?per_page=100", "/api/v4/projects/1/jobs?per_page=20&page=7",
		"/api/v4/projects/1/jobs?scope[]=success&scope[]=failed&per_page=50", "/api/v4/projects/1/jobs?scope=pending&per_page=100"}
	answers := func() []string {
		d.coldContainer() // the warm caches would hold the old shard count for WarmTTL
		var out []string
		for _, target := range targets {
			w := d.call(t, "list-project-jobs", http.MethodGet, target, m)
			out = append(out, fmt.Sprint(w.Code, w.Header().Get("Link"), w.Header().Get("X-Total"), w.Body.String()))
		}
		return out
	}
	toRetry := jobsOf(t, d, 12, retryable)
	var created []int64
	// As stored before ref counts moved apart: creations count in the
	// refs' entries until the reshard moves the counts, while it runs.
	d.KeepRefCountsTogether(t, 1)
	for _, id := range toRetry[9:] {
		w := d.post(t, "retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", id), "", m)
		if w.Code != http.StatusCreated {
			t.Fatalf("retry %d, ref counts together: %d %s", id, w.Code, w.Body)
		}
		created = append(created, decode[struct{ ID int64 }](t, w.Body).ID)
	}
	if n := refEntriesCounting(t, d, 1); n == 0 {
		t.Fatal("no ref entry counts builds")
	}
	for ref, want := range buildsByRef(t, d) {
		if got := listAll(t, d, "/api/v4/projects/1/jobs?per_page=30&ref="+url.QueryEscape(ref)); !slices.Equal(got, want) {
			t.Errorf("ref counts together: ref %s lists %d builds, want %d", ref, len(got), len(want))
		}
	}
	for i, shards := range []int{8, 4, 1} {
		var wg sync.WaitGroup
		var moved int
		var err error
		wg.Go(func() { moved, err = d.Deps.Store.Reshard(context.Background(), 1, shards, 0, nil) })
		for _, id := range toRetry[3*i : 3*i+3] {
			w := d.post(t, "retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", id), "", m)
			if w.Code != http.StatusCreated {
				t.Fatalf("retry %d while resharding: %d %s", id, w.Code, w.Body)
			}
			created = append(created, decode[struct{ ID int64 }](t, w.Body).ID)
		}
		wg.Wait()
		// The retries write their builds under the count they read: some
		// need no move; from 8 shards to 4, a build's keys whose ordinal
		// and ref ordinal are both below 4 mod 8 stay.
		if err != nil || moved < int(d.builds(1))*2/3-6 {
			t.Fatalf("reshard to %d: moved %d of %d builds: %v", shards, moved, d.builds(1), err)
		}
		if p, n := d.project(t, 1), refEntriesCounting(t, d, 1); p.RefCounts != 2 || n != 0 {
			t.Errorf("reshard to %d: ref counts kept as %d, %d entries still counting", shards, p.RefCounts, n)
		}
		before := answers()
		if again, err := d.Deps.Store.Reshard(context.Background(), 1, shards, 0, nil); err != nil || again != 0 {
			t.Errorf("reshard to %d again: moved %d, %v", shards, again, err)
		}
		if after := answers(); !slices.Equal(before, after) {
			t.Errorf("reshard to %d again changed the answers", shards)
		}
		all := listAll(t, d, "/api/v4/projects/1/jobs?per_page=100")
		if p := d.project(t, 1); int64(len(all)) != p.Builds || p.Shards != shards {
			t.Errorf("%d builds listed, project counts %d under %d shards, want %d", len(all), p.Builds, p.Shards, shards)
		}
		if !slices.IsSortedFunc(all, func(a, b int64) int { return int(b - a) }) || len(slices.Compact(slices.Clone(all))) != len(all) {
			t.Errorf("builds listed out of order or twice: %v", all)
		}
		for _, id := range created {
			if !slices.Contains(all, id) {
				t.Errorf("new build %d not listed", id)
			}
		}
		for ref, want := range buildsByRef(t, d) {
			if got := listAll(t, d, "/api/v4/projects/1/jobs?per_page=100&ref="+url.QueryEscape(ref)); !slices.Equal(got, want) {
				t.Errorf("%d shards: ref %s lists %d builds, want %d", shards, ref, len(got), len(want))
			}
		}
	}
	mustCountRight(t, d, created...)
	// Unsharded again, the keys are as an unsharded project's: its answers
	// match a project that never was sharded with the same retries.
	fresh := newDemo(t, 200)
	for _, id := range append(toRetry[9:], toRetry[:9]...) { // in the order retried above
		fresh.post(t, "retry-job", fmt.Sprintf("/api/v4/projects/1/jobs/%d/retry", id), "", m)
	}
	d2 := answers()
	fresh.coldContainer()
	for i, target := range targets {
		w := fresh.call(t, "list-project-jobs", http.MethodGet, target, m)
		if got := fmt.Sprint(w.Code, w.Header().Get("Link"), w.Header().Get("X-Total"), w.Body.String()); got != d2[i] {
			t.Errorf("%s: resharded and back %.300s, never sharded %.300s", target, d2[i], got)
		}
	}
}

// A reshard while creators keep the project item busy with their
// transactions meets the rejections AWS answers (holds) and still goes
// through, as do the creations.
func TestReshardUnderHolds(t *testing.T) {
	d := newDemo(t, 60)
	db, tr := d.UnderHolds()
	ids := jobsOf(t, d, 24, retryable)
	var wg sync.WaitGroup
	var moved int
	var err error
	wg.Go(func() { moved, err = d.Deps.Store.Reshard(context.Background(), 1, 4, 0, nil) })
	created := make([]int64, len(ids))
	for w := range 8 {
		st := store.New(db, d.Table)
		wg.Go(func() {
			for i := 3 * w; i < 3*w+3; i++ {
				lk, err := st.Lookup(context.Background(), store.Lookup{Project: store.ProjectRef{ID: 1}, JobID: ids[i]})
				var j *jobs.Job
				if err == nil && lk.Job != nil {
					j, err = st.Apply(context.Background(), lk.Project, lk.Job, jobs.Retry(2, fixedNow))
				}
				if err != nil {
					t.Errorf("retry %d: %v", ids[i], err)
					continue
				}
				created[i] = j.ID
			}
		})
	}
	wg.Wait()
	t.Logf("moved %d; %d transactions canceled, %d single writes rejected", moved, tr.Conflicts(), tr.Rejections())
	if err != nil {
		t.Fatalf("reshard: %v", err)
	}
	if tr.Conflicts() == 0 {
		t.Error("no conflict answered: the writers did not meet")
	}
	d.coldContainer()
	all := listAll(t, d, "/api/v4/projects/1/jobs?per_page=100")
	if p := d.project(t, 1); int64(len(all)) != p.Builds || p.Shards != 4 || p.Builds != d.builds(1)+int64(len(ids)) {
		t.Errorf("%d builds listed, project counts %d under %d shards, want %d under 4", len(all), p.Builds, p.Shards, d.builds(1)+int64(len(ids)))
	}
	for ref, want := range buildsByRef(t, d) {
		if got := listAll(t, d, "/api/v4/projects/1/jobs?per_page=100&ref="+url.QueryEscape(ref)); !slices.Equal(got, want) {
			t.Errorf("ref %s lists %d builds, want %d", ref, len(got), len(want))
		}
	}
	mustCountRight(t, d, created...)
}

// refEntriesCounting is how many of project pid's ref entries hold their
// ref's count.
func refEntriesCounting(t *testing.T, d *fixture, pid int64) int {
	t.Helper()
	n := 0
	for _, c := range d.RefEntryCounts(t, pid) {
		if c > 0 {
			n++
		}
	}
	return n
}

// While a reshard moves a project's builds, from 1 shard to 4 and back,
// its lists stay whole: a container that reads the project meanwhile reads
// the keys of both counts. Here a reshard stopped once it set the new
// count, before it moved any build (lists read every build under the old
// count's keys), and running it again finishes it (lists read the new
// count's keys only).
func TestListsStayWholeWhileAReshardMoves(t *testing.T) {
	// The project's newest pipeline is imported last: not while a reshard
	// moves its builds (the import's plan reads one count's keys).
	w := demo.Seed(1200)
	pipelineOf := func(raw json.RawMessage) (project, pipeline int64) {
		var j struct {
			ProjectID int64 `json:"project_id"`
			Pipeline  struct {
				ID int64 `json:"id"`
			} `json:"pipeline"`
		}
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatal(err)
		}
		return j.ProjectID, j.Pipeline.ID
	}
	var newest int64
	for _, raw := range w.Jobs {
		if project, pipeline := pipelineOf(raw); project == 1 {
			newest = max(newest, pipeline)
		}
	}
	var late []json.RawMessage
	w.Jobs = slices.DeleteFunc(w.Jobs, func(raw json.RawMessage) bool {
		if _, pipeline := pipelineOf(raw); pipeline == newest {
			late = append(late, raw)
			return true
		}
		return false
	})
	d := newWorld(t, w)
	// Pages past offset 500 of completed builds read through the rank
	// counts: the rows they read are those of both counts' keys too.
	targets := []string{"/api/v4/projects/1/jobs?per_page=100", "/api/v4/projects/1/jobs?per_page=20&scope[]=success&scope[]=failed&scope[]=canceled&scope[]=skipped",
		"/api/v4/projects/1/jobs?per_page=30&ref=main", "/api/v4/projects/1/jobs?per_page=30&ref=main&scope[]=success"}
	var want [][]int64
	for _, target := range targets {
		want = append(want, listAll(t, d, target))
	}
	for _, c := range []struct{ from, to int }{{1, 4}, {4, 1}} {
		if _, err := d.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName: aws.String(d.Table), Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "P#1"}, "SK": &types.AttributeValueMemberS{Value: "P"}},
			UpdateExpression: aws.String("SET sh = :to, so = :from"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":to": &types.AttributeValueMemberN{Value: strconv.Itoa(c.to)}, ":from": &types.AttributeValueMemberN{Value: strconv.Itoa(c.from)}},
		}); err != nil {
			t.Fatal(err)
		}
		lateWorld := *w
		lateWorld.Jobs = late
		im := &world.Importer{Store: d.Deps.Store, Files: d.Files, Now: time.Now}
		if _, err := im.Import(context.Background(), &lateWorld); err == nil || !strings.Contains(err.Error(), "a reshard is moving its builds") {
			t.Errorf("an import while builds move: %v", err)
		}
		if _, err := d.Deps.Store.Reshard(context.Background(), 1, 2, 0, nil); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a reshard to a third count while builds move: %v, want ErrConflict", err)
		}
		for phase, run := range []bool{false, true} {
			if run {
				if moved, err := d.Deps.Store.Reshard(context.Background(), 1, c.to, 0, nil); err != nil || moved != len(want[0]) {
					t.Fatalf("reshard to %d again: moved %d of %d builds: %v", c.to, moved, len(want[0]), err)
				}
			}
			// Builds not moved yet are where the other count puts them.
			bad, err := load.Check(context.Background(), load.Stack{DynamoDB: d.DynamoDB, S3: d.S3, Table: d.Table, Bucket: d.Bucket})
			if err != nil || len(bad) > 0 {
				t.Errorf("%d to %d shards, %s: %v %v", c.from, c.to, []string{"none moved", "done"}[phase], err, bad)
			}
			d.coldContainer()
			for i, target := range targets {
				if got := listAll(t, d, target); !slices.Equal(got, want[i]) {
					t.Errorf("%d to %d shards, %s: %s lists %d builds, want %d", c.from, c.to, []string{"none moved", "done"}[phase], target, len(got), len(want[i]))
				}
			}
			// A warm page 1 reads each partition of both counts once (the
			// unsharded one and 4 shards' while it moves): one Query each,
			// the speculation's included.
			d.Deps.Store.ForgetPages()
			d.Counter.Reset()
			d.call(t, "list-project-jobs", http.MethodGet, "/api/v4/projects/1/jobs?per_page=20", token(demo.TokenMaintainer))
			if q, want := d.Counter.Calls()["Query"], []int{5, c.to}[phase]; q != want {
				t.Errorf("%d to %d shards, %s: page 1 ran %d Queries, want %d", c.from, c.to, []string{"none moved", "done"}[phase], q, want)
			}
		}
		if p := d.project(t, 1); p.ShardsToo != 0 || max(p.Shards, 1) != c.to {
			t.Errorf("reshard to %d done: project has %d shards and reads %d's keys too", c.to, p.Shards, p.ShardsToo)
		}
	}
	lateWorld := *w
	lateWorld.Jobs = late
	im := &world.Importer{Store: d.Deps.Store, Files: d.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), &lateWorld); err != nil {
		t.Errorf("an import once the reshards ended: %v", err)
	}
}

// buildsByRef is project 1's build ids by ref, newest first, from its
// whole list.
func buildsByRef(t *testing.T, d *fixture) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
	for page := 1; ; page++ {
		w := d.call(t, "list-project-jobs", http.MethodGet, fmt.Sprintf("/api/v4/projects/1/jobs?per_page=100&page=%d", page), token(demo.TokenMaintainer))
		js := decode[[]struct {
			ID  int64
			Ref string
		}](t, w.Body)
		if len(js) == 0 {
			return out
		}
		for _, j := range js {
			out[j.Ref] = append(out[j.Ref], j.ID)
		}
	}
}

// listAll walks an offset list to its end and returns its ids.
func listAll(t *testing.T, d *fixture, target string) []int64 {
	t.Helper()
	var all []int64
	for page := 1; ; page++ {
		ids := listIDs(t, d, fmt.Sprintf("%s&page=%d", target, page))
		if len(ids) == 0 {
			return all
		}
		all = append(all, ids...)
	}
}

// A container that cached a project while it kept its ref counts in its
// entries reads both places for a ref's deep page once a reshard (to the
// same shard count: only the counts move) has moved them, within WarmTTL:
// not the emptied entry alone.
func TestRefPagesOfACachedProjectOnceCountsMoved(t *testing.T) {
	d := newDemo(t, 40)
	m := token(demo.TokenMaintainer)
	d.KeepRefCountsTogether(t, 1)
	busiest, refs := "", buildsByRef(t, d)
	for ref, ids := range refs {
		if len(ids) > len(refs[busiest]) {
			busiest = ref
		}
	}
	if len(refs[busiest]) < 6 {
		t.Fatalf("ref %s has %d builds, want a second page of 5", busiest, len(refs[busiest]))
	}
	target := "/api/v4/projects/1/jobs?per_page=5&page=2&ref=" + url.QueryEscape(busiest)
	answer := func(w *httptest.ResponseRecorder) string {
		return fmt.Sprint(w.Code, w.Header().Get("Link"), w.Body)
	}
	container := *d.Deps // another container's, which caches the project as keeping its counts together
	container.Store = store.New(d.DynamoDB, d.Table)
	want := answer(d.callWith(t, &container, "list-project-jobs", http.MethodGet, target, m))
	if _, err := store.New(d.DynamoDB, d.Table).Reshard(context.Background(), 1, 1, 0, nil); err != nil { // jobsctl's
		t.Fatal(err)
	}
	if p := d.project(t, 1); p.RefCounts != 2 || refEntriesCounting(t, d, 1) != 0 {
		t.Fatalf("ref counts kept as %d after the reshard", p.RefCounts)
	}
	if got := answer(d.callWith(t, &container, "list-project-jobs", http.MethodGet, target, m)); got != want {
		t.Errorf("%s once the counts moved:\n%.300s\nwant, as before\n%.300s", target, got, want)
	}
}

// On AWS an index shows a write a moment after it (DynamoDB Local at once,
// so the test hides one build from it): a reshard that does not see every
// build in the indexes yet waits until it does, instead of leaving the
// unseen one under the old count's keys, where lists under the new one
// miss it.
func TestReshardBesideALaggingIndex(t *testing.T) {
	d := newDemo(t, 60)
	id := jobsOf(t, d, 1, func(j *jobs.Job) bool { return j.Ref != "" })[0]
	opts := d.DynamoDB.Options()
	hid := testenv.HideFromIndexes(&opts, "J#"+strconv.FormatInt(id, 10), 3)
	moved, err := store.New(dynamodb.New(opts), d.Table).Reshard(context.Background(), 1, 4, 0, nil)
	if err != nil {
		t.Fatalf("reshard: %v", err)
	}
	d.coldContainer()
	all := listAll(t, d, "/api/v4/projects/1/jobs?per_page=100")
	if p := d.project(t, 1); int64(len(all)) != p.Builds || int64(moved) != p.Builds || !slices.Contains(all, id) {
		t.Errorf("%d builds listed (job %d among them: %v), %d moved, project counts %d", len(all), id, slices.Contains(all, id), moved, p.Builds)
	}
	for ref, want := range buildsByRef(t, d) {
		if got := listAll(t, d, "/api/v4/projects/1/jobs?per_page=100&ref="+url.QueryEscape(ref)); !slices.Equal(got, want) {
			t.Errorf("ref %s lists %d builds, want %d", ref, len(got), len(want))
		}
	}
	if hid.Load() != 3 {
		t.Errorf("the indexes hid job %d from %d Queries, want 3", id, hid.Load())
	}
}
