package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Position is a row's place in a list: the job id and, in a project's
// unfiltered build list, its build ordinal (in a ref's, its ref ordinal).
type Position struct {
	ID      int64
	Ordinal int64
}

// Range selects a page of a list ordered by id, newest first.
type Range struct {
	Statuses []jobs.Status // only these statuses; empty for all
	After    Position      // keyset pages: only rows after this one; zero for the top
	Skip     int           // offset pages: rows to pass over first
	Limit    int           // rows wanted; one more is read to tell whether more follow
	// IncludeRetried lists the retried tries of jobs too (pipeline lists).
	IncludeRetried bool
	// Ref keeps only builds of pipelines of this ref (project lists; ""
	// for all), and RefBuilds is its build count (Found.RefBuilds), which
	// its offset pages past the first count down from.
	Ref       string
	RefBuilds int64
	// Whole reads every attribute of the page's jobs, for those who act
	// on them; else a page's jobs hold only what a list renders
	// (listedAttr).
	Whole bool
}

// Page is one page of a list.
type Page struct {
	Jobs []*jobs.Job
	More bool // rows follow this page
}

// partition is one index partition a list reads.
type partition struct{ index, pkAttr, skAttr, pk string }

func gsi(name, pk string) partition {
	for _, g := range gsiKeys {
		if g.name == name {
			return partition{index: name, pkAttr: g.pk, skAttr: g.sk, pk: pk}
		}
	}
	panic("unknown index " + name)
}

// ProjectBuilds lists a project's builds (no bridges), or a ref's. Without a
// status filter it reads the ordinal index, so an offset page costs what
// page 1 costs; with one it runs one Query per status and merges them. A
// sharded project's page reads every shard of those partitions in parallel.
//
// Errors: only the DynamoDB client's.
func (s *Store) ProjectBuilds(ctx context.Context, p *jobs.Project, r Range) (*Page, error) {
	return s.ProjectBuildsWith(ctx, nil, p, r)
}

// ProjectBuildsWith is ProjectBuilds taking sp's page when sp read what
// ProjectBuilds reads for p (sp may be nil).
func (s *Store) ProjectBuildsWith(ctx context.Context, sp *Speculation, p *jobs.Project, r Range) (*Page, error) {
	if countedPage(p, r) {
		sp.Cancel()
		return s.rankedCachedPage(ctx, p, r)
	}
	builds := p.Builds
	if r.Ref != "" {
		builds = r.RefBuilds
	}
	return s.run(ctx, sp, projectBuildsPlan(p.ID, builds, layoutsOf(p), r))
}

// projectBuildsPlan is what ProjectBuilds reads for project id, under the
// keys of each shard count of layouts, whose list (all builds, or r.Ref's)
// has builds rows; builds < 0 is unknown (a speculation without a cached
// count).
func projectBuildsPlan(id, builds int64, layouts []int, r Range) plan {
	if r.Ref != "" && !indexedRef(r.Ref) {
		return plan{none: true}
	}
	if len(r.Statuses) > 0 {
		// A status's rows are not dealt evenly over the shards: each
		// shard may hold the whole page, so each reads all of it.
		var parts []partition
		for _, st := range r.Statuses {
			parts = append(parts, sharedParts(layouts, func(shards, k int) partition { return statusPart(id, r.Ref, st, shards, k) })...)
		}
		return plan{parts: parts, upTo: below(r.After.ID), skip: r.Skip, limit: r.Limit, whole: r.Whole}
	}
	// Ordinals (a project's or a ref's) are dense and dealt round-robin,
	// so the limit+1 ordinals at and below any bound hold at most
	// ceil((limit+1)/shards) of each shard: the top of each shard has them
	// all. Under two counts' keys a partition holds at most that many of
	// each count whose shard it is.
	pl := plan{parts: sharedParts(layouts, func(shards, k int) partition { return buildsPart(id, r.Ref, shards, k) }),
		limit: r.Limit, whole: r.Whole}
	for _, shards := range layouts {
		pl.each += (r.Limit + shards) / shards
	}
	switch {
	case r.After.Ordinal > 0:
		pl.upTo = r.After.Ordinal - 1 - int64(r.Skip)
	case r.Skip == 0:
		// The first page reads from the top: no ordinal lies above the
		// count, so it needs none (and a cached project serves).
		pl.upTo = 0
		return pl
	case builds >= 0:
		pl.upTo = builds - int64(r.Skip)
	default:
		pl.none = true // no guess worth a Query
		return pl
	}
	pl.none = pl.upTo < 1
	return pl
}

