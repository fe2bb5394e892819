package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// Ids of the jobs importMore adds to the demo world.
const (
	retriedPipeline  = 1999  // demo/backend pipeline where "flaky" was retried twice
	flakyFirst       = 20001 // failed, retried
	flakySecond      = 20002 // failed, retried
	flakyLast        = 20003 // success: the latest try
	cancelingJob     = 20004 // canceling, with jobTokenCanceling
	erasedRunningJob = 20005 // running but erased, with jobTokenErased
	frontendJob      = 20006 // running in demo/platform/frontend, with jobTokenFrontend

	jobTokenCanceling = "glcbt-test-canceling-job-00000001"
	jobTokenErased    = "glcbt-test-erased-job-0000000002"
	jobTokenFrontend  = "glcbt-test-frontend-job-00000003"
)

// importMore adds to the demo world, by a second import, a pipeline where a
// job was retried twice and the jobs of the job tokens the tests need.
func (d *fixture) importMore(t *testing.T) {
	t.Helper()
	base := func(id int64) map[string]any {
		for _, raw := range d.world.Jobs {
			var j map[string]any
			if err := json.Unmarshal(raw, &j); err != nil {
				t.Fatal(err)
			}
			if j["id"] == float64(id) {
				return j
			}
		}
		t.Fatalf("no demo job %d", id)
		return nil
	}
	job := func(from, id int64, set map[string]any) json.RawMessage {
		j := base(from)
		j["id"] = id
		j["web_url"] = fmt.Sprintf("%s/-/jobs/%d", strings.Split(j["web_url"].(string), "/-/")[0], id)
		delete(j, "retried")
		delete(j, "token")
		delete(j, "environment")
		delete(j, "artifacts_archive") // the copies have no zip of their own
		for k, v := range set {
			j[k] = v
		}
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pl := base(demo.FailedJobID)["pipeline"].(map[string]any)
	pl["id"], pl["iid"] = retriedPipeline, 99
	pl["web_url"] = fmt.Sprintf("https://gitlab.example.com/demo/backend/-/pipelines/%d", retriedPipeline)
	flaky := map[string]any{"name": "flaky", "pipeline": pl, "status": "failed", "retried": true}
	running := map[string]any{"status": "running", "finished_at": nil, "duration": nil, "artifacts": []any{},
		"artifacts_file": nil, "artifacts_expire_at": nil, "failure_reason": nil}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	w := &world.World{InstanceURL: d.world.InstanceURL, Users: d.world.Users, Groups: d.world.Groups,
		Projects: d.world.Projects, Jobs: []json.RawMessage{
			job(demo.FailedJobID, flakyFirst, flaky),
			job(demo.FailedJobID, flakySecond, flaky),
			job(demo.FailedJobID, flakyLast, with(flaky, "status", "success", "retried", false)),
			job(demo.FailedJobID, cancelingJob, with(running, "status", "canceling", "pipeline", pl, "token", jobTokenCanceling)),
			job(demo.FailedJobID, erasedRunningJob, with(running, "pipeline", pl, "erased_at", "2026-01-06T10:00:00.000Z",
				"token", jobTokenErased)),
			job(50, frontendJob, with(running, "token", jobTokenFrontend)),
		}}
	im := &world.Importer{Store: d.Deps.Store, Files: d.Files, Now: d.Deps.Now}
	if _, err := im.Import(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	d.Counter.Reset()
}

func jobToken(tok string) map[string]string { return map[string]string{"JOB-TOKEN": tok} }

func ids(t *testing.T, body string) []int64 {
	t.Helper()
	var rows []jobRow
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		t.Fatalf("%v: %.300s", err, body)
	}
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// Every row of the pipeline jobs and bridges endpoints of the behaviour
// spec: who may read, which errors win, which rows come back.
func TestListPipelineJobsAndBridges(t *testing.T) {
	d := newDemo(t, 40)
	d.importMore(t)
	m := token(demo.TokenMaintainer)
	tests := []struct {
		name, function, target string
		header                 map[string]string
		status                 int
		body                   string  // a substring of the body
		ids                    []int64 // the exact rows, when given
		total                  string  // X-Total, "" for absent
	}{
		{"builds of a pipeline", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs", m, 200, "", []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}, "9"},
		{"encoded project path", "list-pipeline-jobs", "/api/v4/projects/demo%2Fbackend/pipelines/1001/jobs?per_page=3", m, 200, "", []int64{9, 8, 7}, "9"},
		{"scope array", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1999/jobs?scope[]=failed&scope[]=success&include_retried=true", m, 200, "", []int64{flakyLast, flakySecond, flakyFirst}, "3"},
		{"scope string", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1999/jobs?scope=failed", m, 200, "", []int64{}, "0"},
		{"retried twice, hidden", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1999/jobs", m, 200, "", []int64{erasedRunningJob, cancelingJob, flakyLast}, "3"},
		{"retried twice, included", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1999/jobs?include_retried=1", m, 200, "", []int64{erasedRunningJob, cancelingJob, flakyLast, flakySecond, flakyFirst}, "5"},
		{"retried only with their status", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1999/jobs?include_retried=true&scope=failed", m, 200, "", []int64{flakySecond, flakyFirst}, "2"},
		{"include_retried false", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1999/jobs?include_retried=false", m, 200, "", []int64{erasedRunningJob, cancelingJob, flakyLast}, "3"},
		{"include_retried invalid", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1999/jobs?include_retried=maybe", m, 400, `{"error":"include_retried is invalid"}`, nil, ""},
		{"scope hash", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?scope[a]=failed", m, 400, `{"error":"scope is invalid"}`, nil, ""},
		{"scope invalid", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?scope=bogus", m, 400, `{"error":"scope does not have a valid value"}`, nil, ""},
		{"pipeline_id invalid", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/abc/jobs", m, 400, `{"error":"pipeline_id is invalid"}`, nil, ""},
		{"per_page zero", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?per_page=0", m, 400, `{"error":"per_page has a value not allowed"}`, nil, ""},
		{"pipeline of another project", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1007/jobs", m, 404, `{"message":"404 Not found"}`, nil, ""},
		{"unknown pipeline", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/999999/jobs", m, 404, `{"message":"404 Not found"}`, nil, ""},
		{"unknown project", "list-pipeline-jobs", "/api/v4/projects/99/pipelines/1001/jobs", m, 404, `{"message":"404 Project Not Found"}`, nil, ""},
		{"anonymous, private project", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs", nil, 404, `{"message":"404 Project Not Found"}`, nil, ""},
		{"anonymous, public project", "list-pipeline-jobs", "/api/v4/projects/demo%2Fwebsite/pipelines/1008/jobs?per_page=2", nil, 200, "", []int64{65, 64}, "9"},
		{"non-member, private project", "list-pipeline-jobs", "/api/v4/projects/2/pipelines/1007/jobs", token(demo.TokenOutsider), 404, `{"message":"404 Project Not Found"}`, nil, ""},
		{"guest, members-only pipelines", "list-pipeline-jobs", "/api/v4/projects/2/pipelines/1007/jobs", token(demo.TokenGuest), 403, `{"message":"403 Forbidden"}`, nil, ""},
		{"guest, public pipelines", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?per_page=1", token(demo.TokenGuest), 200, "", []int64{9}, "9"},
		{"reporter", "list-pipeline-jobs", "/api/v4/projects/2/pipelines/1007/jobs?per_page=1", token(demo.TokenReporter), 200, "", []int64{frontendJob}, "10"},
		{"bad token", "list-pipeline-jobs", "/api/v4/projects/3/pipelines/1008/jobs", token("glpat-nope"), 401, `{"message":"401 Unauthorized"}`, nil, ""},
		{"job token", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?scope=running", jobToken(demo.JobTokenRunning), 200, "", []int64{7}, "1"},
		{"job token, bearer", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?scope=running", map[string]string{"Authorization": "Bearer " + demo.JobTokenRunning}, 200, "", []int64{7}, "1"},
		{"job token, other project", "list-pipeline-jobs", "/api/v4/projects/2/pipelines/1007/jobs", jobToken(demo.JobTokenRunning), 403,
			`{"message":"403 Forbidden - Authentication by CI/CD job token not allowed from demo/backend to project #2."}`, nil, ""},
		{"job token of a finished job", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs", jobToken(demo.JobTokenFinished), 401, `{"message":"401 Unauthorized"}`, nil, ""},
		{"job token of an erased job", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs", jobToken(jobTokenErased), 401, `{"message":"401 Unauthorized"}`, nil, ""},
		{"job token of a canceling job", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs?per_page=1", jobToken(jobTokenCanceling), 200, "", []int64{9}, "9"},
		{"wrong method", "list-pipeline-jobs", "/api/v4/projects/1/pipelines/1001/jobs", m, 404, `{"error":"404 Not Found"}`, nil, ""},
		{"bridges", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1001/bridges", m, 200, `"id":1002,"iid":1,"project_id":2`, []int64{10}, "1"},
		{"trigger_jobs", "list-pipeline-bridges", "/api/v4/projects/demo%2Fbackend/pipelines/1001/trigger_jobs", m, 200, `"id":1002,"iid":1,"project_id":2`, []int64{10}, "1"},
		{"no bridges", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1003/bridges", m, 200, "[]", []int64{}, "0"},
		{"bridges by scope", "list-pipeline-bridges", "/api/v4/projects/2/pipelines/1011/trigger_jobs?scope[]=success", m, 200, "", []int64{93}, "1"},
		{"bridges, scope hash", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1001/bridges?scope[x]=success", m, 400, `{"error":"scope is invalid"}`, nil, ""},
		{"bridges, guest", "list-pipeline-bridges", "/api/v4/projects/2/pipelines/1011/bridges", token(demo.TokenGuest), 403, `{"message":"403 Forbidden"}`, nil, ""},
		{"bridges, anonymous private", "list-pipeline-bridges", "/api/v4/projects/2/pipelines/1011/bridges", nil, 404, `{"message":"404 Project Not Found"}`, nil, ""},
		{"bridges, other project", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1011/trigger_jobs", m, 404, `{"message":"404 Not found"}`, nil, ""},
		{"bridges, job token other project", "list-pipeline-bridges", "/api/v4/projects/2/pipelines/1011/bridges", jobToken(demo.JobTokenRunning), 403, "Authentication by CI/CD job token not allowed", nil, ""},
		{"bridges, unknown route", "list-pipeline-bridges", "/api/v4/projects/1/pipelines/1001/bridgez", m, 404, `{"error":"404 Not Found"}`, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if tc.name == "wrong method" {
				method = http.MethodPost
			}
			r := d.call(t, tc.function, method, tc.target, tc.header)
			if r.Code != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.Code, tc.status, r.Body)
			}
			mustContain(t, r.Body.String(), tc.body)
			if tc.ids != nil {
				if got := fmt.Sprint(ids(t, r.Body.String())); got != fmt.Sprint(tc.ids) {
					t.Errorf("rows %s, want %v", got, tc.ids)
				}
			}
			if got := r.Header().Get("X-Total"); got != tc.total {
				t.Errorf("X-Total %q, want %q", got, tc.total)
			}
			if r.Code == 200 && tc.function == "list-pipeline-bridges" {
				for _, row := range decode[[]map[string]any](t, r.Body) {
					_, down := row["downstream_pipeline"]
					_, artifacts := row["artifacts"]
					if !down || artifacts {
						t.Errorf("job %v is not rendered with the Bridge entity", row["id"])
					}
				}
			}
		})
	}
}

// Offset pages carry GitLab's totals and links, page after page, each page
// one Query per partition reading at most per_page+1 items beyond the skip.
func TestListPipelineJobsOffsetPages(t *testing.T) {
	d := newDemo(t, 40)
	d.importMore(t)
	base := "/api/v4/projects/1/pipelines/1999/jobs?include_retried=yes&per_page=2"
	wantPages := [][]int64{{erasedRunningJob, cancelingJob}, {flakyLast, flakySecond}, {flakyFirst}}
	for i, want := range wantPages {
		page := i + 1
		d.coldContainer() // the call counts below are a cold container's
		d.Counter.Reset()
		r := d.call(t, "list-pipeline-jobs", http.MethodGet, fmt.Sprintf("%s&page=%d", base, page), token(demo.TokenReporter))
		if r.Code != 200 {
			t.Fatalf("page %d: %d %s", page, r.Code, r.Body)
		}
		if got := fmt.Sprint(ids(t, r.Body.String())); got != fmt.Sprint(want) {
			t.Errorf("page %d: rows %s, want %v", page, got, want)
		}
		h := r.Header()
		next := ""
		if page < len(wantPages) {
			next = fmt.Sprint(page + 1)
		}
		if h.Get("X-Total") != "5" || h.Get("X-Total-Pages") != "3" || h.Get("X-Next-Page") != next || h.Get("X-Page") != fmt.Sprint(page) {
			t.Errorf("page %d: headers %v", page, h)
		}
		link := h.Get("Link")
		mustContain(t, link, `<https://example.com/api/v4/projects/1/pipelines/1999/jobs?id=1&include_retried=true&page=3&per_page=2&pipeline_id=1999>; rel="last"`)
		mustContain(t, link, `<https://example.com/api/v4/projects/1/pipelines/1999/jobs?id=1&include_retried=true&page=1&per_page=2&pipeline_id=1999>; rel="first"`)
		calls := d.Counter.Calls()
		if calls["Query"] != 2 || calls["BatchGetItem"] != 3 || d.Counter.Total() != 5 {
			t.Errorf("page %d: calls %v, want 2 Queries (latest and retried tries) and 3 BatchGetItem", page, calls)
		}
		if max := 2 * ((page-1)*2 + 2 + 1); d.Counter.Scanned() > max {
			t.Errorf("page %d: %d items read, want at most %d", page, d.Counter.Scanned(), max)
		}
	}
}

// Keyset pages (beyond GitLab) walk a pipeline's jobs with the project
// jobs' cursor and Link rules, one Query per partition per page reading at
// most per_page+1 items, however deep the page.
func TestListPipelineJobsKeysetWalk(t *testing.T) {
	d := newDemo(t, 40)
	d.importMore(t)
	for _, tc := range []struct {
		query      string
		want       []int64
		partitions int
	}{
		{"", []int64{erasedRunningJob, cancelingJob, flakyLast}, 1},
		{"&include_retried=true", []int64{erasedRunningJob, cancelingJob, flakyLast, flakySecond, flakyFirst}, 2},
		{"&include_retried=true&scope[]=failed&scope[]=running", []int64{erasedRunningJob, flakySecond, flakyFirst}, 4},
	} {
		target := "/api/v4/projects/demo%2Fbackend/pipelines/1999/jobs?pagination=keyset&per_page=1" + tc.query
		var got []int64
		for pages := 0; target != ""; pages++ {
			if pages > 10 {
				t.Fatal("no end to the walk")
			}
			d.Counter.Reset()
			r := d.call(t, "list-pipeline-jobs", http.MethodGet, target, token(demo.TokenMaintainer))
			if r.Code != 200 {
				t.Fatalf("%s: %d %s", target, r.Code, r.Body)
			}
			got = append(got, ids(t, r.Body.String())...)
			for _, h := range []string{"X-Page", "X-Total", "X-Total-Pages"} {
				if _, ok := r.Header()[h]; ok {
					t.Errorf("%s sent in keyset mode", h)
				}
			}
			if q := d.Counter.Calls()["Query"]; q != tc.partitions {
				t.Errorf("%s: %d Queries, want %d", target, q, tc.partitions)
			}
			if d.Counter.Scanned() > 2*tc.partitions {
				t.Errorf("%s: %d items read, want at most %d", target, d.Counter.Scanned(), 2*tc.partitions)
			}
			target = nextLink(t, r.Header().Get("Link"))
			if target != "" && r.Header().Get("X-Next-Cursor") == "" {
				t.Error("Link without X-Next-Cursor")
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("query %q: walked %v, want %v", tc.query, got, tc.want)
		}
	}
	r := d.call(t, "list-pipeline-jobs", http.MethodGet, "/api/v4/projects/1/pipelines/1999/jobs?pagination=keyset&sort=asc", token(demo.TokenMaintainer))
	if r.Code != 405 {
		t.Errorf("keyset asc: %d %s", r.Code, r.Body)
	}
}

// Totals come from the counts on the pipeline item; beyond 10,000 rows
// GitLab sends none, and neither do we.
func TestListPipelineJobsTotalCap(t *testing.T) {
	d := newDemo(t, 40)
	for _, tc := range []struct {
		successes int64
		total     string
	}{{10000, "10000"}, {10001, ""}} {
		// Stand in for a pipeline of 10,000 jobs: set the kept count of its
		// latest successful builds.
		_, err := d.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName:                 aws.String(d.Table),
			Key:                       map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "PL#1003"}, "SK": &types.AttributeValueMemberS{Value: "PL"}},
			UpdateExpression:          aws.String("SET n.B_success_L = :n, n.B_failed_L = :z"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: fmt.Sprint(tc.successes)}, ":z": &types.AttributeValueMemberN{Value: "0"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := d.call(t, "list-pipeline-jobs", http.MethodGet, "/api/v4/projects/1/pipelines/1003/jobs?scope[]=success&scope[]=failed&per_page=100", token(demo.TokenMaintainer))
		if r.Code != 200 {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
		h := r.Header()
		if h.Get("X-Total") != tc.total {
			t.Errorf("%d rows: X-Total %q, want %q", tc.successes, h.Get("X-Total"), tc.total)
		}
		_, pages := h["X-Total-Pages"]
		hasLast := strings.Contains(h.Get("Link"), `rel="last"`)
		if pages != (tc.total != "") || hasLast != (tc.total != "") {
			t.Errorf("%d rows: X-Total-Pages sent %v, rel=last sent %v", tc.successes, pages, hasLast)
		}
	}
}
