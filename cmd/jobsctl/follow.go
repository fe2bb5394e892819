package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// follower prints a job's log as it grows, against any GitLab-compatible
// API. Each poll sends the log's entity tag (If-None-Match) and a Range
// from the length it has, so that a server that serves them (this API)
// answers 304 when nothing changed or only the new bytes; a server that
// does not (GitLab) answers the whole log, of which the new bytes are
// printed. It stops once the job has finished and its last bytes are out.
type follower struct {
	client   *http.Client
	base     string // the API's URL, up to and without /api/v4
	header   http.Header
	project  string
	job      int64
	interval time.Duration
	sleep    func(context.Context, time.Duration) error
	out      io.Writer

	length int64  // bytes of the log printed so far
	tag    string // the log's entity tag at that length
}

// finished are the statuses after which a job's log no longer grows.
var finished = map[string]bool{"success": true, "failed": true, "canceled": true, "skipped": true, "manual": true}

func (f *follower) run(ctx context.Context) error {
	for {
		status, err := f.status(ctx)
		if err != nil {
			return err
		}
		if err := f.poll(ctx); err != nil {
			return err
		}
		if finished[status] {
			return nil
		}
		if err := f.sleep(ctx, f.interval); err != nil {
			return err
		}
	}
}

func (f *follower) url(suffix string) string {
	return f.base + "/api/v4/projects/" + url.PathEscape(f.project) + "/jobs/" + strconv.FormatInt(f.job, 10) + suffix
}

func (f *follower) get(ctx context.Context, target string, extra http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range []http.Header{f.header, extra} {
		for k, vs := range h {
			req.Header[k] = vs
		}
	}
	return f.client.Do(req)
}

// status reads the job's status (GET /projects/:id/jobs/:job_id).
func (f *follower) status(ctx context.Context) (string, error) {
	resp, err := f.get(ctx, f.url(""), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("job %d: %s", f.job, readError(resp))
	}
	var j struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return "", fmt.Errorf("job %d: %w", f.job, err)
	}
	return j.Status, nil
}

// poll fetches what the log gained since the last poll and prints it.
func (f *follower) poll(ctx context.Context) error {
	h := http.Header{}
	if f.tag != "" {
		h.Set("If-None-Match", f.tag)
	}
	if f.length > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(f.length, 10)+"-")
	}
	resp, err := f.get(ctx, f.url("/trace"), h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		// Shorter than what we printed: erased or replaced. Start over.
		f.length, f.tag = 0, ""
		return nil
	case http.StatusPartialContent:
		start, err := contentRangeStart(resp.Header.Get("Content-Range"))
		if err != nil {
			return err
		}
		return f.print(resp, start)
	case http.StatusOK:
		// The whole log: a server without ranges, or a log that changed
		// under an If-Range. Print what goes beyond what we have.
		return f.print(resp, 0)
	}
	return fmt.Errorf("trace of job %d: %s", f.job, readError(resp))
}

// print writes the bytes of a response body that starts at offset start
// of the log and lie beyond what was printed; a log that is now shorter
// than that was replaced, and is printed from its start.
func (f *follower) print(resp *http.Response, start int64) error {
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	end := start + int64(len(data))
	skip := f.length - start
	switch {
	case start == 0 && end < f.length:
		skip = 0
	case skip < 0 || skip > int64(len(data)):
		return fmt.Errorf("trace of job %d: got bytes %d-%d, have %d", f.job, start, end, f.length)
	}
	if _, err := f.out.Write(data[skip:]); err != nil {
		return err
	}
	f.length, f.tag = end, resp.Header.Get("ETag")
	return nil
}

func contentRangeStart(v string) (int64, error) {
	var first, last, size int64
	if _, err := fmt.Sscanf(v, "bytes %d-%d/%d", &first, &last, &size); err != nil {
		return 0, fmt.Errorf("bad Content-Range %q", v)
	}
	return first, nil
}

func readError(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return strings.TrimSpace(resp.Status + " " + string(b))
}

// credentialHeaders are the headers that must not follow a redirect to
// another host (the S3 URL of a big log): Go's client keeps custom headers.
var credentialHeaders = []string{"Private-Token", "Job-Token"}

func newClient() *http.Client {
	return &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.URL.Host != via[0].URL.Host {
			for _, k := range credentialHeaders {
				req.Header.Del(k)
			}
		}
		return nil
	}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// traceCommand is `jobsctl trace [--follow] PROJECT JOB`.
func traceCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	follow := fs.Bool("follow", false, "keep printing the log as it grows, until the job finishes")
	base := fs.String("url", envOr("GITLAB_URL", "http://127.0.0.1:3000"), "the API's URL (GitLab's, or this API's), without /api/v4")
	tok := fs.String("token", os.Getenv("GITLAB_TOKEN"), "a personal access token (PRIVATE-TOKEN); default $GITLAB_TOKEN")
	jobTok := fs.String("job-token", os.Getenv("CI_JOB_TOKEN"), "a CI job token (JOB-TOKEN) instead; default $CI_JOB_TOKEN")
	interval := fs.Duration("interval", 3*time.Second, "time between polls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("trace needs PROJECT (id or full path) and JOB (id)")
	}
	job, err := strconv.ParseInt(fs.Arg(1), 10, 64)
	if err != nil {
		return fmt.Errorf("job id %q is not a number", fs.Arg(1))
	}
	h := http.Header{}
	if *tok != "" {
		h.Set("Private-Token", *tok)
	} else if *jobTok != "" {
		h.Set("Job-Token", *jobTok)
	}
	f := &follower{client: newClient(), base: strings.TrimSuffix(strings.TrimSuffix(*base, "/"), "/api/v4"), header: h,
		project: fs.Arg(0), job: job, interval: *interval, sleep: sleepCtx, out: os.Stdout}
	if !*follow {
		return f.poll(ctx)
	}
	return f.run(ctx)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
