package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/auth"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/paginate"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// The fast tier: parsers and the error table, no store.

func postRequest(t *testing.T, target, contentType, body string) *request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return &request{Request: r}
}

func TestPostParamsBoolean(t *testing.T) {
	tests := []struct {
		query, contentType, body string
		want                     bool
		err                      string
	}{
		{"", "", "", false, ""},
		{"force=true", "", "", true, ""},
		{"force=1", "", "", true, ""},
		{"force=Yes", "", "", true, ""},
		{"force=off", "", "", false, ""},
		{"force=", "", "", false, ""},
		{"force=maybe", "", "", false, "force is invalid"},
		{"force=false", "application/x-www-form-urlencoded", "force=true", true, ""}, // the body wins
		{"force=true", "application/x-www-form-urlencoded", "other=1", true, ""},
		{"", "application/json", `{"force":true}`, true, ""},
		{"", "application/json", `{"force":0}`, false, ""},
		{"", "application/json", `{"force":2}`, false, "force is invalid"},
		{"", "application/json", `{"force":"t"}`, true, ""},
		{"", "application/json", `{"force":[true]}`, false, "force is invalid"},
		{"", "application/json", `{"force":`, false, "message body does not match declared format"},
		{"", "application/json", `[1,2]`, false, ""}, // not an object: no parameters
		{"", "text/plain", "force=true", false, ""},  // other types carry none
	}
	for _, tc := range tests {
		rq := postRequest(t, "/x?"+tc.query, tc.contentType, tc.body)
		pp, err := rq.postParams()
		var got bool
		if err == nil {
			got, err = pp.boolean("force")
		}
		if msg := errorBody(err); msg != tc.err || (err == nil && got != tc.want) {
			t.Errorf("%q %s %q: %v %q, want %v %q", tc.query, tc.contentType, tc.body, got, msg, tc.want, tc.err)
		}
	}
}

func TestPostParamsVariables(t *testing.T) {
	const name = "job_variables_attributes"
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		query, contentType, body string
		want                     []jobs.Variable
		err                      string
	}{
		{"", "", "", nil, ""},
		{"", "application/json", `{"job_variables_attributes":[{"key":"A","value":"1"},{"key":"B","value":2}]}`,
			[]jobs.Variable{{Key: "A", Value: "1"}, {Key: "B", Value: "2"}}, ""},
		{"", "application/json", `{"job_variables_attributes":[{"key":"A","value":true}]}`,
			[]jobs.Variable{{Key: "A", Value: "true"}}, ""},
		{"", "application/json", `{"job_variables_attributes":null}`, nil, ""},
		{"", "application/json", `{"job_variables_attributes":[]}`, nil, ""},
		{"", "application/json", `{"job_variables_attributes":{"key":"A"}}`, nil, name + " is invalid"},
		{"", "application/json", `{"job_variables_attributes":["A"]}`, nil, name + " is invalid"},
		{"", "application/json", `{"job_variables_attributes":[{"key":"A"},{"value":"v"}]}`, nil,
			name + "[0][value] is missing, " + name + "[1][key] is missing"},
		{"", "application/json", `{"job_variables_attributes":[{"key":["A"],"value":"v"}]}`, nil, name + "[0][key] is invalid"},
		{"", "application/json", `{"job_variables_attributes":[{"key":null,"value":"v"}]}`, []jobs.Variable{{Key: "", Value: "v"}}, ""}, // present but null: Grape lets it through
		{"job_variables_attributes[][key]=A&job_variables_attributes[][value]=1&job_variables_attributes[][key]=B&job_variables_attributes[][value]=2",
			"", "", []jobs.Variable{{Key: "A", Value: "1"}, {Key: "B", Value: "2"}}, ""},
		{"job_variables_attributes[][key]=Q&job_variables_attributes[][value]=q", form,
			"job_variables_attributes[][key]=F&job_variables_attributes[][value]=f", // the body wins
			[]jobs.Variable{{Key: "F", Value: "f"}}, ""},
		{"job_variables_attributes[key]=A", "", "", nil, name + " is invalid"},
		{"job_variables_attributes[][key]=A", "", "", nil, name + "[0][value] is missing"},
		{"job_variables_attributes_other=1", "", "", nil, ""},
	}
	for _, tc := range tests {
		rq := postRequest(t, "/x?"+tc.query, tc.contentType, tc.body)
		pp, err := rq.postParams()
		var got []jobs.Variable
		if err == nil {
			got, err = pp.variables(name)
		}
		if msg := errorBody(err); msg != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q %q: %v %q, want %v %q", tc.query, tc.body, got, msg, tc.want, tc.err)
		}
	}
}

