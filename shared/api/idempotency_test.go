package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

func shownID(t *testing.T, body string) int64 {
	t.Helper()
	var j struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return j.ID
}

// A repeated action with the same Idempotency-Key, from the same caller on
// the same job, shows the first request's job and acts no more; another key
// or another caller acts (and GitLab's rules answer); a key too long is
// refused; concurrent repeats make one job.
func TestIdempotencyKeyRepeatsTheFirstOutcome(t *testing.T) {
	d := newDemo(t, 40)
	ids := jobsOf(t, d, 3, retryable)
	retry := func(id int64, tok, key string) (int, string) {
		h := token(tok)
		if key != "" {
			h[api.IdempotencyKeyHeader] = key
		}
		w := d.call(t, "retry-job", http.MethodPost, "/api/v4/projects/1/jobs/"+strconv.FormatInt(id, 10)+"/retry", h)
		return w.Code, w.Body.String()
	}
	code, body := retry(ids[0], demo.TokenMaintainer, "k-1")
	if code != 201 {
		t.Fatalf("first retry %d %s", code, body)
	}
	first := shownID(t, body)
	if code, body := retry(ids[0], demo.TokenMaintainer, "k-1"); code != 201 || shownID(t, body) != first {
		t.Errorf("repeat: %d %s, want 201 job %d", code, body, first)
	}
	notRetryable := `{"message":"403 Forbidden - Job is not retryable"}`
	for _, c := range []struct{ tok, key string }{{demo.TokenMaintainer, "k-2"}, {demo.TokenMaintainer, ""}, {demo.TokenDeveloper, "k-1"}} {
		// The developer may not retry that job at all: a 403 either way.
		if code, body := retry(ids[0], c.tok, c.key); code != 403 || (c.tok == demo.TokenMaintainer && body != notRetryable) {
			t.Errorf("key %q: %d %s, want the 403 of a retried job", c.key, code, body)
		}
	}
	if code, body := retry(ids[1], demo.TokenMaintainer, strings.Repeat("k", 256)); code != 400 || body != `{"error":"Idempotency-Key is invalid"}` {
		t.Errorf("long key: %d %s", code, body)
	}

	const n = 8
	shown := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if code, body := retry(ids[2], demo.TokenMaintainer, "same"); code == 201 {
				shown[i] = shownID(t, body)
			}
		})
	}
	wg.Wait()
	for i := range shown {
		if shown[i] == 0 || shown[i] != shown[0] {
			t.Fatalf("concurrent repeats showed %v, want one job", shown)
		}
	}
}

// When every answer to the retry's transaction is lost the client gets a
// 503 although the job was retried; its repeat with the same key gets that
// job, and no second one is made.
func TestIdempotencyKeyAfterLostAnswers(t *testing.T) {
	d := newDemo(t, 40)
	id := jobsOf(t, d, 1, retryable)[0]
	f := &faulty{plan: func(op string) fault {
		if op == "TransactWriteItems" {
			return lost
		}
		return pass
	}}
	ev := hostileEvent("POST", "/api/v4/projects/1/jobs/"+strconv.FormatInt(id, 10)+"/retry", "",
		map[string]string{"private-token": demo.TokenMaintainer, "idempotency-key": "lost-1"})
	if resp, _ := invoke(t, faultyDeps(d, f, api.Budget{}), api.RetryJob, ev, time.Minute); resp.StatusCode != 503 {
		t.Fatalf("retry with lost answers: %d %s", resp.StatusCode, resp.Body)
	}
	f.plan = func(string) fault { return pass }
	resp, _ := invoke(t, faultyDeps(d, f, api.Budget{}), api.RetryJob, ev, time.Minute)
	if resp.StatusCode != 201 {
		t.Fatalf("repeat: %d %s", resp.StatusCode, resp.Body)
	}
	created := shownID(t, resp.Body)
	if next, err := d.Deps.Store.Lookup(context.Background(), store.Lookup{JobID: created + 1}); err != nil || next.Job != nil {
		t.Errorf("a second job after the repeat: %v %v", next.Job, err)
	}
	if j := d.stored(t, created); j.Status != "pending" {
		t.Errorf("shown job %d is %s", created, j.Status)
	}
}
