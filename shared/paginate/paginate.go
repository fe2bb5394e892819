// Package paginate reads GitLab's pagination parameters and writes its
// pagination headers, for offset and keyset pages.
package paginate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

const (
	defaultPerPage = 20
	maxPerPage     = 100
)

// Errors of the parameters, worded as Grape words them.
var (
	ErrPage          = errors.New("page is invalid")
	ErrPerPage       = errors.New("per_page is invalid")
	ErrPerPageZero   = errors.New("per_page has a value not allowed")
	ErrKeysetOrder   = errors.New("Keyset pagination is not yet available for this type of request")
	ErrCursorInvalid = errors.New("cursor is invalid")
	// ErrOffsetTooLarge is GitLab's limit on offset pages of jobs. We keep it
	// only where an offset costs rows read (filtered lists); keyset pages
	// have no such limit.
	ErrOffsetTooLarge = errors.New("Offset pagination has a maximum allowed offset of 50000 for requests that return objects of type Ci::Build. Remaining records can be retrieved using keyset pagination.")
)

// MaxOffset is GitLab's default offset_pagination_limit.
const MaxOffset = 50000

// CheckOffset refuses offset pages beyond MaxOffset rows.
func (p Params) CheckOffset() error {
	if !p.Keyset && p.Page*p.PerPage > MaxOffset {
		return ErrOffsetTooLarge
	}
	return nil
}

// Cursor is where a keyset page starts: after the row with this id (and, in
// unfiltered project lists, this build ordinal; in a ref's list without
// scope, this ref ordinal).
type Cursor struct {
	ID         int64
	Ordinal    int64
	RefOrdinal int64
}

// Params are a request's pagination parameters.
type Params struct {
	Page    int
	PerPage int
	Keyset  bool
	After   Cursor // keyset only; zero for the first page
}

// Offset is how many rows come before an offset page.
func (p Params) Offset() int { return (p.Page - 1) * p.PerPage }

// Parse reads page, per_page, pagination, order_by, sort and cursor. Errors
// are the 400 (or, for an ordering keyset cannot serve, 405) GitLab would
// send.
func Parse(q url.Values) (Params, error) {
	p := Params{Page: 1, PerPage: defaultPerPage}
	if v, ok := single(q, "page"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return p, ErrPage
		}
		// Pages past any real list are empty; the cap keeps offsets in range.
		p.Page = min(max(n, 1), 1<<30)
	}
	if v, ok := single(q, "per_page"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil:
			return p, ErrPerPage
		case n == 0:
			return p, ErrPerPageZero
		case n > maxPerPage:
			p.PerPage = maxPerPage
		case n > 0:
			p.PerPage = n
		}
	}
	if q.Get("pagination") != "keyset" {
		return p, nil
	}
	p.Keyset, p.Page = true, 1
	if o := q.Get("order_by"); o != "" && o != "id" {
		return p, ErrKeysetOrder
	}
	if s := q.Get("sort"); s != "" && s != "desc" {
		return p, ErrKeysetOrder
	}
	if c := q.Get("cursor"); c != "" {
		var err error
		if p.After, err = DecodeCursor(c); err != nil {
			return p, err
		}
	}
	return p, nil
}