// sharedParts is part of every shard of each count of layouts, each
// partition once: shard k of two counts can be one partition (the keys of
// shard k do not name the count, but for 1).
func sharedParts(layouts []int, part func(shards, k int) partition) []partition {
	var out []partition
	for _, shards := range layouts {
		for k := range shards {
			if pt := part(shards, k); !slices.Contains(out, pt) {
				out = append(out, pt)
			}
		}
	}
	return out
}

// buildsPart is shard k of shards of project id's ordinal index (GSI1),
// or of ref's (GSI7) when ref is not "".
func buildsPart(id int64, ref string, shards, k int) partition {
	if ref != "" {
		return gsi(GSIRefBuilds, refBuildsPK(id, ref, shards, k))
	}
	return gsi(GSIProjectBuilds, projectBuildsPK(id, shards, k))
}

// statusPart is the same of the status index of st (GSI2, or GSI8).
func statusPart(id int64, ref string, st jobs.Status, shards, k int) partition {
	if ref != "" {
		return gsi(GSIRefBuildsByStatus, refStatusPK(id, ref, st, shards, k))
	}
	return gsi(GSIProjectBuildsByStatus, projectStatusPK(id, st, shards, k))
}

// below is the inclusive upper bound of sort keys before id, or 0 for none.
func below(id int64) int64 {
	if id == 0 {
		return 0
	}
	return id - 1
}

// plan is what a list page reads: each partition newest first, sort keys
// up to upTo (0: unbounded), each rows each (0: skip+limit+1), merged by id.
type plan struct {
	parts       []partition
	upTo        int64
	skip, limit int
	each        int
	none        bool // the page is empty without reading
	whole       bool // whole jobs, read from the table (wholeJobs)
}

// perPart is how many rows pl reads of each partition.
func (pl plan) perPart() int {
	if pl.each > 0 {
		return pl.each
	}
	return pl.skip + pl.limit + 1
}

// run reads pl (or takes it from the page cache, see PageTTL), or takes
// sp's page when sp read the same.
func (s *Store) run(ctx context.Context, sp *Speculation, pl plan) (*Page, error) {
	if pl.none {
		sp.Cancel()
		return &Page{}, nil
	}
	if page, ok := sp.pageFor(pl); ok {
		return page, nil
	}
	return s.cachedPage(ctx, pl)
}

// page reads each partition of pl newest first, merged by id: pl.perPart()
// rows each in one round trip when that is a Query's worth (every page
// but the deep filtered ones), else in step (mergeDesc).
func (s *Store) page(ctx context.Context, pl plan) (*Page, error) {
	parts, skip, limit, want := pl.parts, pl.skip, pl.limit, pl.perPart()
	var all []*jobs.Job
	var err error
	switch {
	case len(parts) == 1:
		// No goroutine to wait for: a speculative Query starts at once.
		all, err = s.queryDesc(ctx, parts[0], pl.upTo, want)
	case want > queryRows:
		all, err = s.mergeDesc(ctx, parts, pl.upTo, want)
	default:
		reads := make([]partRead, len(parts))
		for i, part := range parts {
			reads[i] = partRead{part: part, upTo: pl.upTo, want: want, need: want}
		}
		all, err = s.rowsBelow(ctx, reads, nil)
	}
	if err != nil {
		return nil, err
	}
	return s.cut(ctx, all, skip, limit, pl.whole)
}

// cut is the page of rows, newest first, that passes over skip and takes
// limit, read whole from the table if whole.
func (s *Store) cut(ctx context.Context, rows []*jobs.Job, skip, limit int, whole bool) (*Page, error) {
	pg := &Page{}
	// A build a reshard moves meanwhile can be read under both counts' keys.
	rows = slices.CompactFunc(rows, func(a, b *jobs.Job) bool { return a.ID == b.ID })
	if len(rows) <= skip {
		return pg, nil
	}
	rows = rows[skip:]
	if len(rows) > limit {
		pg.More, rows = true, rows[:limit]
	}
	pg.Jobs = rows
	if whole {
		var err error
		if pg.Jobs, err = s.wholeJobs(ctx, pg.Jobs); err != nil {
			return nil, err
		}
	}
	return pg, nil
}