// Rack keeps the order of pairs and decodes each; a pair that does not
// decode is dropped, as Rack drops it.
func TestPairs(t *testing.T) {
	got := pairs("a=1&&b=%20x&a=2&bad=%zz&c")
	want := []pair{{"a", "1"}, {"b", " x"}, {"a", "2"}, {"c", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pairs = %v, want %v", got, want)
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		query string
		forms scopeForms
		want  []jobs.Status
		err   string
	}{
		{"", scopeList, nil, ""},
		{"scope=failed", scopeList, []jobs.Status{jobs.Failed}, ""},
		{"scope[]=failed&scope[]=success&scope[]=failed", scopeList, []jobs.Status{jobs.Failed, jobs.Success}, ""},
		{"scope[]=", scopeList, nil, ""},
		{"scope[]=nope", scopeList, nil, "scope does not have a valid value"},
		{"scope[a]=failed", scopeList, nil, "scope is invalid"},
		{"scope[a]=failed", scopeOrHash, []jobs.Status{jobs.Failed}, ""},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		got, err := parseScope(q, tc.forms)
		if msg := errorBody(err); msg != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %q, want %v %q", tc.query, got, msg, tc.want, tc.err)
		}
	}
}

// The ref filter's parameter: blank or whitespace is no filter, anything
// else is kept byte for byte (slashes, unicode, "#"), the last value
// counts, an array or hash form is 400; which pages read the ref's index,
// which need its count, and which are refused.
func TestParseProjectJobsRef(t *testing.T) {
	refCursor := paginate.EncodeCursor(paginate.Cursor{ID: 90, RefOrdinal: 7})
	buildCursor := paginate.EncodeCursor(paginate.Cursor{ID: 90, Ordinal: 40})
	tests := []struct {
		query    string
		ref      string
		err      string
		counted  string // the ref the lookup counts
		after    store.Position
		rangeErr string
	}{
		{"", "", "", "", store.Position{}, ""},
		{"ref=", "", "", "", store.Position{}, ""},
		{"ref=%20%09%0A", "", "", "", store.Position{}, ""},
		{"ref=main", "main", "", "", store.Position{}, ""},
		{"ref=%20main", " main", "", "", store.Position{}, ""},
		{"ref=feature%2Flogin&page=3", "feature/login", "", "feature/login", store.Position{}, ""},
		{"ref=feature/%C3%BCn%C3%AFcode-%E2%9C%93&page=2", "feature/ünïcode-✓", "", "feature/ünïcode-✓", store.Position{}, ""},
		{"ref=fix%2Fa%23b", "fix/a#b", "", "", store.Position{}, ""},
		{"ref=a&ref=b", "b", "", "", store.Position{}, ""},
		{"ref[]=main", "", "ref is invalid", "", store.Position{}, ""},
		{"ref[x]=main", "", "ref is invalid", "", store.Position{}, ""},
		{"ref=main&scope=failed&page=3", "main", "", "", store.Position{}, ""},
		{"ref=main&scope=failed&page=2501", "main", "", "", store.Position{},
			"Offset pagination has a maximum allowed offset of 50000 for requests that return objects of type Ci::Build. Remaining records can be retrieved using keyset pagination."},
		{"ref=main&page=2501", "main", "", "main", store.Position{}, ""},
		{"ref=main&pagination=keyset&cursor=" + refCursor, "main", "", "", store.Position{ID: 90, Ordinal: 7}, ""},
		{"ref=main&pagination=keyset&cursor=" + buildCursor, "main", "", "", store.Position{}, "cursor is invalid"},
		{"pagination=keyset&cursor=" + refCursor, "", "", "", store.Position{}, "cursor is invalid"},
		{"pagination=keyset&cursor=" + buildCursor, "", "", "", store.Position{ID: 90, Ordinal: 40}, ""},
		{"ref=main&scope=failed&pagination=keyset&cursor=" + buildCursor, "main", "", "", store.Position{ID: 90}, ""},
	}
	// The pagination errors are paginate's, which the error table words.
	msgOf := func(err error) string { return strings.TrimPrefix(errorBody(err), "not a GitLab error: ") }
	for _, tc := range tests {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		pq, err := parseProjectJobs(q)
		if msg := errorBody(err); msg != tc.err || pq.ref != tc.ref {
			t.Errorf("%q: ref %q, error %q; want %q, %q", tc.query, pq.ref, msg, tc.ref, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		rq := &request{Request: httptest.NewRequest(http.MethodGet, "/x?"+tc.query, nil)}
		if got := projectJobsRef(rq); got != tc.counted {
			t.Errorf("%q: counted ref %q, want %q", tc.query, got, tc.counted)
		}
		rng, err := pq.projectJobsRange()
		if msg := msgOf(err); msg != tc.rangeErr || (err == nil && (rng.After != tc.after || rng.Ref != tc.ref)) {
			t.Errorf("%q: range %+v %q, want after %+v %q", tc.query, rng, msg, tc.after, tc.rangeErr)
		}
	}
}

func TestQueryParameters(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
		err   bool
	}{{"", false, false}, {"true", true, false}, {"ON", true, false}, {"n", false, false}, {"2", false, true}} {
		got, err := queryBool(url.Values{"include_retried": {tc.value}}, "include_retried")
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("queryBool(%q) = %v, %v", tc.value, got, err)
		}
	}
	for _, tc := range []struct {
		query string
		want  int64
		err   string
	}{
		{"", 0, ""}, {"byte_limit=1", 1, ""}, {"byte_limit=512000", 512000, ""},
		{"byte_limit=0", 0, "byte_limit does not have a valid value"},
		{"byte_limit=512001", 0, "byte_limit does not have a valid value"},
		{"byte_limit=1e3", 0, "byte_limit is invalid"},
	} {
		rq := &request{Request: httptest.NewRequest(http.MethodGet, "/x?"+tc.query, nil)}
		got, err := rq.queryInt("byte_limit", 1, maxTraceLimit)
		if msg := errorBody(err); got != tc.want || msg != tc.err {
			t.Errorf("queryInt(%q) = %d %q, want %d %q", tc.query, got, msg, tc.want, tc.err)
		}
	}
}