func single(q url.Values, name string) (string, bool) {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// cursorJSON is GitLab's cursor shape: the order key as a string and the
// direction; "o" adds the build ordinal and "r" the ref ordinal, which
// GitLab clients pass back untouched like the rest.
type cursorJSON struct {
	ID         string `json:"id"`
	Direction  string `json:"_kd"`
	Ordinal    string `json:"o,omitempty"`
	RefOrdinal string `json:"r,omitempty"`
}

// EncodeCursor writes c as URL-safe base64 of JSON.
func EncodeCursor(c Cursor) string {
	cj := cursorJSON{ID: strconv.FormatInt(c.ID, 10), Direction: "n"}
	if c.Ordinal > 0 {
		cj.Ordinal = strconv.FormatInt(c.Ordinal, 10)
	}
	if c.RefOrdinal > 0 {
		cj.RefOrdinal = strconv.FormatInt(c.RefOrdinal, 10)
	}
	b, _ := json.Marshal(cj)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor; anything else is
// ErrCursorInvalid.
func DecodeCursor(s string) (Cursor, error) {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawURLEncoding.DecodeString(s); err != nil {
			return Cursor{}, ErrCursorInvalid
		}
	}
	var cj cursorJSON
	if err := json.Unmarshal(b, &cj); err != nil || cj.Direction != "n" {
		return Cursor{}, ErrCursorInvalid
	}
	var c Cursor
	if c.ID, err = strconv.ParseInt(cj.ID, 10, 64); err != nil || c.ID <= 0 {
		return Cursor{}, ErrCursorInvalid
	}
	for _, o := range []struct {
		s string
		n *int64
	}{{cj.Ordinal, &c.Ordinal}, {cj.RefOrdinal, &c.RefOrdinal}} {
		if o.s == "" {
			continue
		}
		if *o.n, err = strconv.ParseInt(o.s, 10, 64); err != nil || *o.n <= 0 {
			return Cursor{}, ErrCursorInvalid
		}
	}
	return c, nil
}

// Link builds the URLs of a list's pages: the request's own URL with every
// parameter, path parameters included, re-encoded the way Rails' to_query
// does (keys sorted, arrays as key[]).
type Link struct {
	Base   string     // scheme://host/path, path re-escaped
	Params url.Values // the request's parameters plus path parameters
}

// with returns the URL with the given parameters replaced.
func (l Link) with(set map[string]string) string {
	q := url.Values{}
	for k, v := range l.Params {
		if _, replaced := set[k]; !replaced {
			q[k] = v
		}
	}
	for k, v := range set {
		q.Set(k, v)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return l.Base + "?" + b.String()
}

// Uncounted is the total of a list whose rows are not counted: its offset
// pages have no X-Total, X-Total-Pages or rel="last", as on GitLab.
const Uncounted int64 = -1

// OffsetHeaders writes GitLab's offset pagination headers; total is the
// number of rows, or Uncounted.
func OffsetHeaders(h http.Header, l Link, p Params, more bool, total int64) {
	itoa := strconv.Itoa
	next, prev := "", ""
	if more {
		next = itoa(p.Page + 1)
	}
	if p.Page > 1 {
		prev = itoa(p.Page - 1)
	}
	h.Set("X-Page", itoa(p.Page))
	h.Set("X-Per-Page", itoa(p.PerPage))
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	page := func(n string) string { return l.with(map[string]string{"page": n, "per_page": itoa(p.PerPage)}) }
	var links []string
	if prev != "" {
		links = append(links, "<"+page(prev)+`>; rel="prev"`)
	}
	if next != "" {
		links = append(links, "<"+page(next)+`>; rel="next"`)
	}
	links = append(links, "<"+page("1")+`>; rel="first"`)
	if total != Uncounted {
		pages := max(1, int((total+int64(p.PerPage)-1)/int64(p.PerPage)))
		h.Set("X-Total", strconv.FormatInt(total, 10))
		h.Set("X-Total-Pages", itoa(pages))
		links = append(links, "<"+page(itoa(pages))+`>; rel="last"`)
	}
	// One value joined with ", " as GitLab sends it; two Add calls would
	// reach clients joined by a bare comma through API Gateway.
	h.Set("Link", strings.Join(links, ", "))
}

// KeysetHeaders writes the headers of a keyset page: a rel="next" link and
// X-Next-Cursor when another page follows, nothing on the last page.
func KeysetHeaders(h http.Header, l Link, p Params, next *Cursor) {
	if next == nil {
		return
	}
	c := EncodeCursor(*next)
	h.Set("Link", "<"+l.with(map[string]string{"cursor": c, "per_page": strconv.Itoa(p.PerPage)})+`>; rel="next"`)
	h.Set("X-Next-Cursor", c)
}
