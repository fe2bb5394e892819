package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// PageTTL is how long a container serves a list page's Query result again
// instead of reading it: a hot page read thousands of times a second costs
// one Query per container per PageTTL, not one per request. A poller sees a
// job's change at most PageTTL (plus the index's own propagation, which is
// eventually consistent anyway) after it was written, and within PageTTL
// gets the same page, and so the same entity tag and a 304, unless what it
// renders changed (a running job's durations grow with the clock). An action
// in the same container drops the cached pages (read your writes there).
const PageTTL = time.Second

// maxPages bounds the page cache: a page holds up to 100 decoded jobs, far
// bigger than the other caches' entries.
const maxPages = 256

// pageKey names exactly what pl's Queries read: the partitions, the bound,
// skip, limit, rows of each partition and whether whole items. Nothing of the caller is in it: a cached page is served
// only to a request that was authorized with its own credentials first
// (run is called after authorization; a speculation's page is taken only
// then).
func (pl plan) pageKey() string {
	var b strings.Builder
	for _, p := range pl.parts {
		b.WriteString(p.index + "\x00" + p.pk + "\x00")
	}
	b.WriteString(strconv.FormatInt(pl.upTo, 10) + "\x00" + strconv.Itoa(pl.skip) + "\x00" + strconv.Itoa(pl.limit) + "\x00" + strconv.Itoa(pl.perPart()))
	if pl.whole {
		b.WriteString("\x00whole")
	}
	return b.String()
}

// cachedPage is pl's page from the page cache while fresh, else read and
// kept. Cached pages are shared: callers get their own Page, whose jobs
// nobody may change.
func (s *Store) cachedPage(ctx context.Context, pl plan) (*Page, error) {
	return s.cached(pl.pageKey(), func() (*Page, error) { return s.page(ctx, pl) })
}

// rankedCachedPage is rankedPage from the page cache, as cachedPage.
func (s *Store) rankedCachedPage(ctx context.Context, p *jobs.Project, r Range) (*Page, error) {
	var b strings.Builder
	b.WriteString("ranked\x00" + id(p.ID) + "\x00" + fmt.Sprint(layoutsOf(p)) + "\x00" + r.Ref)
	for _, st := range r.Statuses {
		b.WriteString("\x00" + string(st))
	}
	b.WriteString("\x00" + strconv.Itoa(r.Skip) + "\x00" + strconv.Itoa(r.Limit) + "\x00" + strconv.FormatBool(r.Whole))
	return s.cached(b.String(), func() (*Page, error) { return s.rankedPage(ctx, p, r) })
}

// cached is the page cache's page under k while fresh, else read's, kept.
func (s *Store) cached(k string, read func() (*Page, error)) (*Page, error) {
	pg, ok := s.warm.pages.get(k)
	if !ok {
		var err error
		if pg, err = read(); err != nil {
			return nil, err
		}
		s.warm.pages.put(k, pg)
	}
	return &Page{Jobs: slices.Clip(pg.Jobs), More: pg.More}, nil
}

// ForgetPages drops the cached list pages and the rank counts read for
// them, as PageTTL passing does.
func (s *Store) ForgetPages() {
	s.warm.pages.forget()
	s.warm.ranks.forget()
}
