package api

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Range headers as RFC 9110 §14.1 reads them, placed in a log of 100
// bytes, and the S3 Range asked for them.
func TestByteRanges(t *testing.T) {
	tests := []struct {
		header      string
		parsed      bool
		first, last int64
		satisfiable bool
		s3          string
	}{
		{"bytes=0-9", true, 0, 9, true, "bytes=0-9"},
		{"bytes=10-", true, 10, 99, true, fmt.Sprintf("bytes=9-%d", 9+maxInlineTrace)},
		{"bytes=50-500", true, 50, 99, true, "bytes=49-500"},
		{"bytes=99-", true, 99, 99, true, fmt.Sprintf("bytes=98-%d", 98+maxInlineTrace)},
		{"bytes=100-", true, 0, 0, false, fmt.Sprintf("bytes=99-%d", 99+maxInlineTrace)},
		{"bytes=-10", true, 90, 99, true, "bytes=-10"},
		{"bytes=-1000", true, 0, 99, true, "bytes=-1000"},
		{"bytes=-0", true, 0, 0, false, "bytes=-1"},
		{" bytes=0-0 ", true, 0, 0, true, "bytes=0-0"},
		{"bytes=9223372036854775807-", true, 0, 0, false, "bytes=9223372036854775806-9223372036854775807"},
		{"bytes=99999999999999999999-", false, 0, 0, false, ""},
		{"bytes=0-1,5-6", false, 0, 0, false, ""},
		{"bytes=5-2", false, 0, 0, false, ""},
		{"bytes=a-", false, 0, 0, false, ""},
		{"bytes=-", false, 0, 0, false, ""},
		{"bytes=+1-2", false, 0, 0, false, ""},
		{"bytes=--1", false, 0, 0, false, ""},
		{"lines=0-1", false, 0, 0, false, ""},
		{"", false, 0, 0, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			r := parseRange(tc.header)
			if (r != nil) != tc.parsed {
				t.Fatalf("parsed %v, want %v", r != nil, tc.parsed)
			}
			if r == nil {
				return
			}
			first, last, ok := r.resolve(100)
			if ok != tc.satisfiable || ok && (first != tc.first || last != tc.last) {
				t.Errorf("resolve: %d-%d %v, want %d-%d %v", first, last, ok, tc.first, tc.last, tc.satisfiable)
			}
			if got := r.s3Range(); got != tc.s3 {
				t.Errorf("S3 Range %q, want %q", got, tc.s3)
			}
		})
	}
	if _, _, ok := (&byteRange{first: 5, suffix: true}).resolve(0); ok {
		t.Error("a suffix of an empty log is satisfiable")
	}
}

// The Lambda adapter splits header values on commas: a two-range Range
// stays two ranges (ignored) and an If-Range date stays a date.
func TestSplitHeadersJoined(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "/api/v4/projects/1/jobs/1/trace", nil)
	r.Header["Range"] = []string{"bytes=0-1", "5-6"}
	r.Header["If-Range"] = []string{"Tue", "01 Dec 2026 20:36:16 GMT"}
	tr := newTraceRequest(nil, &request{Request: r}, &jobs.Project{ID: 1}, &jobs.Job{ID: 1}, 0, 0)
	if tr.rng != nil || tr.ifRange != "Tue, 01 Dec 2026 20:36:16 GMT" {
		t.Errorf("Range %+v, If-Range %q", tr.rng, tr.ifRange)
	}
}
