// Package config builds the handlers' dependencies from the environment,
// once per cold start: the SDK's standard chain (AWS_REGION, credentials,
// AWS_ENDPOINT_URL_DYNAMODB, checksum settings) plus JOBS_TABLE. The S3
// half (ARTIFACTS_BUCKET) is shared/config/s3config, an Option.
package config

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// AWS is the SDK's configuration from its standard environment: region,
// credentials, endpoints (AWS_ENDPOINT_URL_*), checksum settings.
func AWS(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	return cfg, nil
}

// DynamoDBClient is the DynamoDB client of cfg, with the policy below.
func DynamoDBClient(cfg aws.Config) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, DynamoDB, func(o *dynamodb.Options) {
		// TLS already guards integrity; DynamoDB Local sends no CRC on
		// errors, which would log a warning per conditional failure.
		o.DisableValidateResponseChecksum = true
	})
}

// warmConnections opens n of c's connections while the function finishes
// its init and waits for its first event, so that the first request finds
// them open instead of paying the dial and TLS handshake (and, against
// DynamoDB Local, a slower first answer on a new connection): two, as a
// list page's first round trip makes two calls at once (the lookup's and
// the page's Query). GET / needs neither a signature nor a permission:
// DynamoDB answers it with a health line, and the answer, whatever it is,
// leaves the connection in the client's pool. A request that comes first
// opens its own.
func warmConnections(c *dynamodb.Client, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	o := c.Options()
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, dynamodb.EndpointParameters{
		Region: aws.String(o.Region), Endpoint: o.BaseEndpoint,
		UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
	if err != nil {
		return // the first request reports it
	}
	// Each holds its answer until all have one: a connection is back in
	// the pool, for the next to reuse, only once its body is closed.
	var wg, answered sync.WaitGroup
	answered.Add(n)
	for range n {
		wg.Go(func() {
			res, err := get(ctx, o.HTTPClient, ep.URI.String())
			answered.Done()
			answered.Wait()
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
}

func get(ctx context.Context, c aws.HTTPClient, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// Retry and time policy of the clients, for a function that serves one
// request at a time within a 10 s timeout (template.yaml) and whose
// requests make two to four sequential calls:
//   - an attempt that has no response headers after attemptTimeout (or no
//     connection after dialTimeout) is abandoned and retried: DynamoDB
//     answers in milliseconds, so a silent one is stalled, not busy;
//   - a single write DynamoDB rejected for a transaction in flight on its
//     item (TransactionConflictException: DynamoDB Local never answers it)
//     is retried, as throttling is;
//   - maxAttempts per call, with full-jitter backoff from backoffBase to
//     backoffCap, throttling included (the SDK's own backoff starts
//     throttled retries at 1 s, which alone would spend a request's time);
//   - no retry quota: the standard retryer's token bucket guards a long-lived
//     client against retry storms, but here each environment serves one
//     request at a time and every call is bounded by its attempts and the
//     request's deadline (api.Budget), so the bucket only turned one
//     transient fault after a burst into the client's 500.
const (
	maxAttempts    = 4
	attemptTimeout = 2 * time.Second
	dialTimeout    = time.Second
	backoffBase    = 25 * time.Millisecond
	backoffCap     = 300 * time.Millisecond
)

// Policy is the retryer and HTTP client of the policy above, for a client
// of any service.
func Policy() (aws.Retryer, aws.HTTPClient) { return Retryer(), HTTPClient(attemptTimeout) }

// DynamoDB applies the retry and time policy to a DynamoDB client.
func DynamoDB(o *dynamodb.Options) { o.Retryer, o.HTTPClient = Policy() }

// Retryer is the SDK retryer of the policy above.
func Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(backoff)
		// A single write that DynamoDB rejects because a transaction on its
		// item is in flight did not happen: it is sent again, as the
		// standard retryer does not. (A transaction's own conflict is a
		// TransactionCanceledException, which store.Apply handles: its
		// conditions may be what failed.)
		o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{"TransactionConflictException": {}}})
	})
}

// backoff is full jitter: uniform in [0, min(cap, base·2^attempt)).
func backoff(attempt int, _ error) (time.Duration, error) {
	ceiling := backoffCap
	if attempt < 8 {
		ceiling = min(backoffCap, backoffBase<<attempt)
	}
	return rand.N(ceiling), nil
}

// HTTPClient bounds each attempt: connecting, the TLS handshake and waiting
// for the response headers each within perAttempt at most. A body that
// stops half-way is bounded by the request's deadline.
func HTTPClient(perAttempt time.Duration) aws.HTTPClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = min(dialTimeout, perAttempt) }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = min(dialTimeout, perAttempt)
			t.ResponseHeaderTimeout = perAttempt
		})
}

// An Option adds a dependency that not every function needs, so that only
// the bootstraps that pass it link its client (s3config.Files: the job
// files in S3).
type Option func(cfg aws.Config, d *api.Deps) error

// Load builds the handlers' dependencies from the environment: the store
// (JOBS_TABLE), the clock, the log and the request budget, then the
// options'.
func Load(ctx context.Context, with ...Option) (*api.Deps, error) {
	table := os.Getenv("JOBS_TABLE")
	if table == "" {
		return nil, fmt.Errorf("JOBS_TABLE must be set")
	}
	now, err := clock()
	if err != nil {
		return nil, err
	}
	cfg, err := AWS(ctx)
	if err != nil {
		return nil, err
	}
	db := DynamoDBClient(cfg)
	go warmConnections(db, 2)
	d := &api.Deps{
		Store:  store.New(db, table),
		Now:    now,
		Log:    logging.New(os.Stdout),
		Budget: api.Budget{Max: requestTimeout, Reserve: reserve},
	}
	for _, o := range with {
		if err := o(cfg, d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// A request's calls end requestTimeout after it began, and at the latest
// reserve before the function's own deadline: time to log and to answer
// GitLab's 503 rather than be killed into API Gateway's bare 500.
const (
	requestTimeout = 6 * time.Second
	reserve        = 1500 * time.Millisecond
)

// FixedTimeEnv, when set (RFC 3339), stops the handlers' clock there, so that
// a bootstrap under the emulator renders durations and expiries as the
// golden responses do. Never set on AWS (the agreement test checks the template).
const FixedTimeEnv = "JOBS_API_FIXED_TIME"

func clock() (func() time.Time, error) {
	v := os.Getenv(FixedTimeEnv)
	if v == "" {
		return time.Now, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FixedTimeEnv, err)
	}
	return func() time.Time { return t }, nil
}