func TestPathIDAndProjectRef(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int64
		err   string
	}{{"42", 42, ""}, {"-1", -1, ""}, {"4x", 0, "job_id is invalid"}, {"", 0, "job_id is invalid"}} {
		got, err := pathID(map[string]string{"job_id": tc.value}, "job_id")
		if msg := errorBody(err); got != tc.want || msg != tc.err {
			t.Errorf("pathID(%q) = %d %q", tc.value, got, msg)
		}
	}
	if n, err := pathID(map[string]string{}, "job_id"); n != 0 || err != nil {
		t.Errorf("a route without the parameter: %d, %v", n, err)
	}
	for id, want := range map[string]store.ProjectRef{
		"7": {ID: 7}, "0": {}, "-3": {}, "99999999999999999999": {}, "group/project": {Path: "group/project"},
		"project": {}, "a b/c": {Path: "a b/c"},
	} {
		if got := projectRef(id); got != want {
			t.Errorf("projectRef(%q) = %+v, want %+v", id, got, want)
		}
	}
}

func TestRouteMatch(t *testing.T) {
	bridges := endpoints[ListPipelineBridges].route
	tests := []struct {
		route        Route
		method, path string
		project      string
		params       map[string]string
		ok           bool
	}{
		{endpoints[GetJob].route, "GET", "/api/v4/projects/a/b/c/jobs/7", "a/b/c", map[string]string{"job_id": "7"}, true},
		{endpoints[GetJob].route, "HEAD", "/api/v4/projects/1/jobs/7", "1", map[string]string{"job_id": "7"}, true},
		{endpoints[GetJob].route, "POST", "/api/v4/projects/1/jobs/7", "", nil, false},
		{endpoints[GetJob].route, "GET", "/api/v4/projects/jobs/7", "", nil, false},
		{endpoints[CancelJob].route, "HEAD", "/api/v4/projects/1/jobs/7/cancel", "", nil, false},
		{bridges, "GET", "/api/v4/projects/1/pipelines/3/trigger_jobs", "1", map[string]string{"pipeline_id": "3"}, true},
		{bridges, "GET", "/api/v4/projects/1/pipelines/3/bridges", "1", map[string]string{"pipeline_id": "3"}, true},
		{bridges, "GET", "/api/v4/projects/1/pipelines/3/jobs", "", nil, false},
		{endpoints[GetJobByToken].route, "GET", "/api/v4/job", "", map[string]string{}, true},
		{endpoints[GetJobByToken].route, "GET", "/api/v4/job/", "", map[string]string{}, false},
		{endpoints[NotFound].route, "GET", "/anything", "", nil, false},
	}
	for _, tc := range tests {
		project, params, ok := tc.route.match(tc.method, tc.path)
		if ok != tc.ok || (ok && (project != tc.project || !reflect.DeepEqual(params, tc.params))) {
			t.Errorf("%s %s: %q %v %v, want %q %v %v", tc.method, tc.path, project, params, ok, tc.project, tc.params, tc.ok)
		}
	}
}

