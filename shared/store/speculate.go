package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// A Speculation is a list page's Query issued before the request's lookup
// and authorization, from what the request names (a project or pipeline
// id) and the warm caches know (a path's project, a project's build count
// and shards),
// so that a page costs one round trip. The list then takes its page only if
// it read exactly what the fresh project and pipeline say to read, and
// reads again otherwise. It also reads what the page's jobs refer to into
// the warm caches (users, runners, pipelines' documents: nobody's in
// particular, and never rendered before authorization). Nothing of it reaches a response unless the
// request was authorized: Cancel it on every other way out, without
// waiting for it.
type Speculation struct {
	plan plan
	// planned is closed once plan is known: at once, or when the lookup
	// reads the build count the plan waits for.
	planned chan struct{}
	done    chan struct{}
	page    *Page
	err     error
	cancel  context.CancelFunc
}

// SpeculateProjectBuilds starts what ProjectBuilds will read for the
// project ref names, or returns nil when the warm caches cannot tell.
func (s *Store) SpeculateProjectBuilds(ctx context.Context, ref ProjectRef, r Range) *Speculation {
	id := ref.ID
	if id == 0 && ref.Path != "" {
		id, _ = s.warm.paths.hint(strings.ToLower(ref.Path))
	}
	if id == 0 {
		return nil
	}
	h, ok := s.warm.builds.hint(listOf{id, ""})
	if countedPage(&jobs.Project{RankCounts: h.ranked || !ok}, r) {
		// Read after the lookup, through the counts (rankedPage): the
		// Query speculated would be the skip-deep read they replace.
		return nil
	}
	if !ok && r.Ref == "" && len(r.Statuses) == 0 && r.After.Ordinal == 0 && r.Skip > 0 {
		return s.speculateOnCount(ctx, id, r)
	}
	if !ok {
		h = buildsHint{count: -1, layouts: []int{1}}
	}
	if r.Ref != "" {
		// A ref's count is its own; the shards are the project's.
		rh, ok := s.warm.builds.hint(listOf{id, r.Ref})
		h.count = -1
		if ok {
			h.count = rh.count
		}
	}
	return s.speculate(ctx, projectBuildsPlan(id, h.count, h.layouts, r))
}

// speculateOnCount is an unfiltered offset page past the first in a
// container that knows no build count: its key range counts down from the
// count, so its Query starts when the request's lookup has read the project
// (its first round trip) and runs alongside the lookup's second: a cold
// deep page costs three round trips, not four.
func (s *Store) speculateOnCount(ctx context.Context, id int64, r Range) *Speculation {
	ctx, cancel := context.WithCancel(ctx)
	sp := &Speculation{planned: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	forget := s.counts.add(id, func(h buildsHint) {
		sp.plan = projectBuildsPlan(id, h.count, h.layouts, r)
		close(sp.planned)
	})
	go func() {
		defer close(sp.done)
		select {
		case <-sp.planned:
		case <-ctx.Done():
			forget()
			sp.err = ctx.Err()
			return
		}
		if sp.plan.none {
			sp.err = errNoPlan
			return
		}
		sp.read(ctx, s)
	}()
	return sp
}

// errNoPlan is a speculation whose count left nothing to read.
var errNoPlan = errors.New("no page to speculate")

// SpeculatePipelineJobs starts what PipelineJobs will read.
func (s *Store) SpeculatePipelineJobs(ctx context.Context, pipelineID int64, kind jobs.Kind, r Range) *Speculation {
	return s.speculate(ctx, pipelineJobsPlan(pipelineID, kind, r))
}

func (s *Store) speculate(ctx context.Context, pl plan) *Speculation {
	if pl.none {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	sp := &Speculation{plan: pl, planned: known, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(sp.done)
		sp.read(ctx, s)
	}()
	return sp
}

// known is the planned of a speculation whose plan was known at its start.
var known = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// read reads sp's page, then what it refers to.
func (sp *Speculation) read(ctx context.Context, s *Store) {
	pl := sp.plan
	sp.page, sp.err = s.cachedPage(ctx, pl)
	if sp.err == nil {
		// What the page refers to, into the warm caches, while the
		// lookup's second round trip (if any) runs: a cold page then
		// costs two round trips, not three.
		_, sp.err = s.Related(ctx, sp.page.Jobs...)
	}
}

// Cancel stops sp's Query, if it still runs, and forgets its page.
func (sp *Speculation) Cancel() {
	if sp != nil {
		sp.cancel()
	}
}

// pageFor waits for sp's page if sp read what pl reads, else cancels sp.
func (sp *Speculation) pageFor(pl plan) (*Page, bool) {
	if sp == nil {
		return nil, false
	}
	select {
	case <-sp.planned:
	default: // the count it waits for never came
		sp.Cancel()
		return nil, false
	}
	if !sp.plan.sameReads(pl) {
		sp.Cancel()
		return nil, false
	}
	<-sp.done
	defer sp.Cancel()
	if sp.err != nil {
		return nil, false // read again: the error may be the guess's
	}
	return sp.page, true
}

// sameReads reports whether a and b read the same rows and attributes:
// the same partitions (and so shards), bound, skip, limit, rows of each and
// projection.
func (a plan) sameReads(b plan) bool {
	return a.upTo == b.upTo && a.skip == b.skip && a.limit == b.limit && a.perPart() == b.perPart() && a.whole == b.whole &&
		slices.Equal(a.parts, b.parts)
}

// countWaits are the speculations waiting for a project's build count, by
// project id.
type countWaits struct {
	mu      sync.Mutex
	waiting map[int64][]*countWait
}

type countWait struct{ tell func(buildsHint) }

// add makes tell hear the next count read of project id; forget drops it
// unheard.
func (w *countWaits) add(id int64, tell func(buildsHint)) (forget func()) {
	cw := &countWait{tell: tell}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == nil {
		w.waiting = map[int64][]*countWait{}
	}
	w.waiting[id] = append(w.waiting[id], cw)
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.waiting[id] = slices.DeleteFunc(w.waiting[id], func(o *countWait) bool { return o == cw })
		if len(w.waiting[id]) == 0 {
			delete(w.waiting, id)
		}
	}
}

// tell hands project id's count and shards, just read, to those waiting
// for them.
func (w *countWaits) tell(id int64, h buildsHint) {
	w.mu.Lock()
	waiting := w.waiting[id]
	delete(w.waiting, id)
	w.mu.Unlock()
	for _, cw := range waiting {
		cw.tell(h)
	}
}
