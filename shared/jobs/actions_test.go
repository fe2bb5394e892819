package jobs

import (
	"errors"
	"testing"
	"time"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// The cancel event of GitLab's state machine (facts §3.2 and the jobs_spec
// table): every status, with and without force, with and without a runner
// that runs after_script on cancel.
func TestCancel(t *testing.T) {
	tests := []struct {
		from     Status
		graceful bool
		force    bool
		want     Status // "" when nothing changes
	}{
		{Created, false, false, Canceled},
		{WaitingForResource, false, false, Canceled},
		{Preparing, false, false, Canceled},
		{WaitingForCallback, false, false, Canceled},
		{Pending, false, false, Canceled},
		{Running, false, false, Canceled},
		{Running, true, false, Canceling},
		{Manual, false, false, Canceled},
		{Scheduled, false, false, Canceled},
		{Canceling, true, false, ""},
		{Success, false, false, ""},
		{Failed, false, false, ""},
		{Canceled, false, false, ""},
		{Skipped, false, false, ""},
		{Canceling, true, true, Canceled},
		{Running, true, true, ""}, // force never falls back to a normal cancel
		{Pending, false, true, ""},
		{Success, false, true, ""},
	}
	for _, tc := range tests {
		j := &Job{ID: 1, Status: tc.from, SupportsCanceling: tc.graceful}
		tr, err := Cancel(tc.force, now)(j)
		if err != nil {
			t.Fatalf("%s force=%v: %v", tc.from, tc.force, err)
		}
		if j.Status != tc.from {
			t.Errorf("%s: the action changed the job it was given", tc.from)
		}
		switch {
		case tc.want == "" && tr.Job != nil:
			t.Errorf("%s graceful=%v force=%v: became %s, want unchanged", tc.from, tc.graceful, tc.force, tr.Job.Status)
		case tc.want != "" && (tr.Job == nil || tr.Job.Status != tc.want):
			t.Errorf("%s graceful=%v force=%v: %+v, want %s", tc.from, tc.graceful, tc.force, tr.Job, tc.want)
		case tc.want == Canceled && (tr.Job.FinishedAt == nil || !tr.Job.FinishedAt.Equal(now)):
			t.Errorf("%s: canceled without finished_at", tc.from)
		case tc.want == Canceling && tr.Job.FinishedAt != nil:
			t.Errorf("%s: canceling with finished_at", tc.from)
		}
	}
}

// retryable?, playable? and erasable? (facts §3.3) over the statuses and
// the flags that change them.
func TestPredicates(t *testing.T) {
	trace := func(j Job) Job { j.HasTrace = true; return j }
	tests := []struct {
		name                          string
		job                           Job
		retryable, playable, erasable bool
	}{
		{"success", trace(Job{Status: Success}), true, false, true},
		{"failed", Job{Status: Failed}, true, false, false},
		{"canceled", Job{Status: Canceled, Artifacts: []Artifact{{FileType: "trace"}}}, true, false, true},
		{"canceling", Job{Status: Canceling}, true, false, false},
		{"skipped with a log", trace(Job{Status: Skipped}), false, false, true},
		{"running", trace(Job{Status: Running}), false, false, false},
		{"pending", Job{Status: Pending}, false, false, false},
		{"created", Job{Status: Created}, false, false, false},
		{"retried", trace(Job{Status: Failed, Retried: true}), false, false, true},
		{"archived", trace(Job{Status: Failed, Archived: true, When: "manual"}), false, false, true},
		{"deployment rejected", Job{Status: Failed, FailureReason: "deployment_rejected"}, false, false, false},
		{"manual waiting", Job{Status: Manual, When: "manual"}, false, true, false},
		{"delayed waiting", Job{Status: Scheduled, When: "delayed"}, false, true, false},
		{"manual that ran", Job{Status: Success, When: "manual"}, true, true, false},
		{"on_success that ran", Job{Status: Success, When: "on_success"}, true, false, false},
		{"manual bridge", Job{Kind: Bridge, Status: Manual, When: "manual"}, false, true, false},
		{"manual bridge that ran", Job{Kind: Bridge, Status: Success, When: "manual"}, true, false, false},
		{"bridge in a loop", Job{Kind: Bridge, Status: Failed, FailureReason: "pipeline_loop_detected"}, false, false, false},
		{"build with the bridge-only reason", Job{Status: Failed, FailureReason: "pipeline_loop_detected"}, true, false, false},
	}
	for _, tc := range tests {
		j := tc.job
		if got := j.Retryable(); got != tc.retryable {
			t.Errorf("%s: retryable %v, want %v", tc.name, got, tc.retryable)
		}
		if got := j.Playable(); got != tc.playable {
			t.Errorf("%s: playable %v, want %v", tc.name, got, tc.playable)
		}
		if got := j.Erasable(); got != tc.erasable {
			t.Errorf("%s: erasable %v, want %v", tc.name, got, tc.erasable)
		}
	}
}

// A retry marks the old job retried with its status kept and creates a
// pending clone started by the retrying user; a bridge's clone starts too.
func TestRetry(t *testing.T) {
	old := &Job{ID: 42, ProjectID: 1, PipelineID: 9, Status: Failed, Name: "unit", Stage: "test", Ref: "main",
		UserID: 5, RunnerID: 2, TagList: []string{"docker"}, When: "on_success", HasTrace: true,
		Variables: []Variable{{Key: "A", Value: "b"}}, Ordinal: 7, Version: 3}
	tr, err := Retry(8, now)(old)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Job.Retried || tr.Job.Status != Failed || old.Retried {
		t.Errorf("old job after retry %+v (given job changed: %v)", tr.Job, old.Retried)
	}
	c := tr.Created
	if c == nil || c.Status != Pending || c.UserID != 8 || c.ID != 0 || c.Ordinal != 0 || c.RunnerID != 0 ||
		c.HasTrace || c.Name != "unit" || c.Stage != "test" || c.PipelineID != 9 || c.QueuedAt == nil || c.StartedAt != nil {
		t.Errorf("clone %+v", c)
	}
	c.TagList[0] = "changed"
	if old.TagList[0] != "docker" {
		t.Error("the clone shares the old job's tag list")
	}
	if _, err := Retry(8, now)(tr.Job); !errors.Is(err, ErrNotRetryable) {
		t.Errorf("second retry: %v, want ErrNotRetryable", err)
	}
	bridge, err := Retry(8, now)(&Job{Kind: Bridge, Status: Success})
	if err != nil || bridge.Created.StartedAt == nil {
		t.Errorf("bridge retry %+v, %v: a pending bridge has started", bridge.Created, err)
	}
}

// Play enqueues a waiting job with the player and the variables given,
// retries a finished manual job, and refuses the rest.
func TestPlay(t *testing.T) {
	vars := []Variable{{Key: "TARGET", Value: "eu"}}
	tr, err := Play(8, vars, now)(&Job{Status: Manual, When: "manual", UserID: 5, Variables: []Variable{{Key: "OLD"}}})
	if err != nil || tr.Created != nil || tr.Job.Status != Pending || tr.Job.UserID != 8 || tr.Job.Variables[0].Key != "TARGET" {
		t.Errorf("play manual: %+v, %v", tr.Job, err)
	}
	tr, err = Play(8, nil, now)(&Job{Status: Scheduled, When: "delayed", Variables: []Variable{{Key: "KEEP"}}})
	if err != nil || tr.Job.Status != Pending || tr.Job.Variables[0].Key != "KEEP" {
		t.Errorf("play scheduled without variables: %+v, %v", tr.Job, err)
	}
	tr, err = Play(8, nil, now)(&Job{Status: Failed, When: "manual"})
	if err != nil || tr.Created == nil || !tr.Job.Retried {
		t.Errorf("play of a finished manual job: %+v, %v, want a retry", tr, err)
	}
	for _, j := range []*Job{{Status: Success, When: "on_success"}, {Status: Pending, When: "manual"}, {Status: Manual, When: "manual", Archived: true}} {
		if _, err := Play(8, nil, now)(j); !errors.Is(err, ErrUnplayable) {
			t.Errorf("play %+v: %v, want ErrUnplayable", j, err)
		}
	}
}

// Erase marks the job first (files pending), then FilesErased clears the
// mark; an erased job is not erasable again, mark set or not, so of
// concurrent erases exactly one wins (the pending mark is finished by
// whoever reads the job next, not by a repeated erase).
func TestErase(t *testing.T) {
	exp := now.Add(time.Hour)
	j := &Job{Status: Success, HasTrace: true, Artifacts: []Artifact{{FileType: "archive"}},
		ArtifactsFile: &ArtifactsFile{Filename: "a.zip"}, ArtifactsExpireAt: &exp}
	tr, err := Erase(now)(j)
	if err != nil {
		t.Fatal(err)
	}
	e := tr.Job
	if e.ErasedAt == nil || e.HasTrace || e.Artifacts != nil || e.ArtifactsFile != nil || e.ArtifactsExpireAt != nil ||
		!e.FilesPending || e.Status != Success {
		t.Errorf("erased %+v", e)
	}
	if _, err := Erase(now)(e); !errors.Is(err, ErrNotErasable) {
		t.Errorf("erase with files pending: %v, want ErrNotErasable", err)
	}
	done, _ := FilesErased(e)
	if done.Job == nil || done.Job.FilesPending {
		t.Errorf("files erased: %+v", done.Job)
	}
	if _, err := Erase(now)(done.Job); !errors.Is(err, ErrNotErasable) {
		t.Errorf("erase of an erased job: %v, want ErrNotErasable", err)
	}
}

// Who may act (facts §4.2): Developer+ for cancel, retry and play, force
// cancel for Maintainer+, erase for Maintainer+ or a Developer on their own
// job; protected refs need Maintainer+; archived jobs are never retried or
// played.
func TestAbilities(t *testing.T) {
	p := &Project{ID: 1, ProtectedRefs: []string{"main"}}
	own := &User{ID: 3}
	admin := &User{ID: 1, Admin: true}
	feature := &Job{Ref: "feature", UserID: 3}
	main := &Job{Ref: "main", UserID: 3}
	someoneElses := &Job{Ref: "feature", UserID: 9}
	archived := &Job{Ref: "feature", UserID: 3, Archived: true}
	tests := []struct {
		name                        string
		caller                      Caller
		job                         *Job
		cancel, force, retry, erase bool
	}{
		{"reporter", Caller{User: own, Access: Reporter}, feature, false, false, false, false},
		{"developer, own job", Caller{User: own, Access: Developer}, feature, true, false, true, true},
		{"developer, someone else's job", Caller{User: own, Access: Developer}, someoneElses, true, false, true, false},
		{"developer, protected ref", Caller{User: own, Access: Developer}, main, false, false, false, false},
		{"developer, archived job", Caller{User: own, Access: Developer}, archived, true, false, false, true},
		{"maintainer, protected ref", Caller{User: own, Access: Maintainer}, main, true, true, true, true},
		{"maintainer, someone else's job", Caller{User: own, Access: Maintainer}, someoneElses, true, true, true, true},
		{"admin, no membership", Caller{User: admin}, main, true, true, true, true},
		{"anonymous", Caller{}, feature, false, false, false, false},
	}
	for _, tc := range tests {
		c := tc.caller
		if got := c.CanCancelJob(p, tc.job, false); got != tc.cancel {
			t.Errorf("%s: cancel %v, want %v", tc.name, got, tc.cancel)
		}
		if got := c.CanCancelJob(p, tc.job, true); got != tc.force {
			t.Errorf("%s: force cancel %v, want %v", tc.name, got, tc.force)
		}
		if got := c.CanRetryOrPlay(p, tc.job); got != tc.retry {
			t.Errorf("%s: retry/play %v, want %v", tc.name, got, tc.retry)
		}
		if got := c.CanEraseJob(p, tc.job); got != tc.erase {
			t.Errorf("%s: erase %v, want %v", tc.name, got, tc.erase)
		}
	}
}
