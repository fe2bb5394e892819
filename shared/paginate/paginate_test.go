package paginate

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		query string
		want  Params
		err   error
	}{
		{"", Params{Page: 1, PerPage: 20}, nil},
		{"page=3&per_page=50", Params{Page: 3, PerPage: 50}, nil},
		{"page=-2", Params{Page: 1, PerPage: 20}, nil},
		{"per_page=1000", Params{Page: 1, PerPage: 100}, nil},
		{"per_page=-1", Params{Page: 1, PerPage: 20}, nil},
		{"per_page=0", Params{}, ErrPerPageZero},
		{"per_page=1.5", Params{}, ErrPerPage},
		{"page=two", Params{}, ErrPage},
		{"page=99999999999999", Params{Page: 1 << 30, PerPage: 20}, nil},
		{"pagination=keyset&page=4", Params{Page: 1, PerPage: 20, Keyset: true}, nil},
		{"pagination=keyset&order_by=created_at", Params{}, ErrKeysetOrder},
		{"pagination=keyset&sort=asc", Params{}, ErrKeysetOrder},
		{"pagination=keyset&cursor=" + EncodeCursor(Cursor{ID: 42, Ordinal: 7}),
			Params{Page: 1, PerPage: 20, Keyset: true, After: Cursor{ID: 42, Ordinal: 7}}, nil},
		{"pagination=keyset&cursor=" + EncodeCursor(Cursor{ID: 42, RefOrdinal: 5}),
			Params{Page: 1, PerPage: 20, Keyset: true, After: Cursor{ID: 42, RefOrdinal: 5}}, nil},
		{"pagination=keyset&cursor=eyJpZCI6IjQyIiwiX2tkIjoibiIsInIiOiIwIn0", Params{}, ErrCursorInvalid}, // "r":"0"
		{"pagination=keyset&cursor=eyJpZCI6IjQyIiwiX2tkIjoibiIsInIiOiJ4In0", Params{}, ErrCursorInvalid}, // "r":"x"
		{"pagination=keyset&cursor=eyJpZCI6IjEyMyIsIl9rZCI6Im4ifQ", // GitLab's own {"id":"123","_kd":"n"}
			Params{Page: 1, PerPage: 20, Keyset: true, After: Cursor{ID: 123}}, nil},
		{"pagination=keyset&cursor=eyJpZCI6IjEyMyIsIl9rZCI6InAifQ", Params{}, ErrCursorInvalid}, // _kd p
		{"pagination=keyset&cursor=bm90IGpzb24", Params{}, ErrCursorInvalid},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		got, err := Parse(q)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: error %v, want %v", tc.query, err, tc.err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestOffsetHeaders(t *testing.T) {
	l := Link{Base: "https://api.example.com/api/v4/projects/demo%2Fbackend/jobs",
		Params: url.Values{"id": {"demo/backend"}, "scope[]": {"failed", "success"}, "page": {"2"}}}
	h := http.Header{}
	OffsetHeaders(h, l, Params{Page: 2, PerPage: 5}, true, Uncounted)
	want := map[string]string{
		"X-Page": "2", "X-Per-Page": "5", "X-Next-Page": "3", "X-Prev-Page": "1",
		"Link": `<https://api.example.com/api/v4/projects/demo%2Fbackend/jobs?id=demo%2Fbackend&page=1&per_page=5&scope%5B%5D=failed&scope%5B%5D=success>; rel="prev", ` +
			`<https://api.example.com/api/v4/projects/demo%2Fbackend/jobs?id=demo%2Fbackend&page=3&per_page=5&scope%5B%5D=failed&scope%5B%5D=success>; rel="next", ` +
			`<https://api.example.com/api/v4/projects/demo%2Fbackend/jobs?id=demo%2Fbackend&page=1&per_page=5&scope%5B%5D=failed&scope%5B%5D=success>; rel="first"`,
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q\nwant %q", k, got, v)
		}
	}
	if _, ok := h["X-Total"]; ok {
		t.Error("X-Total sent without a count")
	}
	h = http.Header{}
	OffsetHeaders(h, l, Params{Page: 1, PerPage: 5}, false, 11)
	if h.Get("X-Total") != "11" || h.Get("X-Total-Pages") != "3" || h.Get("X-Next-Page") != "" {
		t.Errorf("with a count: %v", h)
	}
	if got := h.Get("Link"); got != `<https://api.example.com/api/v4/projects/demo%2Fbackend/jobs?id=demo%2Fbackend&page=1&per_page=5&scope%5B%5D=failed&scope%5B%5D=success>; rel="first", `+
		`<https://api.example.com/api/v4/projects/demo%2Fbackend/jobs?id=demo%2Fbackend&page=3&per_page=5&scope%5B%5D=failed&scope%5B%5D=success>; rel="last"` {
		t.Errorf("Link %s", got)
	}
}

func TestKeysetHeaders(t *testing.T) {
	l := Link{Base: "https://x/api/v4/projects/1/jobs", Params: url.Values{"pagination": {"keyset"}, "cursor": {"old"}}}
	h := http.Header{}
	KeysetHeaders(h, l, Params{PerPage: 2, Keyset: true}, nil)
	if len(h) != 0 {
		t.Errorf("last page has headers %v", h)
	}
	KeysetHeaders(h, l, Params{PerPage: 2, Keyset: true}, &Cursor{ID: 9, Ordinal: 3})
	c := EncodeCursor(Cursor{ID: 9, Ordinal: 3})
	if h.Get("X-Next-Cursor") != c || h.Get("Link") != "<https://x/api/v4/projects/1/jobs?cursor="+c+`&pagination=keyset&per_page=2>; rel="next"` {
		t.Errorf("headers %v", h)
	}
}

func TestCheckOffset(t *testing.T) {
	if err := (Params{Page: 500, PerPage: 100}).CheckOffset(); err != nil {
		t.Error(err)
	}
	if err := (Params{Page: 501, PerPage: 100}).CheckOffset(); !errors.Is(err, ErrOffsetTooLarge) {
		t.Error(err)
	}
	if err := (Params{Page: 1, PerPage: 100, Keyset: true}).CheckOffset(); err != nil {
		t.Error(err)
	}
}