// Every error the packages below the API return has GitLab's answer in the
// one table; anything else is a 500 whose cause is not shown.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		err    error
		status int
		body   string
	}{
		{auth.ErrUnauthorized, 401, `{"message":"401 Unauthorized"}`},
		{auth.ErrTokenExpired, 401, `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`},
		{auth.ErrTokenRevoked, 401, `{"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}`},
		{auth.ErrInsufficientScope, 403, `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}`},
		{paginate.ErrKeysetOrder, 405, ""},
		{paginate.ErrOffsetTooLarge, 405, ""},
		{paginate.ErrPage, 400, `{"error":"page is invalid"}`},
		{paginate.ErrPerPage, 400, `{"error":"per_page is invalid"}`},
		{paginate.ErrPerPageZero, 400, ""},
		{paginate.ErrCursorInvalid, 400, ""},
		{jobs.ErrNotRetryable, 403, `{"message":"403 Forbidden - Job is not retryable"}`},
		{jobs.ErrNotErasable, 403, `{"message":"403 Forbidden - Job is not erasable!"}`},
		{jobs.ErrUnplayable, 400, ""},
		{store.ErrConflict, 409, `{"message":"409 Conflict: Resource lock"}`},
		{fmt.Errorf("job 7: %w", store.ErrNotFound), 404, `{"message":"404 Not found"}`},
		{errForbidden, 403, `{"message":"403 Forbidden"}`},
		{fmt.Errorf("wrapped: %w", errProjectNotFound), 404, `{"message":"404 Project Not Found"}`},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), 503, `{"message":"503 Service Unavailable"}`},
		{errors.New("dynamodb: connection reset by peer"), 503, `{"message":"503 Service Unavailable"}`},
		{errors.New("decode job: unexpected attribute type"), 500, `{"message":"500 Internal Server Error"}`},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		resp, _ := toError(tc.err)
		writeError(w, resp)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%v: %d %s, want %d %s", tc.err, w.Code, w.Body, tc.status, tc.body)
		}
		if resp.Status == http.StatusUnauthorized && strings.Contains(w.Body.String(), "invalid_token") &&
			!strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="Protected by OAuth 2.0", error="invalid_token"`) {
			t.Errorf("%v: no WWW-Authenticate header", tc.err)
		}
	}
	for _, row := range errorTable {
		if _, known := toError(row.err); !known {
			t.Errorf("%v: in the table but not known", row.err)
		}
	}
}

// errorBody is the message of a GitLab error (Grape's "error" or GitLab's
// "message"), "" for none.
func errorBody(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		return "not a GitLab error: " + err.Error()
	}
	m, _ := e.Body.(map[string]string)
	return m["error"] + m["message"]
}
