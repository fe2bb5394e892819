package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/paginate"
)

// Whatever the client puts in a request, the parsers answer a value or
// GitLab's 4xx (an *Error or a paginate error, which the error table maps),
// never a panic nor a 500. Seeds: testdata/fuzz/<target>, plus these.

// asClientError reports whether err is one of GitLab's 4xx answers.
func asClientError(err error) bool {
	resp, known := toError(err)
	return known && resp.Status >= 400 && resp.Status < 500
}

func FuzzPathIDs(f *testing.F) {
	for _, s := range []string{"1", "-1", "0", "9223372036854775808", "-9223372036854775809", "1\x00", "+5", "05", "1e3", " 1", "٣", "group/project", "a%2Fb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := pathID(map[string]string{"job_id": v}, "job_id")
		if err != nil && !asClientError(err) {
			t.Fatalf("%q: %v", v, err)
		}
		if err == nil && n != 0 && strings.TrimLeft(v, "+-0") == "" {
			t.Fatalf("%q parsed as %d", v, n)
		}
		ref := projectRef(v)
		if ref.ID < 0 || (ref.ID != 0 && ref.Path != "") {
			t.Fatalf("%q: ref %+v", v, ref)
		}
	})
}

func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{"scope=pending", "scope[]=running&scope[]=failed", "scope[a]=success", "scope=%00",
		"page=2&per_page=100", "per_page=0", "page=-1", "pagination=keyset&id_after=5", "cursor=eyJpZCI6MX0%3D",
		"byte_offset=10&byte_limit=5", "byte_offset=99999999999999999999", "%zz=1", "a=%", "scope=pending;running",
		"ref=feature%2Flogin&page=3", "ref[]=main", "ref=%20&scope=failed", "ref=main&pagination=keyset&cursor=eyJpZCI6IjkiLCJfa2QiOiJuIiwiciI6IjMifQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		for _, forms := range []scopeForms{scopeList, scopeOrHash} {
			if _, err := parseScope(q, forms); err != nil && !asClientError(err) {
				t.Fatalf("scope %q: %v", raw, err)
			}
		}
		if _, err := paginate.Parse(q); err != nil && !asClientError(err) {
			t.Fatalf("page %q: %v", raw, err)
		}
		pq, err := parseProjectJobs(q)
		if err != nil && !asClientError(err) {
			t.Fatalf("project jobs %q: %v", raw, err)
		}
		if _, err := pq.projectJobsRange(); err == nil && pq.ref != strings.TrimSpace(pq.ref) && strings.TrimSpace(pq.ref) == "" {
			t.Fatalf("blank ref %q kept from %q", pq.ref, raw)
		} else if err != nil && !asClientError(err) {
			t.Fatalf("project jobs range %q: %v", raw, err)
		}
		rq := &request{Request: httptest.NewRequest(http.MethodGet, "/", nil)}
		rq.URL.RawQuery = raw
		for _, name := range []string{"byte_offset", "byte_limit"} {
			if _, err := rq.queryInt(name, 0, 1<<20); err != nil && !asClientError(err) {
				t.Fatalf("%s %q: %v", name, raw, err)
			}
		}
	})
}

func FuzzPostParams(f *testing.F) {
	for _, s := range [][2]string{
		{"application/json", `{"force":true}`},
		{"application/json", `{"job_variables_attributes":[{"key":"K","value":"V"}]}`},
		{"application/json", `{"job_variables_attributes":[{"key":1}]}`},
		{"application/json", `[1,2`},
		{"application/x-www-form-urlencoded", "job_variables_attributes[][key]=K&job_variables_attributes[][value]=V"},
		{"application/x-www-form-urlencoded", "job_variables_attributes[key]=K"},
		{"application/x-www-form-urlencoded", "force=maybe"},
		{"multipart/form-data; boundary=x", "--x--"},
		{"application/json; charset=utf-8", "\x00"},
	} {
		f.Add(s[0], s[1], "force=1")
	}
	f.Fuzz(func(t *testing.T, contentType, body, query string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		pp, err := (&request{Request: r}).postParams()
		if err != nil {
			if !asClientError(err) {
				t.Fatalf("%q %q: %v", contentType, body, err)
			}
			return
		}
		if _, err := pp.boolean("force"); err != nil && !asClientError(err) {
			t.Fatalf("force: %v", err)
		}
		if _, err := pp.variables("job_variables_attributes"); err != nil && !asClientError(err) {
			t.Fatalf("variables: %v", err)
		}
	})
}
