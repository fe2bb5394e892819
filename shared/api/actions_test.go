package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// actionCase is one request to a job action and what GitLab answers.
type actionCase struct {
	name   string
	target string // after /api/v4/projects/
	token  string
	header map[string]string // more headers (job tokens, content type)
	body   string
	status int
	want   string // a substring of the body
	after  jobs.Status
}

// post serves one POST with a body through the named function.
func (d *fixture) post(t *testing.T, function, target, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	api.Function(function).Handler(d.Deps).ServeHTTP(w, r)
	return w
}

// stored reads a job as the store holds it.
func (d *fixture) stored(t *testing.T, id int64) *jobs.Job {
	t.Helper()
	f, err := d.Deps.Store.Lookup(context.Background(), store.Lookup{JobID: id})
	if err != nil || f.Job == nil {
		t.Fatalf("job %d: %v", id, err)
	}
	return f.Job
}

// runActions runs the cases in order against one world; each case names a
// job of its own, so their order matters only where a case says so.
func runActions(t *testing.T, d *fixture, function string, cases []actionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.token != "" {
				h["PRIVATE-TOKEN"] = tc.token
			}
			for k, v := range tc.header {
				h[k] = v
			}
			w := d.post(t, function, "/api/v4/projects/"+tc.target, tc.body, h)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			mustContain(t, w.Body.String(), tc.want)
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("content type %q", got)
			}
			if tc.after != "" {
				var got struct{ Status jobs.Status }
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Status != tc.after {
					t.Errorf("status %q (%v), want %q", got.Status, err, tc.after)
				}
			}
		})
	}
}

const (
	forbidden     = `{"message":"403 Forbidden"}`
	projectAbsent = `{"message":"404 Project Not Found"}`
	jobAbsent     = `{"message":"404 Not found"}`
	unauthorized  = `{"message":"401 Unauthorized"}`
	badScope      = `"error":"insufficient_scope"`
)

// The rows of jobs_spec's cancel table, per role and protected ref (main is
// protected in demo/backend).
func TestCancelJob(t *testing.T) {
	d := newDemo(t, 40)
	m, dev := demo.TokenMaintainer, demo.TokenDeveloper
	runActions(t, d, "cancel-job", []actionCase{
		{name: "running with graceful cancel goes to canceling", target: "1/jobs/7/cancel", token: m, status: 201, after: jobs.Canceling},
		{name: "canceling stays canceling", target: "1/jobs/13/cancel", token: dev, status: 201, after: jobs.Canceling},
		{name: "force by a developer", target: "1/jobs/41/cancel?force=true", token: dev, status: 403, want: forbidden},
		{name: "force on canceling", target: "1/jobs/41/cancel", token: m, body: "force=true",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 201, after: jobs.Canceled},
		{name: "force in a JSON body", target: "1/jobs/31/cancel", token: m, body: `{"force":true}`,
			header: map[string]string{"Content-Type": "application/json"}, status: 201, after: jobs.Canceled},
		{name: "force on running does not cancel", target: "3/jobs/81/cancel?force=true", token: m, status: 201, after: jobs.Running},
		{name: "success stays success", target: "1/jobs/1/cancel", token: m, status: 201, after: jobs.Success},
		{name: "failed stays failed", target: "1/jobs/42/cancel", token: dev, status: 201, after: jobs.Failed},
		{name: "created", target: "1/jobs/16/cancel", token: dev, status: 201, after: jobs.Canceled, want: `"finished_at":"2026-06-01T12:00:00.000Z"`},
		{name: "waiting_for_resource", target: "1/jobs/15/cancel", token: dev, status: 201, after: jobs.Canceled},
		{name: "preparing", target: "1/jobs/39/cancel", token: dev, status: 201, after: jobs.Canceled},
		{name: "waiting_for_callback", target: "1/jobs/47/cancel", token: dev, status: 201, after: jobs.Canceled},
		{name: "scheduled", target: "1/jobs/46/cancel", token: dev, status: 201, after: jobs.Canceled},
		{name: "manual on a protected ref", target: "1/jobs/23/cancel", token: m, status: 201, after: jobs.Canceled},
		{name: "pending on a protected ref, developer", target: "1/jobs/22/cancel", token: dev, status: 403, want: forbidden},
		{name: "pending on a protected ref, maintainer", target: "1/jobs/22/cancel", token: m, status: 201, after: jobs.Canceled},
		{name: "admin", target: "3/jobs/65/cancel", token: demo.TokenAdmin, status: 201, after: jobs.Canceled},
		{name: "reporter", target: "1/jobs/40/cancel", token: demo.TokenReporter, status: 403, want: forbidden},
		{name: "reporter, unknown job", target: "1/jobs/999999/cancel", token: demo.TokenReporter, status: 403, want: forbidden},
		{name: "guest", target: "1/jobs/40/cancel", token: demo.TokenGuest, status: 403, want: forbidden},
		{name: "non-member, private project", target: "1/jobs/40/cancel", token: demo.TokenOutsider, status: 404, want: projectAbsent},
		{name: "non-member, public project", target: "3/jobs/59/cancel", token: demo.TokenOutsider, status: 403, want: forbidden},
		{name: "read_api token", target: "1/jobs/40/cancel", token: demo.TokenReadAPI, status: 403, want: badScope},
		{name: "job token header", target: "1/jobs/40/cancel", header: map[string]string{"JOB-TOKEN": demo.JobTokenRunning}, status: 401, want: unauthorized},
		{name: "job token as bearer", target: "1/jobs/40/cancel", header: map[string]string{"Authorization": "Bearer " + demo.JobTokenRunning}, status: 401, want: unauthorized},
		{name: "anonymous", target: "3/jobs/59/cancel", status: 401, want: unauthorized},
		{name: "unknown job", target: "1/jobs/999999/cancel", token: m, status: 404, want: jobAbsent},
		{name: "bridge", target: "1/jobs/10/cancel", token: m, status: 404, want: jobAbsent},
		{name: "job of another project", target: "1/jobs/48/cancel", token: m, status: 404, want: jobAbsent},
		{name: "force not a boolean", target: "1/jobs/40/cancel?force=maybe", token: m, status: 400, want: `{"error":"force is invalid"}`},
		{name: "job_id not an integer", target: "1/jobs/x/cancel", token: m, status: 400, want: `{"error":"job_id is invalid"}`},
		{name: "project by path", target: "demo/backend/jobs/40/cancel", token: dev, status: 201, after: jobs.Canceled},
	})
}

