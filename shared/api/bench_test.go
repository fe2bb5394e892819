package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// BenchmarkListProjectJobs times list pages against DynamoDB Local and
// reports store round trips, calls and items read per page: the first page
// and a page deep in a 5,000-build project cost the same, by offset and by
// keyset, all builds or one ref's (half of them). Compare runs with
// benchstat.
func BenchmarkListProjectJobs(b *testing.B) {
	env := testenv.New(b)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), bigWorld(5000, "main", bigRef)); err != nil {
		b.Fatal(err)
	}
	h := api.ListProjectJobs.Handler(env.Deps)
	get := func(target string) *httptest.ResponseRecorder {
		return serve(b, h, target, token(demo.TokenMaintainer))
	}
	// Keyset cursors 4,000 rows deep, and 2,000 deep in the ref's list.
	walk := func(target string, pages int) string {
		for range pages {
			link := get(target).Header().Get("Link")
			target = link[strings.Index(link, "/api/v4/"):strings.Index(link, ">")]
		}
		return target
	}
	deep := walk("/api/v4/projects/1/jobs?pagination=keyset&per_page=100", 40)
	ref := "/api/v4/projects/1/jobs?" + refQuery(bigRef, nil) + "&per_page=100"
	refDeep := walk(ref+"&pagination=keyset", 20)
	cases := []struct{ name, target string }{
		{"offset/page1", "/api/v4/projects/1/jobs?per_page=100"},
		{"offset/page40", "/api/v4/projects/1/jobs?per_page=100&page=40"},
		{"keyset/first", "/api/v4/projects/1/jobs?pagination=keyset&per_page=100"},
		{"keyset/row4000", deep},
		{"scoped/two-statuses", "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed&per_page=100"},
		{"scoped/four-statuses/page13", "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed&scope[]=canceled&scope[]=skipped&per_page=100&page=13"},
		{"scoped/success/page30", "/api/v4/projects/1/jobs?scope[]=success&per_page=20&page=30"},
		{"ref/page1", ref},
		{"ref/page20", ref + "&page=20"},
		{"ref/keyset/row2000", refDeep},
		{"ref/scoped/two-statuses", ref + "&scope[]=success&scope[]=failed"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { measure(b, env, func() { get(c.target) }) })
	}
}

// BenchmarkFilteredPage500 is the deep filtered page: page 500 of
// 20 (offset 9,980) of the completed builds of a 25,000-build project
// (3,125 of each completed status), and its first page, in a warm
// container against DynamoDB Local; the same of its one ref's builds
// (ref/..., the list of ref=main together with the scopes); a walk of
// pages 500 to 509, one after the other (walk10: an op is the ten pages);
// and a deep page of one status, an eighth of the builds (sparse/...).
func BenchmarkFilteredPage500(b *testing.B) {
	env := testenv.New(b)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), bigWorld(25000, "main")); err != nil {
		b.Fatal(err)
	}
	h := api.ListProjectJobs.Handler(env.Deps)
	completed := "/api/v4/projects/1/jobs?scope[]=success&scope[]=failed&scope[]=canceled&scope[]=skipped&per_page=20"
	page := func(target string) {
		if w := serve(b, h, target, token(demo.TokenMaintainer)); w.Code != 200 || !strings.Contains(w.Body.String(), `"id"`) {
			b.Fatalf("%d %.200s", w.Code, w.Body)
		}
	}
	for _, c := range []struct{ name, target string }{{"page1", completed}, {"page500", completed + "&page=500"},
		{"ref/page1", completed + "&ref=main"}, {"ref/page500", completed + "&ref=main&page=500"},
		{"sparse/page80", "/api/v4/projects/1/jobs?scope[]=canceled&per_page=20&page=80"}} {
		b.Run(c.name, func(b *testing.B) { measure(b, env, func() { page(c.target) }) })
	}
	b.Run("walk10", func(b *testing.B) {
		measure(b, env, func() {
			for n := 500; n < 510; n++ {
				page(completed + "&page=" + strconv.Itoa(n))
			}
		})
	})
}

// BenchmarkReadEndpoints serves the budget tests' requests (20-job pages and
// single reads on the demo world) in a warm container against DynamoDB
// Local, with their round trips, calls, items read and read units per
// request. Sub-benchmarks are named <function>/<request>, as
// BenchmarkHandlerCPU's, for cmd/benchreport to join them.
func BenchmarkReadEndpoints(b *testing.B) {
	env := testenv.New(b)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), demo.Seed(200)); err != nil {
		b.Fatal(err)
	}
	for _, c := range budgetCases {
		h := api.Function(c.function).Handler(env.Deps)
		b.Run(c.function+"/"+strings.ReplaceAll(c.name, " ", "-"), func(b *testing.B) {
			measure(b, env, func() { serve(b, h, c.target, c.header) })
		})
	}
}

