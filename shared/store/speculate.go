package store

import (
	"context"
	"slices"
	"strings"

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
	plan   plan
	done   chan struct{}
	page   *Page
	err    error
	cancel context.CancelFunc
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
	if !ok {
		h = buildsHint{count: -1, shards: 1}
	}
	if r.Ref != "" {
		// A ref's count is its own; the shards are the project's.
		rh, ok := s.warm.builds.hint(listOf{id, r.Ref})
		h.count = -1
		if ok {
			h.count = rh.count
		}
	}
	if !ok {
		h = buildsHint{count: -1, shards: 1}
	}
	return s.speculate(ctx, projectBuildsPlan(id, h.count, h.shards, r))
}

// SpeculatePipelineJobs starts what PipelineJobs will read.
func (s *Store) SpeculatePipelineJobs(ctx context.Context, pipelineID int64, kind jobs.Kind, r Range) *Speculation {
	return s.speculate(ctx, pipelineJobsPlan(pipelineID, kind, r))
}

func (s *Store) speculate(ctx context.Context, pl plan) *Speculation {
	if pl.none {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	sp := &Speculation{plan: pl, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(sp.done)
		sp.page, sp.err = s.page(ctx, pl)
		if sp.err == nil {
			// What the page refers to, into the warm caches, while the
			// lookup's second round trip (if any) runs: a cold page then
			// costs two round trips, not three.
			_, sp.err = s.Related(ctx, sp.page.Jobs...)
		}
	}()
	return sp
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