func TestRetryJob(t *testing.T) {
	d := newDemo(t, 40)
	m, dev := demo.TokenMaintainer, demo.TokenDeveloper
	next := fmt.Sprintf(`"id":%d,"status":"pending"`, len(d.world.Jobs)+1)
	runActions(t, d, "retry-job", []actionCase{
		{name: "failed, developer", target: "1/jobs/42/retry", token: dev, status: 201, after: jobs.Pending,
			want: next},
		{name: "retried already", target: "1/jobs/42/retry", token: dev, status: 403, want: `{"message":"403 Forbidden - Job is not retryable"}`},
		{name: "imported retried job", target: "1/jobs/36/retry", token: m, status: 403, want: "Job is not retryable"},
		{name: "running", target: "1/jobs/7/retry", token: m, status: 403, want: "Job is not retryable"},
		{name: "manual", target: "1/jobs/23/retry", token: m, status: 403, want: "Job is not retryable"},
		{name: "canceling", target: "1/jobs/41/retry", token: dev, status: 201, after: jobs.Pending},
		{name: "canceled", target: "1/jobs/43/retry", token: dev, status: 201, after: jobs.Pending},
		{name: "success, protected ref, developer", target: "1/jobs/1/retry", token: dev, status: 403, want: forbidden},
		{name: "success, protected ref, maintainer", target: "1/jobs/1/retry", token: m, status: 201, after: jobs.Pending},
		{name: "manual job that ran", target: "1/jobs/27/retry", token: m, status: 201, after: jobs.Pending},
		{name: "bridge, as a Job entity", target: "1/jobs/10/retry", token: m, status: 201, after: jobs.Pending,
			want: `"artifacts":[],"runner":null,"artifacts_expire_at":null,"archived":false,"tag_list":[]}`},
		{name: "reporter", target: "1/jobs/44/retry", token: demo.TokenReporter, status: 403, want: forbidden},
		{name: "reporter, unknown job", target: "1/jobs/999999/retry", token: demo.TokenReporter, status: 404, want: jobAbsent},
		{name: "non-member", target: "1/jobs/44/retry", token: demo.TokenOutsider, status: 404, want: projectAbsent},
		{name: "read_api token", target: "1/jobs/44/retry", token: demo.TokenReadAPI, status: 403, want: badScope},
		{name: "job token", target: "1/jobs/44/retry", header: map[string]string{"JOB-TOKEN": demo.JobTokenRunning}, status: 401, want: unauthorized},
		{name: "job of another project", target: "3/jobs/44/retry", token: m, status: 404, want: jobAbsent},
	})
	// The new job is the caller's, in the old one's pipeline; the old one
	// keeps its status and is retried.
	old, clone := d.stored(t, 42), d.stored(t, int64(len(d.world.Jobs)+1))
	if !old.Retried || old.Status != jobs.Failed || old.Version != 2 {
		t.Errorf("old job: retried %v, status %s, version %d", old.Retried, old.Status, old.Version)
	}
	if clone.UserID != 3 || clone.PipelineID != old.PipelineID || clone.Retried || clone.Name != old.Name ||
		clone.Ordinal != d.builds(1)+1 || !slices.Equal(clone.TagList, old.TagList) {
		t.Errorf("new job %+v", clone)
	}
}

