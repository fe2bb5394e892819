// Package testenv gives tests the real local stack: one DynamoDB Local per
// test binary (started by the first test that needs it, stopped by its
// process id when the binary's tests end) and an in-process gofakes3 per
// test, each test on its own table and bucket. The fast tier (go test
// -short, make unit) starts nothing: tests that need the stack skip there.
package testenv

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/holds"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
)

var dynamo struct {
	once     sync.Once
	mainRan  bool
	process  *localaws.Process
	endpoint string
	err      error
}

// Main runs a package's tests and stops the DynamoDB Local they started.
func Main(m *testing.M) {
	flag.Parse() // testing.Short reads the flags
	dynamo.mainRan = true
	code := m.Run()
	if dynamo.process != nil {
		dynamo.process.Stop()
	}
	os.Exit(code)
}

// Slow marks a test that needs the local stack or builds bootstraps: it
// skips in the fast tier (-short).
func Slow(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local stack: make test runs it, make unit does not")
	}
}

// dynamoDB is the endpoint of the binary's DynamoDB Local, started on the
// first call.
func dynamoDB(t testing.TB) string {
	t.Helper()
	if !dynamo.mainRan {
		t.Fatal("testenv.Main did not run: call it from TestMain")
	}
	dynamo.once.Do(func() {
		root, err := localaws.ModuleRoot()
		if err != nil {
			dynamo.err = err
			return
		}
		dynamo.process, dynamo.err = localaws.StartDynamoDB(root, "", 0)
		if dynamo.err == nil {
			dynamo.endpoint = dynamo.process.Endpoint
		}
	})
	if dynamo.err != nil {
		t.Fatal("testenv:", dynamo.err)
	}
	return dynamo.endpoint
}

// Env is one test's stack: its own table and bucket.
type Env struct {
	Deps     *api.Deps
	Counter  *Counter
	DynamoDB *dynamodb.Client
	S3       *s3.Client
	// Files is Deps.Files as the S3 store it is (tests and importers put
	// objects directly).
	Files  *jobfiles.Store
	Table  string
	Bucket string
	S3URL  string
	// DynamoURL is the endpoint of the binary's DynamoDB Local.
	DynamoURL string
}

// holdsVar, set to anything, puts every test's DynamoDB client behind
// holds (make test-holds).
const holdsVar = "JOBSAPI_TEST_HOLDS"

var seq atomic.Int64

// Config is the SDK configuration tests use: static credentials and the
// checksum settings gofakes3 needs.
func Config(t testing.TB) aws.Config {
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// New creates a table and a bucket for t and the dependencies on them.
func New(t testing.TB) *Env {
	t.Helper()
	Slow(t)
	dynamoEndpoint := dynamoDB(t)
	n := seq.Add(1)
	e := &Env{Counter: &Counter{}, Table: fmt.Sprintf("jobs-%d-%d", os.Getpid(), n), Bucket: fmt.Sprintf("artifacts-%d", n)}
	cfg := Config(t)
	e.DynamoDB = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(dynamoEndpoint)
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, e.Counter.middleware)
		// make test-holds: DynamoDB Local behind holds, which answers the
		// transaction conflicts AWS would, with the production retry policy.
		if os.Getenv(holdsVar) != "" {
			underHolds(o)
		}
	})
	h, err := localaws.NewS3(s3mem.New(), e.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.S3URL, e.DynamoURL = srv.URL, dynamoEndpoint
	e.S3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
		o.APIOptions = append(o.APIOptions, e.Counter.middleware)
	})
	st := store.New(e.DynamoDB, e.Table)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.Table)})
	})
	e.Files = jobfiles.New(e.S3, e.Bucket)
	e.Deps = &api.Deps{
		Store: st,
		Files: e.Files,
		Now:   time.Now,
		Log:   logging.New(io.Discard),
	}
	e.Counter.Reset()
	return e
}

// UnderHolds makes the dependencies reach DynamoDB Local through holds,
// which answers the transaction conflicts AWS would, with the production
// retry policy; it returns that client, for more containers' stores, and
// the transport.
func (e *Env) UnderHolds() (*dynamodb.Client, *holds.Transport) {
	opts := e.DynamoDB.Options()
	tr := underHolds(&opts)
	db := dynamodb.New(opts)
	e.Deps.Store = store.New(db, e.Table)
	return db, tr
}

// underHolds gives o the production retry policy (config.DynamoDB) with
// holds in front of its HTTP client.
func underHolds(o *dynamodb.Options) *holds.Transport {
	config.DynamoDB(o)
	tr := holds.New(o.HTTPClient, "PK", "SK")
	o.HTTPClient = tr
	return tr
}

// HideFromIndexes makes o's index Queries leave out the item whose PK is
// pk from the first times answers that would show it: an index that has
// not shown a write yet, as one on AWS may for a moment (DynamoDB Local
// shows every write at once). It returns how often it left the item out.
func HideFromIndexes(o *dynamodb.Options, pk string, times int64) *atomic.Int64 {
	var met, hid atomic.Int64
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("lagging-index", func(ctx context.Context,
			in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			q, isQuery := in.Parameters.(*dynamodb.QueryInput)
			if res, ok := out.Result.(*dynamodb.QueryOutput); ok && isQuery && q.IndexName != nil {
				res.Items = slices.DeleteFunc(res.Items, func(it map[string]types.AttributeValue) bool {
					v, _ := it["PK"].(*types.AttributeValueMemberS)
					hide := v != nil && v.Value == pk && met.Add(1) <= times
					if hide {
						hid.Add(1)
					}
					return hide
				})
			}
			return out, md, err
		}), middleware.After)
	})
	return &hid
}

// Logs makes the dependencies log into a buffer the test can read.
func (e *Env) Logs() *strings.Builder {
	var b strings.Builder
	var mu sync.Mutex
	e.Deps.Log = logging.New(lockedWriter{&b, &mu})
	return &b
}

type lockedWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Dump is every item of the table as sorted JSON lines: a Scan, fine in a
// test, to compare whole tables.
func (e *Env) Dump(t testing.TB) []string {
	t.Helper()
	var out []string
	p := dynamodb.NewScanPaginator(e.DynamoDB, &dynamodb.ScanInput{TableName: aws.String(e.Table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			// A job's L is shown decoded, its fields by name, so that
			// tests can read and filter them.
			shown := make(map[string]any, len(it))
			for name, v := range it {
				shown[name] = v
			}
			if _, ok := it["L"]; ok {
				j, err := store.DecodeJob(it)
				if err != nil {
					t.Fatal(err)
				}
				shown["L"] = j
			}
			b, err := json.Marshal(shown)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	sort.Strings(out)
	return out
}
