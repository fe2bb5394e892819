package store

import (
	"context"
	"sync"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// mergeDesc reads the want newest rows of parts together (the statuses of
// a filtered page, and their shards), merged by id, reading them in step
// rather than want rows from each: a deep filtered page of two statuses
// reads about as many rows as GitLab's merge of two index scans (want,
// plus what the last Query of each partition reads past the page), not
// twice as many; a project of 8 shards, not 8 times as many.
//
// Rows are taken newest first for as long as every partition that has
// more holds some already read (the next row of one that holds none could
// be newer than any held). A partition that holds none is read, all such
// in parallel, for its share of the rows still wanted (as its share of
// those taken so far suggests, every partition counted once more so that
// the first round deals them evenly), with a margin, so that the last
// Queries read little past the page.
func (s *Store) mergeDesc(ctx context.Context, parts []partition, upTo int64, want int) ([]*jobs.Job, error) {
	type stream struct {
		c     *cursor
		held  []*jobs.Job // read, not yet taken
		taken int
	}
	streams := make([]*stream, len(parts))
	for i, part := range parts {
		streams[i] = &stream{c: s.cursor(part, upTo)}
	}
	out := make([]*jobs.Job, 0, want)
	for len(out) < want {
		var empty []*stream
		for _, st := range streams {
			if len(st.held) == 0 && !st.c.done {
				empty = append(empty, st)
			}
		}
		if len(empty) == 0 {
			break // every partition is read through and taken
		}
		left := want - len(out)
		errs := make([]error, len(empty))
		var wg sync.WaitGroup
		for i, st := range empty {
			n := share(left, st.taken+1, len(out)+len(streams))
			wg.Go(func() { st.held, errs[i] = st.c.next(ctx, n) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		for len(out) < want {
			var newest *stream
			blocked := false
			for _, st := range streams {
				if len(st.held) == 0 {
					blocked = blocked || !st.c.done
					continue
				}
				if newest == nil || st.held[0].ID > newest.held[0].ID {
					newest = st
				}
			}
			if blocked || newest == nil {
				break
			}
			out = append(out, newest.held[0])
			newest.held = newest.held[1:]
			newest.taken++
		}
	}
	return out, nil
}

// share is how many rows to read of a partition that has given taken of
// sofar rows, when left more are wanted: its share of them, a quarter
// more and 16 more so that the estimate rarely falls short by a round
// trip, at most queryRows.
func share(left, taken, sofar int) int {
	est := (left*taken + sofar - 1) / sofar
	return min(queryRows, est+est/4+16)
}
