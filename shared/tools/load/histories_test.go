package load_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/gateway"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/load"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// A project's histories in a random order (seeded: retries and cancels
// through the API, imports of older builds that renumber the stored ones,
// reshards to 1, 2, 4 or 8 shards, recounts) leave every list a client
// reads through the API, at every depth, as a scan of the table gives it:
// the whole list, one or more scopes (deep pages of completed ones read
// through the rank counts), a ref's, a ref's with a scope, offset pages and
// a keyset walk. The steps are each tested alone elsewhere; here they meet
// in orders no other test runs.
func TestHistoriesListAsTheTable(t *testing.T) {
	// One history by default, the same in every run; JOBSAPI_TEST_SEED
	// picks another (make test-histories tries new ones).
	seed := uint64(1)
	if s, err := strconv.ParseUint(os.Getenv("JOBSAPI_TEST_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (JOBSAPI_TEST_SEED=%d runs these steps again)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	env := testenv.New(t)
	ctx := context.Background()

	// Pipelines held back in three parts, of every age: each import of a
	// part renumbers the stored builds newer than its oldest.
	w := demo.Seed(1200)
	var parts [4]world.World
	for i := range parts {
		parts[i] = *w
		parts[i].Jobs = nil
	}
	for _, raw := range w.Jobs {
		var j struct {
			Pipeline struct {
				ID int64 `json:"id"`
			} `json:"pipeline"`
		}
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatal(err)
		}
		part := 0
		if pl := j.Pipeline.ID; pl%9 < 3 {
			part = 1 + int(pl%9)
		}
		parts[part].Jobs = append(parts[part].Jobs, raw)
	}
	parts[0].Projects = slices.Clone(w.Projects)
	parts[0].Projects[0].Shards = 4
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(ctx, &parts[0]); err != nil {
		t.Fatal(err)
	}
	held := parts[1:]

	base := serve(t, env)
	client := &http.Client{Timeout: time.Minute}
	st := env.Deps.Store
	// Every kind of step, some twice, in the seed's order.
	steps := []string{"retry", "cancel", "import", "reshard", "recount", "retry", "cancel", "import", "reshard"}
	rng.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
	for step, kind := range steps {
		builds := table(t, env, demo.ProjectBackend)
		switch kind {
		case "retry", "cancel":
			pick := (*jobs.Job).Retryable
			if kind == "cancel" {
				pick = func(j *jobs.Job) bool { return j.Status.Cancelable() }
			}
			var ids []int64
			for _, j := range builds {
				if pick(j) {
					ids = append(ids, j.ID)
				}
			}
			for range 1 + rng.IntN(6) {
				if len(ids) == 0 {
					break
				}
				i := rng.IntN(len(ids))
				post(t, client, fmt.Sprintf("%s/projects/1/jobs/%d/%s", base, ids[i], kind))
				ids = slices.Delete(ids, i, i+1)
			}
		case "import":
			if _, err := im.Import(ctx, &held[0]); err != nil {
				t.Fatal(err)
			}
			held = held[1:]
		case "reshard":
			n := []int{1, 2, 4, 8}[rng.IntN(4)]
			kind = fmt.Sprintf("reshard to %d", n)
			if _, err := st.Reshard(ctx, demo.ProjectBackend, n, store.WarmTTL, nil); err != nil {
				t.Fatal(err)
			}
		case "recount":
			if _, err := st.Recount(ctx, demo.ProjectBackend); err != nil {
				t.Fatal(err)
			}
		}
		when := fmt.Sprintf("step %d (%s)", step, kind)
		t.Log(when)
		bad, err := load.Check(ctx, load.Stack{DynamoDB: env.DynamoDB, S3: env.S3, Table: env.Table, Bucket: env.Bucket})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Errorf("%s: %s", when, b)
		}
		checkLists(t, rng, client, base, table(t, env, demo.ProjectBackend), when)
	}
}

// lists are the lists checkLists reads: query, and which builds they hold.
var lists = []struct {
	query string
	keep  func(*jobs.Job) bool
}{
	{"", func(*jobs.Job) bool { return true }},
	{"scope[]=success", func(j *jobs.Job) bool { return j.Status == jobs.Success }},
	{"scope[]=success&scope[]=failed&scope[]=canceled&scope[]=skipped", func(j *jobs.Job) bool { return j.Status.Completed() }},
	{"scope[]=canceled&scope[]=pending", func(j *jobs.Job) bool { return j.Status == jobs.Canceled || j.Status == jobs.Pending }},
	{"ref=main", func(j *jobs.Job) bool { return j.Ref == "main" }},
	{"ref=feature%2Flogin&scope[]=success&scope[]=failed", func(j *jobs.Job) bool {
		return j.Ref == "feature/login" && (j.Status == jobs.Success || j.Status == jobs.Failed)
	}},
}

