package api

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// taggedHeaders are the headers that are part of what a JSON answer says
// besides its body (a page's place in its list), so its entity tag covers
// them: a 304 then stands for the headers it carries too.
var taggedHeaders = []string{"Content-Type", "Link", "X-Page", "X-Per-Page", "X-Next-Page", "X-Prev-Page",
	"X-Total", "X-Total-Pages", "X-Next-Cursor"}

// bodyTag is the strong entity tag of a JSON answer: a digest of the exact
// bytes and headers sent. A job's body depends on more than its version
// (its pipeline's, user's and runner's documents, the project's URL, and a
// running job's durations, which grow with the clock), so only a digest
// changes exactly when the body does; it is computed from what the 200
// reads, so a 304 costs the same store calls.
func bodyTag(h http.Header, body []byte) string {
	d := sha256.New()
	for _, k := range taggedHeaders {
		d.Write([]byte(k + ": " + h.Get(k) + "\n"))
	}
	d.Write(body)
	return `"` + base64.RawURLEncoding.EncodeToString(d.Sum(nil)[:18]) + `"`
}

// writeTagged writes a JSON 200 with its entity tag, or a 304 without the
// body when the client holds that tag already. Headers set before (a page's
// Link and X-* headers, X-Request-Id) go out with either.
func writeTagged(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	tag := bodyTag(w.Header(), body)
	w.Header().Set("ETag", tag)
	if noneMatch(r.Header).matches(tag) {
		notModified(w)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// notModified answers 304: no body, and none of the body's own metadata
// (RFC 9110 §15.4.5).
func notModified(w http.ResponseWriter) {
	h := w.Header()
	h.Del("Content-Type")
	h.Del("Content-Disposition")
	h.Del("Content-Length")
	w.WriteHeader(http.StatusNotModified)
}

// tagList is an If-None-Match field: entity tags, or "*" for any.
type tagList struct {
	any  bool
	tags []string // opaque tags, quoted, without W/
}

// noneMatch reads If-None-Match: a comma-separated list, which clients may
// also send as the field more than once (every value is one more list).
func noneMatch(h http.Header) tagList {
	var l tagList
	for _, v := range h.Values("If-None-Match") {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			switch {
			case t == "*":
				l.any = true
			case t != "":
				l.tags = append(l.tags, strings.TrimPrefix(t, "W/"))
			}
		}
	}
	return l
}

func (l tagList) present() bool { return l.any || len(l.tags) > 0 }

// matches is If-None-Match's weak comparison: W/"x" and "x" are the same
// tag there (RFC 9110 §13.1.2).
func (l tagList) matches(tag string) bool {
	if l.any {
		return true
	}
	tag = strings.TrimPrefix(tag, "W/")
	for _, t := range l.tags {
		if t == tag {
			return true
		}
	}
	return false
}

// single is the one tag of a one-tag list, which S3 can compare itself; ""
// for anything else (a list, "*", a value that is not a quoted tag), which
// is compared here once S3 has answered.
func (l tagList) single() string {
	if l.any || len(l.tags) != 1 || len(l.tags[0]) < 2 || !strings.HasPrefix(l.tags[0], `"`) || !strings.HasSuffix(l.tags[0], `"`) {
		return ""
	}
	return l.tags[0]
}

// modifiedSince reads If-Modified-Since, which counts only without
// If-None-Match (RFC 9110 §13.1.3); zero when absent or not a date.
func modifiedSince(h http.Header) time.Time {
	if noneMatch(h).present() {
		return time.Time{}
	}
	t, err := http.ParseTime(h.Get("If-Modified-Since"))
	if err != nil {
		return time.Time{}
	}
	return t
}