func newestFirst(a, b *jobs.Job) int { return cmp.Compare(b.ID, a.ID) }

// wholeJobs reads js whole from the table, in their order: the list
// indexes hold only what a page renders. A job deleted since it was listed
// is left out.
func (s *Store) wholeJobs(ctx context.Context, js []*jobs.Job) ([]*jobs.Job, error) {
	keys := make([]item, len(js))
	for i, j := range js {
		keys[i] = jobKey(j.ID)
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]*jobs.Job, 0, len(js))
	for _, k := range keys {
		if it, ok := got[keyString(k)]; ok {
			j, err := decodeJob(it)
			if err != nil {
				return nil, err
			}
			out = append(out, j)
		}
	}
	return out, nil
}

// queryRows is the most rows one Query is asked for: DynamoDB returns at
// most 1 MB a call anyway, and asking for more than a thousand at once
// only risks overflowing the int32. (A variable only so that tests can
// make deep pages of a small world: SetQueryRows.)
var queryRows = 1000

// queryDesc reads up to want items of one partition, sort keys <= upTo
// (unbounded when 0), newest first: of each only L, all its list index holds
// besides the keys.
func (s *Store) queryDesc(ctx context.Context, part partition, upTo int64, want int) ([]*jobs.Job, error) {
	c := s.cursor(part, upTo)
	var out []*jobs.Job
	for len(out) < want && !c.done {
		js, err := c.next(ctx, want-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, js...)
	}
	return out, nil
}

// cursor reads one partition newest first, a Query at a time.
type cursor struct {
	s    *Store
	part partition
	in   *dynamodb.QueryInput
	done bool // no rows left
}

func (s *Store) cursor(part partition, upTo int64) *cursor {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		IndexName:                aws.String(part.index),
		KeyConditionExpression:   aws.String("#pk = :pk"),
		ExpressionAttributeNames: map[string]string{"#pk": part.pkAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(part.pk),
		},
		ScanIndexForward:       aws.Bool(false),
		ProjectionExpression:   aws.String(listedAttr),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if upTo > 0 {
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk <= :sk")
		in.ExpressionAttributeNames["#sk"] = part.skAttr
		in.ExpressionAttributeValues[":sk"] = num(upTo)
	}
	return &cursor{s: s, part: part, in: in}
}

// next reads the next at most n rows (one Query; fewer when DynamoDB's
// 1 MB a call ends it first).
func (c *cursor) next(ctx context.Context, n int) ([]*jobs.Job, error) {
	c.in.Limit = aws.Int32(int32(min(n, queryRows)))
	res, err := c.s.query(ctx, c.in)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", c.part.index, err)
	}
	out := make([]*jobs.Job, 0, len(res.Items))
	for _, it := range res.Items {
		j, err := decodeJob(it)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	c.done = res.LastEvaluatedKey == nil
	c.in.ExclusiveStartKey = res.LastEvaluatedKey
	return out, nil
}

// partRead is one partition a page reads: from upTo down (0: the top),
// want rows at first, and on until need of them are kept (0: no further).
type partRead struct {
	part       partition
	upTo       int64
	want, need int
}

// rowsBelow reads each part newest first, in parallel, keeping only rows
// that keep keeps (all for nil), as far as the part asks, and merges them
// by id.
func (s *Store) rowsBelow(ctx context.Context, parts []partRead, keep func(*jobs.Job) bool) ([]*jobs.Job, error) {
	results := make([][]*jobs.Job, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, rp := range parts {
		wg.Go(func() {
			c := s.cursor(rp.part, rp.upTo)
			n := rp.want
			for !c.done {
				js, err := c.next(ctx, n)
				if err != nil {
					errs[i] = err
					return
				}
				for _, j := range js {
					if keep == nil || keep(j) {
						results[i] = append(results[i], j)
					}
				}
				if n = rp.need - len(results[i]); n <= 0 {
					break
				}
			}
		})
	}
	wg.Wait()
	var all []*jobs.Job
	for i := range parts {
		if errs[i] != nil {
			return nil, errs[i]
		}
		all = append(all, results[i]...)
	}
	slices.SortFunc(all, newestFirst)
	return all, nil
}