// checkLists reads pages of every list at random depths (and at the last
// page, and past it), and walks the whole list by keyset, against builds
// (every build of the project, newest first).
func checkLists(t *testing.T, rng *rand.Rand, client *http.Client, base string, builds []*jobs.Job, when string) {
	t.Helper()
	for _, l := range lists {
		var want []int64
		for _, j := range builds {
			if l.keep(j) {
				want = append(want, j.ID)
			}
		}
		per := []int{1, 7, 20, 100}[rng.IntN(4)]
		last := (len(want) + per - 1) / per
		pages := []int{1, last, last + 1, 1 + rng.IntN(max(last, 1))}
		if deep := 500/per + 1; deep < last {
			pages = append(pages, deep+rng.IntN(last-deep)) // past offset 500: through the rank counts
		}
		for _, page := range pages {
			if page < 1 {
				continue
			}
			q := fmt.Sprintf("%s/projects/1/jobs?per_page=%d&page=%d", base, per, page)
			if l.query != "" {
				q += "&" + l.query
			}
			got, _ := get(t, client, q)
			lo, hi := min((page-1)*per, len(want)), min(page*per, len(want))
			if !slices.Equal(got, want[lo:hi]) {
				t.Fatalf("%s: %s: got %v, want %v", when, q, got, want[lo:hi])
			}
		}
		if l.query == "" || l.query == "ref=main" {
			var walked []int64
			next := fmt.Sprintf("%s/projects/1/jobs?pagination=keyset&order_by=id&sort=desc&per_page=100", base)
			if l.query != "" {
				next += "&" + l.query
			}
			for next != "" {
				var got []int64
				got, next = get(t, client, next)
				walked = append(walked, got...)
			}
			if !slices.Equal(walked, want) {
				t.Fatalf("%s: keyset walk of %q: %d builds, want %d (first difference at %d)", when, l.query, len(walked), len(want), firstDiff(walked, want))
			}
		}
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// table is every build of project pid as a strongly consistent scan of
// the table holds it, newest first: what no index or count is part of.
func table(t *testing.T, env *testenv.Env, pid int64) []*jobs.Job {
	t.Helper()
	var out []*jobs.Job
	p := dynamodb.NewScanPaginator(env.DynamoDB, &dynamodb.ScanInput{TableName: aws.String(env.Table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			pk, _ := it["PK"].(*types.AttributeValueMemberS)
			sk, _ := it["SK"].(*types.AttributeValueMemberS)
			if pk == nil || sk == nil || !strings.HasPrefix(pk.Value, "J#") || sk.Value != store.JobSK {
				continue
			}
			j, err := store.DecodeJob(it)
			if err != nil {
				t.Fatal(err)
			}
			if j.ProjectID == pid && j.Kind == jobs.Build {
				out = append(out, j)
			}
		}
	}
	slices.SortFunc(out, func(a, b *jobs.Job) int { return cmp.Compare(b.ID, a.ID) })
	return out
}

// serve is the API of env through the local gateway, in process.
func serve(t *testing.T, env *testenv.Env) string {
	t.Helper()
	root, err := localaws.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := sam.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	handlers := map[string]http.Handler{}
	for _, f := range api.Functions() {
		handlers[string(f)] = f.Handler(env.Deps)
	}
	srv := httptest.NewServer(gateway.Handler(gateway.NewRouter(tmpl), gateway.InProcess(handlers)))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/v4"
}

var nextLink = regexp.MustCompile(`<([^>]+)>; rel="next"`)

// get reads a list page: its jobs' ids, and its rel="next" link.
func get(t *testing.T, client *http.Client, u string) ([]int64, string) {
	t.Helper()
	resp := send(t, client, http.MethodGet, u, http.StatusOK)
	defer resp.Body.Close()
	var page []struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(u, err)
	}
	ids := make([]int64, len(page))
	for i, j := range page {
		ids[i] = j.ID
	}
	next := ""
	if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
		next = m[1]
	}
	return ids, next
}

// post runs an action; a 201 is what GitLab answers.
func post(t *testing.T, client *http.Client, u string) {
	t.Helper()
	send(t, client, http.MethodPost, u, http.StatusCreated).Body.Close()
}

// send makes a request as the demo's maintainer and wants status back.
func send(t *testing.T, client *http.Client, method, u string, status int) *http.Response {
	t.Helper()
	rq, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("PRIVATE-TOKEN", demo.TokenMaintainer)
	resp, err := client.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		resp.Body.Close()
		t.Fatalf("%s %s: %s", method, u, resp.Status)
	}
	return resp
}