func TestEraseJob(t *testing.T) {
	d := newDemo(t, 40)
	m, dev := demo.TokenMaintainer, demo.TokenDeveloper
	erased := `"erased_at":"2026-06-01T12:00:00.000Z"`
	runActions(t, d, "erase-job", []actionCase{
		{name: "developer, own job, unprotected ref", target: "1/jobs/11/erase", token: dev, status: 201, after: jobs.Success,
			want: erased},
		{name: "erased already", target: "1/jobs/11/erase", token: dev, status: 403, want: `{"message":"403 Forbidden - Job is not erasable!"}`},
		{name: "developer, someone else's job", target: "1/jobs/44/erase", token: dev, status: 403, want: forbidden},
		{name: "developer, own job, protected ref", target: "1/jobs/1/erase", token: dev, status: 403, want: forbidden},
		{name: "maintainer, protected ref", target: "1/jobs/1/erase", token: m, status: 201, want: erased},
		{name: "maintainer, someone else's job", target: "1/jobs/44/erase", token: m, status: 201, want: erased},
		{name: "failed", target: "1/jobs/42/erase", token: m, status: 201, after: jobs.Failed},
		{name: "canceled with a log only", target: "1/jobs/4/erase", token: m, status: 201, after: jobs.Canceled},
		{name: "running", target: "1/jobs/7/erase", token: m, status: 403, want: "Job is not erasable!"},
		{name: "skipped without files", target: "2/jobs/90/erase", token: m, status: 403, want: "Job is not erasable!"},
		{name: "bridge", target: "1/jobs/10/erase", token: m, status: 404, want: jobAbsent},
		{name: "reporter", target: "1/jobs/12/erase", token: demo.TokenReporter, status: 403, want: forbidden},
		{name: "non-member", target: "1/jobs/12/erase", token: demo.TokenOutsider, status: 404, want: projectAbsent},
		{name: "read_api token", target: "1/jobs/12/erase", token: demo.TokenReadAPI, status: 403, want: badScope},
		{name: "anonymous", target: "1/jobs/12/erase", status: 401, want: unauthorized},
	})
	w := d.call(t, "get-job", http.MethodGet, "/api/v4/projects/1/jobs/11", token(m))
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["artifacts_file"]; ok || got["artifacts_expire_at"] != nil || len(got["artifacts"].([]any)) != 0 {
		t.Errorf("erased job still shows artifacts: %s", w.Body)
	}
	if w := d.call(t, "get-job-trace", http.MethodGet, "/api/v4/projects/1/jobs/11/trace", token(m)); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("trace of an erased job: %d %q", w.Code, w.Body)
	}
	if j := d.stored(t, 11); j.FilesPending || j.HasTrace || j.ErasedAt == nil {
		t.Errorf("stored job %+v", j)
	}
	d.mustHaveFiles(t, 1, 11, 0)
	d.mustHaveFiles(t, 1, 12, 2) // its log and its artifacts zip
}

// builds counts the builds the demo world gave a project.
func (d *fixture) builds(project int64) int64 {
	var n int64
	for _, raw := range d.world.Jobs {
		var j struct {
			ProjectID  int64           `json:"project_id"`
			Downstream json.RawMessage `json:"downstream_pipeline"`
		}
		if json.Unmarshal(raw, &j) == nil && j.ProjectID == project && j.Downstream == nil {
			n++
		}
	}
	return n
}

func listInput(bucket string, project, job int64) *s3.ListObjectsV2Input {
	return &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(jobfiles.Prefix(project, job))}
}

// mustHaveFiles checks how many objects a job has in S3.
func (d *fixture) mustHaveFiles(t *testing.T, project, job int64, want int) {
	t.Helper()
	if n := d.files(t, project, job); n != want {
		t.Errorf("job %d has %d files, want %d", job, n, want)
	}
}

// files counts the objects under a job's prefix.
func (d *fixture) files(t *testing.T, project, job int64) int {
	t.Helper()
	res, err := d.S3.ListObjectsV2(context.Background(), listInput(d.Bucket, project, job))
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Contents)
}

