package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/agreement"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/holds"
)

// fault is what the faulty transport does with one HTTP attempt.
type fault int

const (
	pass     fault = iota
	fail500        // the service answers 500 InternalServerError
	throttle       // the service answers its throttling error
	reset          // the connection resets before an answer
	stall          // no answer until the attempt is abandoned
	lost           // the service applies the request, the answer is lost
	conflict       // DynamoDB cancels a transaction for another in flight on its last item
	busy           // DynamoDB rejects a single write for a transaction in flight on its item
)

// faulty is an HTTP transport in front of the real local DynamoDB and S3:
// plan decides, per attempt of an operation (GetItem, DeleteObjects, ...),
// which fault it meets. The clients above it are configured as in
// production (config.DynamoDB, s3config.Options).
type faulty struct {
	next aws.HTTPClient
	mu   sync.Mutex
	plan func(op string) fault
}

func (f *faulty) Do(r *http.Request) (*http.Response, error) {
	op := awsmiddleware.GetOperationName(r.Context())
	f.mu.Lock()
	what := f.plan(op)
	f.mu.Unlock()
	s3 := r.Header.Get("X-Amz-Target") == ""
	switch what {
	case fail500:
		return errorResponse(r, 500, s3, "InternalServerError", "InternalError"), nil
	case throttle:
		if s3 {
			return errorResponse(r, 503, s3, "", "SlowDown"), nil
		}
		return errorResponse(r, 400, s3, "ProvisionedThroughputExceededException", ""), nil
	case reset:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	case stall:
		<-r.Context().Done()
		return nil, r.Context().Err()
	case conflict:
		return conflictResponse(r), nil
	case busy:
		return holds.Rejected(r), nil
	case lost:
		resp, err := f.next.Do(r)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return f.next.Do(r)
}

func errorResponse(r *http.Request, status int, s3 bool, dynamoType, s3Code string) *http.Response {
	if !s3 {
		return response(r, status, "application/x-amz-json-1.0", `{"__type":"com.amazonaws.dynamodb.v20120810#`+dynamoType+`","message":"injected"}`)
	}
	return response(r, status, "application/xml", `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+s3Code+`</Code><Message>injected</Message></Error>`)
}

// conflictResponse is DynamoDB's answer to a TransactWriteItems whose last
// item another transaction holds: canceled, one reason per item.
func conflictResponse(r *http.Request) *http.Response {
	var in struct{ TransactItems []json.RawMessage }
	if raw, err := io.ReadAll(r.Body); err == nil {
		_ = json.Unmarshal(raw, &in)
	}
	reasons := make([]string, max(len(in.TransactItems), 1))
	for i := range reasons {
		reasons[i] = "None"
	}
	reasons[len(reasons)-1] = "TransactionConflict"
	return holds.Canceled(r, reasons)
}

func response(r *http.Request, status int, contentType, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

// faultyDeps are d's dependencies on d's table and bucket through clients
// configured as in production, with f in front of both services.
func faultyDeps(d *fixture, f *faulty, budget api.Budget) *api.Deps {
	dopts := d.DynamoDB.Options()
	config.DynamoDB(&dopts)
	f.next, dopts.HTTPClient = dopts.HTTPClient, f
	sopts := d.S3.Options()
	s3config.Options(&sopts)
	sopts.HTTPClient = &faulty{next: sopts.HTTPClient, plan: func(op string) fault { return f.plan(op) }}
	deps := *d.Deps
	deps.Store = store.New(dynamodb.New(dopts), d.Table)
	deps.Files = jobfiles.New(s3.New(sopts), d.Bucket)
	deps.Budget = budget
	return &deps
}

// eventsOf reads every event in events/ with its function.
func eventsOf(t *testing.T) (fns []api.Function, evs []events.APIGatewayV2HTTPRequest) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no events", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		fns = append(fns, agreement.FunctionOf(file, api.Functions()))
		evs = append(evs, ev)
	}
	return fns, evs
}

// invoke runs ev through fn's real Lambda handler with the function's
// deadline `remaining` away, and reports whether the answer came before it.
func invoke(t *testing.T, deps *api.Deps, fn api.Function, ev events.APIGatewayV2HTTPRequest, remaining time.Duration) (events.APIGatewayV2HTTPResponse, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), remaining)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: lambdaRequestID})
	resp, err := lambdafn.Adapter(fn.Handler(deps))(ctx, ev)
	if err != nil {
		t.Fatalf("function error %v", err)
	}
	return resp, ctx.Err() == nil
}

const unavailableBody = `{"message":"503 Service Unavailable"}`

// With DynamoDB or S3 stalled, or throttling past the retries, every
// endpoint answers GitLab-shaped 503 with Retry-After before the function's
// deadline, never hangs into Lambda's timeout nor answers 500.
func TestUnavailableDependencyAnswers503InTime(t *testing.T) {
	d := newDemo(t, 5)
	fns, evs := eventsOf(t)
	cases := []struct {
		name string
		plan func(op string) fault
	}{
		{"DynamoDB stalled", func(op string) fault {
			if isS3(op) {
				return pass
			}
			return stall
		}},
		{"S3 stalled", func(op string) fault {
			if isS3(op) {
				return stall
			}
			return pass
		}},
		{"everything throttles", func(string) fault { return throttle }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The function has 2 s left and keeps 1.95 s for its answer:
			// its calls get 50 ms.
			deps := faultyDeps(d, &faulty{plan: c.plan}, api.Budget{Reserve: 1950 * time.Millisecond})
			for i, ev := range evs {
				resp, inTime := invoke(t, deps, fns[i], ev, 2*time.Second)
				if !inTime {
					t.Errorf("%s %s: answered after the function's deadline", fns[i], ev.RawPath)
				}
				body := unavailableBody
				if ev.RequestContext.HTTP.Method == http.MethodHead {
					body = "" // HEAD is answered as GET without the body
				}
				if resp.StatusCode >= 500 && (resp.StatusCode != 503 || resp.Body != body || resp.Headers["Retry-After"] == "") {
					t.Errorf("%s %s: %d %v %s, want 503 with Retry-After", fns[i], ev.RawPath, resp.StatusCode, resp.Headers, resp.Body)
				}
			}
		})
	}
}

// Every endpoint meets each other fault of DynamoDB and S3 on every call
// (500s, connection resets, answers lost after the request was applied):
// each answers in time, in GitLab's shape — its own answer, GitLab's 500
// or the 503 with Retry-After — never a function error or a bare 500.
func TestEveryEndpointUnderEveryFault(t *testing.T) {
	fns, evs := eventsOf(t)
	for _, c := range []struct {
		name  string
		fault fault
	}{{"500s", fail500}, {"resets", reset}, {"answers lost", lost}} {
		for _, where := range []string{"DynamoDB", "S3"} {
			t.Run(where+" "+c.name, func(t *testing.T) {
				d := newDemo(t, 5)
				deps := faultyDeps(d, &faulty{plan: func(op string) fault {
					if isS3(op) == (where == "S3") {
						return c.fault
					}
					return pass
				}}, api.Budget{Reserve: 1950 * time.Millisecond})
				for i, ev := range evs {
					resp, inTime := invoke(t, deps, fns[i], ev, 2*time.Second)
					if !inTime {
						t.Errorf("%s %s: answered after the function's deadline", fns[i], ev.RawPath)
					}
					if resp.StatusCode < 500 || ev.RequestContext.HTTP.Method == http.MethodHead {
						continue
					}
					switch {
					case resp.StatusCode == 500 && resp.Body == `{"message":"500 Internal Server Error"}`:
					case resp.StatusCode == 503 && resp.Body == unavailableBody && resp.Headers["Retry-After"] != "":
					default:
						t.Errorf("%s %s: %d %v %s, want GitLab's 500 or the 503", fns[i], ev.RawPath, resp.StatusCode, resp.Headers, resp.Body)
					}
				}
			})
		}
	}
}

func isS3(op string) bool {
	switch op {
	case "GetObject", "PutObject", "DeleteObjects", "ListObjectsV2", "HeadObject", "DeleteObject":
		return true
	}
	return false
}

// After a burst of failing calls, one transient fault is absorbed by the
// retryer: no retry quota left empty by the burst turns it into a 500.
func TestTransientFaultAfterBurstIsAbsorbed(t *testing.T) {
	d := newDemo(t, 5)
	f := &faulty{plan: func(string) fault { return fail500 }}
	deps := faultyDeps(d, f, api.Budget{})
	ev := readEvent(t, "get-job.json")
	for range 20 {
		if resp, _ := invoke(t, deps, api.GetJob, ev, time.Minute); resp.StatusCode != 500 {
			t.Fatalf("burst answered %d", resp.StatusCode)
		}
	}
	for _, once := range []fault{fail500, throttle, reset, lost} {
		faulted := false
		f.plan = func(string) fault {
			if faulted {
				return pass
			}
			faulted = true
			return once
		}
		if resp, _ := invoke(t, deps, api.GetJob, ev, time.Minute); resp.StatusCode != 200 {
			t.Errorf("fault %d after the burst: %d %s", once, resp.StatusCode, resp.Body)
		}
	}
}

// A single write that DynamoDB rejects for a transaction in flight on its
// item did not happen, and is sent again (the SDK's standard retryer would
// not; DynamoDB Local never rejects one): jobsctl reshard's first mark of
// the project item, which every creating transaction names, is rejected
// twice, and the reshard goes through.
func TestWriteRejectedForATransactionIsSentAgain(t *testing.T) {
	d := newDemo(t, 5)
	rejected := 0
	f := &faulty{plan: func(op string) fault {
		if op == "UpdateItem" && rejected < 2 {
			rejected++
			return busy
		}
		return pass
	}}
	st := faultyDeps(d, f, api.Budget{}).Store
	if _, err := st.Reshard(context.Background(), 1, 2, 0, nil); err != nil || rejected != 2 {
		t.Fatalf("reshard: %v after %d rejections", err, rejected)
	}
	if p := d.project(t, 1); p.Shards != 2 {
		t.Errorf("project 1 in %d shards, want 2", p.Shards)
	}
}

// Concurrent writers meet the conflicts DynamoDB answers on AWS (holds: a
// transaction holds its items until it commits), each a container of its
// own with the production retry policy: ten retries of different jobs of
// one project, whose creating transactions all name the project's item,
// and ten cancels, all at once. Every one succeeds, the new builds take the
// next ordinals without a gap, and every pipeline's counts agree with its
// jobs.
func TestConcurrentActionsUnderHolds(t *testing.T) {
	d := newDemo(t, 40)
	ctx := context.Background()
	db, tr := d.UnderHolds()
	type task struct {
		st  *store.Store
		lk  *store.Found
		act jobs.Action
	}
	var tasks []task
	for _, c := range []struct {
		pick func(*jobs.Job) bool
		act  jobs.Action
	}{{retryable, jobs.Retry(2, fixedNow)}, {func(j *jobs.Job) bool { return j.Status.Cancelable() }, jobs.Cancel(false, fixedNow)}} {
		for _, id := range jobsOf(t, d, 10, c.pick) {
			st := store.New(db, d.Table)
			lk, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: 1}, JobID: id})
			if err != nil || lk.Job == nil {
				t.Fatal(id, err)
			}
			tasks = append(tasks, task{st, lk, c.act})
		}
	}
	shown := make([]*jobs.Job, len(tasks))
	var wg sync.WaitGroup
	for i, tk := range tasks {
		wg.Go(func() {
			j, err := tk.st.Apply(ctx, tk.lk.Project, tk.lk.Job, tk.act)
			if err != nil {
				t.Errorf("job %d: %v", tk.lk.Job.ID, err)
			}
			shown[i] = j
		})
	}
	wg.Wait()
	if tr.Conflicts() == 0 {
		t.Error("no conflict answered: the writers did not meet")
	}
	var created, ordinals []int64
	for i, j := range shown {
		switch {
		case j == nil:
		case j.ID != tasks[i].lk.Job.ID:
			created, ordinals = append(created, j.ID), append(ordinals, d.stored(t, j.ID).Ordinal)
		case j.Status != jobs.Canceled && j.Status != jobs.Canceling:
			t.Errorf("job %d %s after its cancel", j.ID, j.Status)
		}
	}
	slices.Sort(ordinals)
	for i, o := range ordinals {
		if want := d.builds(1) + 1 + int64(i); o != want {
			t.Errorf("new builds' ordinals %v, want %d on from %d", ordinals, len(ordinals), d.builds(1)+1)
			break
		}
	}
	if len(created) != 10 {
		t.Errorf("%d builds created, want 10", len(created))
	}
	mustCountRight(t, d, created...)
	t.Logf("%d conflicts answered", tr.Conflicts())
}

// An attempt that DynamoDB accepts and never answers is abandoned after
// the transport's per-attempt timeout (config.HTTPClient; 100 ms here, 2 s
// in production) and retried on a new connection: the request succeeds.
func TestStalledAttemptIsRetried(t *testing.T) {
	d := newDemo(t, 5)
	dopts := d.DynamoDB.Options()
	config.DynamoDB(&dopts)
	dopts.HTTPClient = config.HTTPClient(100 * time.Millisecond)
	dopts.BaseEndpoint = aws.String(stallFirst(t, strings.TrimPrefix(aws.ToString(dopts.BaseEndpoint), "http://")))
	deps := *d.Deps
	deps.Store = store.New(dynamodb.New(dopts), d.Table)
	resp, inTime := invoke(t, &deps, api.GetJob, readEvent(t, "get-job.json"), time.Minute)
	if resp.StatusCode != 200 || !inTime {
		t.Errorf("got %d %s", resp.StatusCode, resp.Body)
	}
}

// stallFirst is a TCP proxy to target whose first connection is accepted
// and never answered; it stops with the test.
func stallFirst(t *testing.T, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	track := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			track(c)
			if n == 0 {
				continue // held open, never read: a stalled service
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			track(up)
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return "http://" + l.Addr().String()
}

func readEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}
