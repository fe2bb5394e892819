package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/agreement"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// Of simultaneous erases of one job exactly one answers 201; the others get
// GitLab's 403 for an erased job (facts §3.3), as sequential repeats do.
func TestConcurrentErasesHaveOneWinner(t *testing.T) {
	d := newDemo(t, 40)
	const n = 10
	codes := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w := d.call(t, "erase-job", http.MethodPost, "/api/v4/projects/1/jobs/42/erase", token(demo.TokenMaintainer))
			codes[i], bodies[i] = w.Code, w.Body.String()
		})
	}
	wg.Wait()
	won := 0
	for i, c := range codes {
		switch {
		case c == http.StatusCreated:
			won++
		case c != http.StatusForbidden || bodies[i] != `{"message":"403 Forbidden - Job is not erasable!"}`:
			t.Errorf("erase %d: %d %s", i, c, bodies[i])
		}
	}
	if won != 1 {
		t.Errorf("%d erases answered 201, want 1: %v", won, codes)
	}
	d.mustHaveFiles(t, 1, 42, 0)
}

// Erase meets each fault of DynamoDB and S3 in turn, through an HTTP
// transport in front of the real local services. Whatever it answers, the
// job ends fully before the erase (not erased, files kept) or, once the
// cleanup function has had the job's stream record with the faults gone,
// fully after (erased, no files, no mark): nobody has to repeat the erase,
// nor read the job again.
func TestEraseUnderFaultsLeavesNoFiles(t *testing.T) {
	d := newDemo(t, 40)
	type scenario struct {
		name string
		plan func(calls map[string]int, op string) fault
	}
	on := func(target string, what fault, times int) func(map[string]int, string) fault {
		return func(calls map[string]int, op string) fault {
			if op == target && (times == 0 || calls[op] <= times) {
				return what
			}
			return pass
		}
	}
	scenarios := []scenario{
		{"DeleteObjects fails", on("DeleteObjects", fail500, 0)},
		{"ListObjectsV2 fails", on("ListObjectsV2", fail500, 0)},
		{"DeleteObjects throttled", on("DeleteObjects", throttle, 0)},
		{"DeleteObjects answer lost", on("DeleteObjects", lost, 1)},
		{"S3 stalled", func(_ map[string]int, op string) fault {
			if isS3(op) {
				return stall
			}
			return pass
		}},
		{"mark's answer lost", on("PutItem", lost, 1)},
		{"mark's answers all lost", on("PutItem", lost, 0)},
		{"mark fails", on("PutItem", fail500, 0)},
		{"mark resets", on("PutItem", reset, 1)},
		{"clearing write fails", func(calls map[string]int, op string) fault {
			if op == "PutItem" && calls[op] > 1 {
				return fail500
			}
			return pass
		}},
		{"lookup fails", on("BatchGetItem", fail500, 0)},
	}
	ids := jobsOf(t, d, len(scenarios), erasable)
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			id := ids[i]
			before := d.files(t, 1, id) // its log, and its zip where it has one
			calls := map[string]int{}
			f := &faulty{plan: func(op string) fault { calls[op]++; return sc.plan(calls, op) }}
			deps := faultyDeps(d, f, api.Budget{Max: 500 * time.Millisecond})
			path := "/api/v4/projects/1/jobs/" + strconv.FormatInt(id, 10)
			ev := hostileEvent("POST", path+"/erase", "", map[string]string{"private-token": demo.TokenMaintainer})
			resp, inTime := invoke(t, deps, api.EraseJob, ev, time.Minute)
			if !inTime || (resp.StatusCode != 201 && resp.StatusCode < 500) {
				t.Fatalf("erase answered %d %s", resp.StatusCode, resp.Body)
			}
			if j := d.stored(t, id); j.FilesPending { // its stream record goes to the cleanup function
				if err := api.CleanupArtifacts.StreamHandler(d.Deps)(context.Background(), pendingJobEvent(id)); err != nil {
					t.Fatalf("cleanup after: %v", err)
				}
			}
			j := d.stored(t, id)
			switch {
			case j.ErasedAt == nil:
				if resp.StatusCode == 201 {
					t.Errorf("201 for an erase that did not happen")
				}
				d.mustHaveFiles(t, 1, id, before)
			case j.FilesPending:
				t.Errorf("the cleanup left the erase pending")
			default:
				d.mustHaveFiles(t, 1, id, 0)
			}
			t.Logf("answered %d, erased %v, calls %v", resp.StatusCode, j.ErasedAt != nil, calls)
		})
	}
}

// jobsOf are the first n builds of project 1 that pick accepts, other than
// jobs 42 and 44, which other tests act on.
func jobsOf(t *testing.T, d *fixture, n int, pick func(*jobs.Job) bool) []int64 {
	t.Helper()
	var ids []int64
	for id := int64(1); id < 200 && len(ids) < n; id++ {
		f, err := d.Deps.Store.Lookup(context.Background(), store.Lookup{JobID: id})
		if err != nil {
			t.Fatal(err)
		}
		if j := f.Job; j != nil && j.ProjectID == 1 && !j.IsBridge() && id != 42 && id != 44 && pick(j) {
			ids = append(ids, id)
		}
	}
	if len(ids) < n {
		t.Fatalf("only %d such jobs, want %d", len(ids), n)
	}
	return ids
}

// erasable: finished jobs with files; retryable: finished, unretried ones.
func erasable(j *jobs.Job) bool  { return j.Erasable() && j.HasTrace }
func retryable(j *jobs.Job) bool { return j.Status.Completed() && !j.Retried && !j.Archived }

// When DynamoDB applies an action's write and its answer is lost, the SDK's
// retry is recognised as the same write (a transaction by its
// ClientRequestToken, a conditional put by the call's token on the job):
// the client gets the action's answer, and the action happened once.
func TestLostAnswersAreRecognised(t *testing.T) {
	d := newDemo(t, 40)
	cases := []struct {
		event   string
		creates bool
	}{
		{"retry-job.json", true},
		{"cancel-job.json", false},
		{"play-job.json", false},
		{"erase-job.json", false},
	}
	for _, c := range cases {
		t.Run(c.event, func(t *testing.T) {
			calls := map[string]int{}
			lostOp := ""
			f := &faulty{plan: func(op string) fault {
				calls[op]++
				if lostOp == "" && (op == "PutItem" || op == "TransactWriteItems") {
					lostOp = op
					return lost
				}
				return pass
			}}
			fn := agreement.FunctionOf(c.event, api.Functions())
			resp, _ := invoke(t, faultyDeps(d, f, api.Budget{}), fn, readEvent(t, c.event), time.Minute)
			if resp.StatusCode >= 300 || calls[lostOp] < 2 {
				t.Fatalf("%d %s, calls %v", resp.StatusCode, resp.Body, calls)
			}
			var shown struct {
				ID     int64
				Status string
			}
			if err := json.Unmarshal([]byte(resp.Body), &shown); err != nil {
				t.Fatal(err)
			}
			if next, err := d.Deps.Store.Lookup(context.Background(), store.Lookup{JobID: shown.ID + 1}); c.creates && (err != nil || next.Job != nil) {
				t.Errorf("a second job %v after the lost answer", next.Job)
			}
			t.Logf("%d: job %d %s, calls %v", resp.StatusCode, shown.ID, shown.Status, calls)
		})
	}
}