// BenchmarkHandlerCPU is the handlers' own CPU: DynamoDB's responses,
// recorded once, are replayed from memory (no network, no DynamoDB), so
// ns/op and allocs/op are parsing, authorization, decoding and rendering.
// Each request's "marshal" twin is json.Marshal of the very page it
// rendered, the serialization floor it is held against.
func BenchmarkHandlerCPU(b *testing.B) {
	env := testenv.New(b)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), demo.Seed(200)); err != nil {
		b.Fatal(err)
	}
	rec := &replayer{base: http.DefaultClient, recorded: map[string]recorded{}}
	client := dynamodb.NewFromConfig(testenv.Config(b), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(env.DynamoURL)
		o.DisableValidateResponseChecksum = true
		o.HTTPClient = rec
	})
	deps := *env.Deps
	deps.Store = store.New(client, env.Table)
	for _, c := range budgetCases {
		if c.function == string(api.GetJobTrace) {
			continue // its cost is S3's
		}
		h := api.Function(c.function).Handler(&deps)
		name := c.function + "/" + strings.ReplaceAll(c.name, " ", "-")
		rec.record(true)
		serve(b, h, c.target, c.header) // cold
		body := serve(b, h, c.target, c.header).Body.Bytes()
		rec.record(false)
		// The page cache's miss: what every page costs at least once per
		// container and PageTTL, the figure the goal is held to.
		b.Run(name+"/handler", func(b *testing.B) {
			cpuTimed(b, func() {
				deps.Store.ForgetPages()
				serve(b, h, c.target, c.header)
			})
		})
		if strings.HasPrefix(c.function, "list-") {
			b.Run(name+"/cached", func(b *testing.B) {
				cpuTimed(b, func() { serve(b, h, c.target, c.header) })
			})
		}
		b.Run(name+"/marshal", func(b *testing.B) {
			cpuTimed(b, func() {
				if _, err := json.Marshal(json.RawMessage(body)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// cpuTimed runs op in the benchmark loop and reports, besides ns/op and
// allocations, the process's CPU time per op (user and system, all threads:
// the garbage collector's too), which a busy shared machine inflates far
// less than the wall clock: replayed requests wait for nothing.
func cpuTimed(b *testing.B, op func()) {
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// replayer is an HTTP client for the DynamoDB client that, while recording,
// passes requests on and keeps the responses, and else answers each request
// with the response recorded for it, without the network. A request never
// seen (a warm cache entry expired in a long run asks a new combination of
// keys) goes to DynamoDB Local once and is recorded too.
type replayer struct {
	base      *http.Client
	mu        sync.Mutex
	recording bool
	recorded  map[string]recorded
}

type recorded struct {
	status int
	header http.Header
	body   []byte
}

func (r *replayer) record(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recording = on
}

// requestKey names a request by operation and body. The SDK writes a map's
// keys in Go's random order, so the body is summarized by its length and
// byte sum, which do not depend on that order.
func requestKey(op string, body []byte) string {
	sum := 0
	for _, c := range body {
		sum += int(c)
	}
	return fmt.Sprintf("%s %d %d", op, len(body), sum)
}

func (r *replayer) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	key := requestKey(req.Header.Get("X-Amz-Target"), body)
	r.mu.Lock()
	recording := r.recording
	got, ok := r.recorded[key]
	r.mu.Unlock()
	if !recording && ok {
		return &http.Response{StatusCode: got.status, Header: got.header.Clone(),
			Body: io.NopCloser(bytes.NewReader(got.body)), ContentLength: int64(len(got.body)), Request: req}, nil
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	res, err := r.base.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.recorded[key] = recorded{res.StatusCode, res.Header.Clone(), rb}
	r.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(rb))
	return res, nil
}

// serve answers one GET with h, which must succeed.
func serve(b *testing.B, h http.Handler, target string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatalf("%s: %d %.200s", target, w.Code, w.Body)
	}
	return w
}

// measure runs op in the benchmark loop and reports its sequential store
// round trips, calls, items read and read units per op.
func measure(b *testing.B, env *testenv.Env, op func()) {
	op() // the container is warm
	env.Counter.Reset()
	for b.Loop() {
		env.Deps.Store.ForgetPages() // the page cache's miss: a page's Queries
		op()
	}
	b.ReportMetric(float64(env.Counter.RoundTrips())/float64(b.N), "trips/op")
	b.ReportMetric(float64(env.Counter.Total())/float64(b.N), "calls/op")
	b.ReportMetric(float64(env.Counter.Scanned())/float64(b.N), "items/op")
	b.ReportMetric(env.Counter.Capacity()/float64(b.N), "RU/op")
}