func TestPlayJob(t *testing.T) {
	d := newDemo(t, 40)
	m, dev := demo.TokenMaintainer, demo.TokenDeveloper
	js := map[string]string{"Content-Type": "application/json"}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	runActions(t, d, "play-job", []actionCase{
		{name: "manual, protected ref, developer", target: "1/jobs/23/play", token: dev, status: 403, want: forbidden},
		{name: "manual, protected ref, maintainer", target: "1/jobs/23/play", token: m, status: 200, after: jobs.Pending,
			want: `"username":"maria"`},
		{name: "played already", target: "1/jobs/23/play", token: m, status: 400, want: `{"message":"400 Bad request - Unplayable Job"}`},
		{name: "scheduled, JSON variables", target: "1/jobs/46/play", token: dev, header: js, status: 200, after: jobs.Pending,
			body: `{"job_variables_attributes":[{"key":"DEPLOY","value":"yes"},{"key":"N","value":"2"}]}`},
		{name: "manual, form variables", target: "3/jobs/80/play", token: m, header: form, status: 200, after: jobs.Pending,
			body: "job_variables_attributes[][key]=DEPLOY&job_variables_attributes[][value]=form"},
		{name: "manual, query variables", target: "3/jobs/102/play?job_variables_attributes%5B%5D%5Bkey%5D=A&job_variables_attributes%5B%5D%5Bvalue%5D=b+c",
			token: m, status: 200, after: jobs.Pending},
		{name: "a variable without key", target: "3/jobs/120/play", token: m, header: js, status: 400,
			body: `{"job_variables_attributes":[{"value":"x"}]}`, want: `{"error":"job_variables_attributes[0][key] is missing"}`},
		{name: "a form variable without value", target: "3/jobs/120/play", token: m, header: form, status: 400,
			body: "job_variables_attributes[][key]=A&job_variables_attributes[][value]=1&job_variables_attributes[][key]=B",
			want: `{"error":"job_variables_attributes[1][value] is missing"}`},
		{name: "variables not an array", target: "3/jobs/120/play", token: m, header: js, status: 400,
			body: `{"job_variables_attributes":"A=1"}`, want: `{"error":"job_variables_attributes is invalid"}`},
		{name: "malformed JSON", target: "3/jobs/120/play", token: m, header: js, status: 400, body: `{"job_variables_attributes":[`,
			want: `"error":"message body does not match declared format"`},
		{name: "finished manual job is retried", target: "1/jobs/27/play", token: m, status: 200, after: jobs.Pending,
			want: fmt.Sprintf(`"id":%d,`, len(d.world.Jobs)+1)},
		{name: "success, not manual", target: "1/jobs/1/play", token: m, status: 400, want: "Unplayable Job"},
		{name: "running", target: "1/jobs/7/play", token: m, status: 400, want: "Unplayable Job"},
		{name: "created manual job", target: "2/jobs/74/play", token: m, status: 400, want: "Unplayable Job"},
		{name: "reporter", target: "3/jobs/120/play", token: demo.TokenReporter, status: 403, want: forbidden},
		{name: "guest, public pipelines", target: "1/jobs/46/play", token: demo.TokenGuest, status: 403, want: forbidden},
		{name: "guest, private pipelines", target: "2/jobs/74/play", token: demo.TokenGuest, status: 403, want: forbidden},
		{name: "non-member, private project", target: "1/jobs/46/play", token: demo.TokenOutsider, status: 404, want: projectAbsent},
		{name: "read_api token", target: "3/jobs/120/play", token: demo.TokenReadAPI, status: 403, want: badScope},
		{name: "job token", target: "1/jobs/23/play", header: map[string]string{"JOB-TOKEN": demo.JobTokenRunning}, status: 401, want: unauthorized},
		{name: "unknown job", target: "1/jobs/999999/play", token: m, status: 404, want: jobAbsent},
	})
	for id, want := range map[int64][]jobs.Variable{
		46:  {{Key: "DEPLOY", Value: "yes"}, {Key: "N", Value: "2"}},
		80:  {{Key: "DEPLOY", Value: "form"}},
		102: {{Key: "A", Value: "b c"}},
		120: nil,
	} {
		j := d.stored(t, id)
		if !slices.Equal(j.Variables, want) {
			t.Errorf("job %d variables %v, want %v", id, j.Variables, want)
		}
		if id == 120 && j.Status != jobs.Manual {
			t.Errorf("job 120 is %s after failed plays", j.Status)
		}
	}
	if w := d.call(t, "get-job", http.MethodGet, "/api/v4/projects/1/jobs/46", token(m)); strings.Contains(w.Body.String(), "DEPLOY") {
		t.Errorf("variables shown: %s", w.Body)
	}
}
