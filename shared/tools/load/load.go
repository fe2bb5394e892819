// Package load drives a bounded mix of reads, keyset walks and job actions
// at a running Jobs API on loopback, then checks what must hold of the
// stored jobs whatever the interleaving (see Check). It stops by itself:
// after Options.Duration or Options.MaxRequests, whichever comes first.
package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options bound a run.
type Options struct {
	BaseURL     string        // the API's /api/v4 URL, on a loopback address
	Projects    []string      // project ids or paths to work on
	Tokens      []string      // personal access tokens that may act on them (Developer and up)
	Duration    time.Duration // at most this long
	MaxRequests int           // at most this many requests
	Workers     int           // requests in flight
	Seed        uint64        // the workload's random choices
}

// Report is what a run did.
type Report struct {
	Requests  int
	ByStatus  map[int]int              // responses per status code
	ByKind    map[string]int           // requests per kind (list, keyset, job, trace, retry, ...)
	ServerErr []string                 // every 5xx: method, path, status
	Elapsed   time.Duration            //
	Latency   map[string]time.Duration // the slowest response per kind
}

// ErrNotLoopback refuses a target that is not on this machine.
var ErrNotLoopback = fmt.Errorf("load: only loopback targets (127.0.0.0/8, ::1, localhost)")

// Run drives the mix until its bounds; ctx ends it earlier.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := loopbackOnly(o.BaseURL); err != nil {
		return nil, err
	}
	if o.Workers < 1 || o.MaxRequests < 1 || o.Duration <= 0 || len(o.Projects) == 0 || len(o.Tokens) == 0 {
		return nil, fmt.Errorf("load: workers, max requests, duration, projects and tokens must be set")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	d := &driver{opts: o, client: &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		report: &Report{ByStatus: map[int]int{}, ByKind: map[string]int{}, Latency: map[string]time.Duration{}}}
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	for w := range o.Workers {
		rng := rand.New(rand.NewPCG(o.Seed, uint64(w)))
		g.Go(func() error { return d.work(ctx, rng) })
	}
	err := g.Wait()
	d.report.Elapsed = time.Since(start)
	return d.report, err
}

func loopbackOnly(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return ErrNotLoopback
}

type driver struct {
	opts   Options
	client *http.Client
	mu     sync.Mutex
	sent   int
	report *Report
}

// job is what the mix needs of a listed job.
type job struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

// work sends requests until a bound is reached. Errors of the transport
// end the run; any status is counted, 5xx recorded.
func (d *driver) work(ctx context.Context, rng *rand.Rand) error {
	for ctx.Err() == nil && d.take() {
		project := url.PathEscape(d.opts.Projects[rng.IntN(len(d.opts.Projects))])
		token := d.opts.Tokens[rng.IntN(len(d.opts.Tokens))]
		var err error
		switch n := rng.IntN(100); {
		case n < 35:
			err = d.list(ctx, rng, project, token)
		case n < 50:
			err = d.keysetWalk(ctx, rng, project, token)
		default:
			err = d.act(ctx, rng, project, token)
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// take claims one request of the budget.
func (d *driver) take() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sent >= d.opts.MaxRequests {
		return false
	}
	d.sent++
	return true
}

var (
	scopes = []string{"", "scope[]=failed", "scope[]=success&scope[]=canceled", "scope[]=pending&scope[]=running", "scope[]=manual"}
	refs   = []string{"", "", "ref=main", "ref=feature%2Flogin"} // the demo's refs, with and without a slash
)

func (d *driver) list(ctx context.Context, rng *rand.Rand, project, token string) error {
	q := fmt.Sprintf("per_page=%d&page=%d", 1+rng.IntN(50), 1+rng.IntN(5))
	for _, filter := range []string{scopes[rng.IntN(len(scopes))], refs[rng.IntN(len(refs))]} {
		if filter != "" {
			q += "&" + filter
		}
	}
	_, _, err := d.do(ctx, "list", http.MethodGet, "/projects/"+project+"/jobs?"+q, token)
	return err
}

// keysetWalk follows a few keyset pages, then reads one job of the last
// page and its trace.
func (d *driver) keysetWalk(ctx context.Context, rng *rand.Rand, project, token string) error {
	path := "/projects/" + project + "/jobs?pagination=keyset&per_page=20"
	if s := scopes[rng.IntN(len(scopes))]; s != "" {
		path += "&" + s
	}
	var last []job
	for range 1 + rng.IntN(4) {
		body, h, err := d.do(ctx, "keyset", http.MethodGet, path, token)
		if err != nil || json.Unmarshal(body, &last) != nil {
			return err
		}
		c := h.Get("X-Next-Cursor")
		if c == "" || !d.take() {
			break
		}
		path = "/projects/" + project + "/jobs?pagination=keyset&per_page=20&cursor=" + url.QueryEscape(c)
	}
	if len(last) == 0 || !d.take() {
		return nil
	}
	j := last[rng.IntN(len(last))]
	if _, _, err := d.do(ctx, "job", http.MethodGet, fmt.Sprintf("/projects/%s/jobs/%d", project, j.ID), token); err != nil {
		return err
	}
	if !d.take() {
		return nil
	}
	_, _, err := d.do(ctx, "trace", http.MethodGet, fmt.Sprintf("/projects/%s/jobs/%d/trace", project, j.ID), token)
	return err
}

// act picks a job from a list page and acts on it as its status invites:
// retry a finished one, cancel a live one, play a manual one, erase any.
// Several workers picking the same job is the point: races must resolve
// as GitLab resolves them.
func (d *driver) act(ctx context.Context, rng *rand.Rand, project, token string) error {
	body, _, err := d.do(ctx, "pick", http.MethodGet, "/projects/"+project+"/jobs?per_page=100&page="+fmt.Sprint(1+rng.IntN(3)), token)
	var js []job
	if err != nil || json.Unmarshal(body, &js) != nil || len(js) == 0 || !d.take() {
		return err
	}
	j := js[rng.IntN(len(js))]
	verb := "erase"
	switch j.Status {
	case "failed", "success", "canceled":
		if rng.IntN(4) > 0 {
			verb = "retry"
		}
	case "pending", "running", "created", "waiting_for_resource", "preparing", "scheduled", "canceling":
		verb = "cancel"
	case "manual":
		verb = "play"
	}
	_, _, err = d.do(ctx, verb, http.MethodPost, fmt.Sprintf("/projects/%s/jobs/%d/%s", project, j.ID, verb), token)
	return err
}

// do sends one request and counts its answer.
func (d *driver) do(ctx context.Context, kind, method, path, token string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.opts.BaseURL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("PRIVATE-TOKEN", token)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.report
	r.Requests++
	r.ByStatus[resp.StatusCode]++
	r.ByKind[kind]++
	r.Latency[kind] = max(r.Latency[kind], took)
	if resp.StatusCode >= 500 {
		r.ServerErr = append(r.ServerErr, fmt.Sprintf("%s %s: %d %s", method, path, resp.StatusCode, body))
	}
	return body, resp.Header, err
}
