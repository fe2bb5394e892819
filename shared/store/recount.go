package store

// Recount is an operator's command (jobsctl recount), like Reshard: nothing
// on the request path calls it.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Recount counts project pid's completed builds into its rank counts, and
// its refs', from the status index, and marks the project counted (tm):
// for a project stored before counts were kept (or kept as counts of
// builds, not masks, in items of another layout), whose deep pages read
// every row passed over until then. It reads the count items (of the
// project and of each ref with a build count), waits reshardSettle (so that
// the index shows every build whose count those items hold), reads every
// completed build's row, and writes each count item on the condition that
// no write moved it since (v, which every count write adds to), deleting
// those it has no count for; an item that moved is read and counted again.
// Running it again is harmless. It returns how many builds it counted.
//
// Errors: ErrNotFound for a project not stored; ErrConflict when items
// keep moving; the DynamoDB client's.
func (s *Store) Recount(ctx context.Context, pid int64) (int, error) {
	got, err := s.batchGet(ctx, []item{projectKey(pid)})
	if err != nil {
		return 0, err
	}
	if _, ok := got[keyString(projectKey(pid))]; !ok {
		return 0, fmt.Errorf("project %d: %w", pid, ErrNotFound)
	}
	refs, err := s.countedRefs(ctx, pid)
	if err != nil {
		return 0, err
	}
	var only map[string]bool // the items to write again; nil for all
	counted := 0
	for attempt := 1; ; attempt++ {
		if attempt > maxAttempts {
			return 0, fmt.Errorf("recount project %d: %d attempts lost: %w", pid, maxAttempts, ErrConflict)
		}
		read, err := s.rankItems(ctx, pid, refs)
		if err != nil {
			return 0, err
		}
		if err := pause(ctx, reshardSettle); err != nil {
			return 0, err
		}
		// A ref found only now (a build count written since) has its
		// items read on the next attempt, if one is needed.
		want, n, err := s.countCompleted(ctx, pid, refs)
		if err != nil {
			return 0, err
		}
		counted = n
		keys := slices.Sorted(maps.Keys(want))
		for k := range read {
			if _, ok := want[k]; !ok {
				keys = append(keys, k)
			}
		}
		var mu sync.Mutex
		lost := map[string]bool{}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for _, k := range keys {
			if only != nil && !only[k] {
				continue
			}
			g.Go(func() error {
				ok, err := s.replaceRankItem(gctx, read[k], want[k])
				if !ok && err == nil {
					mu.Lock()
					lost[k] = true
					mu.Unlock()
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return 0, err
		}
		if len(lost) == 0 {
			break
		}
		only = lost
	}
	return counted, s.markCounted(ctx, pid, false)
}

// rankItem is a count item as read: its key and version (0: none yet).
type rankItem struct {
	key item
	v   int64
}

// countedRefs reads the refs of project pid that have a build count
// (an entry, see refEntries), each true.
func (s *Store) countedRefs(ctx context.Context, pid int64) (map[string]bool, error) {
	entries, err := s.refEntries(ctx, pid)
	out := map[string]bool{}
	for ref := range entries {
		if indexedRef(ref) {
			out[ref] = true
		}
	}
	return out, err
}

// rankItems reads the keys and versions of the count items of project
// pid's builds and of refs' builds.
func (s *Store) rankItems(ctx context.Context, pid int64, refs map[string]bool) (map[string]rankItem, error) {
	out := map[string]rankItem{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, ref := range append([]string{""}, slices.Sorted(maps.Keys(refs))...) {
		for h := range rankParts {
			g.Go(func() error {
				return s.queryEach(gctx, &dynamodb.QueryInput{
					TableName:                 aws.String(s.table),
					KeyConditionExpression:    aws.String("PK = :pk"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(rankPK(pid, ref, h))},
					ProjectionExpression:      aws.String("PK, SK, v"),
					ConsistentRead:            aws.Bool(true),
				}, func(it item) error {
					mu.Lock()
					defer mu.Unlock()
					out[keyString(it)] = rankItem{key: item{"PK": it["PK"], "SK": it["SK"]}, v: keyNumber(it["v"], "")}
					return nil
				})
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("rank counts of project %d: %w", pid, err)
	}
	return out, nil
}

// countCompleted reads every completed build of project pid from the
// status index, under any shard count's keys, into the count items they
// make (of the project's builds and of their refs', each ref added to
// refs), each slot's id its oldest build's; and how many builds.
func (s *Store) countCompleted(ctx context.Context, pid int64, refs map[string]bool) (map[string]item, int, error) {
	var parts []partition
	for _, st := range rankStatuses {
		for _, pk := range everyShard(func(n, k int) string { return projectStatusPK(pid, st, n, k) }) {
			parts = append(parts, gsi(GSIProjectBuildsByStatus, pk))
		}
	}
	found := make([][]*jobs.Job, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, part := range parts {
		g.Go(func() (err error) {
			found[i], err = s.queryDesc(gctx, part, 0, int(^uint(0)>>1))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	out := map[string]item{}
	n := 0
	for _, js := range found {
		for _, j := range js {
			if !counted(j) {
				continue
			}
			n++
			for _, m := range rankEntries(j) {
				if m.ref != "" {
					refs[m.ref] = true
				}
				k := rankKey(pid, m.ref, m.slot)
				it := out[keyString(k)]
				if it == nil {
					it = withKey(item{}, k)
					out[keyString(k)] = it
				}
				c := maskAttr(m.slot)
				it[c] = &types.AttributeValueMemberN{Value: strconv.FormatUint(rankMasks(it[c])|uint64(m.d)<<rankShift(j.Status), 10)}
				if f := idAttr(m.slot); it[f] == nil || keyNumber(it[f], "") > j.ID {
					it[f] = num(j.ID)
				}
			}
		}
	}
	return out, n, nil
}

// replaceRankItem writes want (nil: deletes the item) in place of the item
// read, if no write moved it since; ok is false when one did.
func (s *Store) replaceRankItem(ctx context.Context, read rankItem, want item) (ok bool, err error) {
	cond := "attribute_not_exists(PK)"
	values := map[string]types.AttributeValue{}
	if read.key != nil {
		cond = "attribute_not_exists(v)"
		if read.v > 0 {
			cond, values[":v"] = "v = :v", num(read.v)
		}
	}
	if want == nil {
		_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(s.table), Key: read.key, ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: nonEmpty(values),
		})
	} else {
		want["v"] = num(read.v + 1)
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table), Item: want, ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: nonEmpty(values),
		})
	}
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	return err == nil, err
}

// nonEmpty is values, or nil when it has none (DynamoDB refuses an empty map).
func nonEmpty(values map[string]types.AttributeValue) map[string]types.AttributeValue {
	if len(values) == 0 {
		return nil
	}
	return values
}
