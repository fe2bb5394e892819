package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Whatever credentials a request carries, FromRequest picks one of them
// (or none) whole, and never panics. Seeds: testdata/fuzz/FuzzFromRequest, plus these.
func FuzzFromRequest(f *testing.F) {
	f.Add("private_token=p&job_token=j", "glpat-a, glpat-b", "glcbt-j", "Bearer glpat-x", true)
	f.Add("token=%00", "", "", "Bearer ", false)
	f.Add("%zz", "\x00", "a,b", "Basic eA==", true)
	f.Fuzz(func(t *testing.T, query, private, job, authorization string, jobTokens bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = query
		r.Header["Private-Token"] = []string{private}
		r.Header["Job-Token"] = []string{job}
		r.Header["Authorization"] = []string{authorization}
		c := FromRequest(r, jobTokens)
		if (c.Secret == "") != (c.Source == None) {
			t.Fatalf("%+v", c)
		}
		if c.Source == JobToken && !jobTokens {
			t.Fatalf("job token where not allowed: %+v", c)
		}
	})
}
