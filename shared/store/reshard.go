package store

// Reshard is an operator's command (jobsctl reshard), like import: nothing
// on the request path calls it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// reshardSettle is how long Reshard waits between setting the new count and
// reading builds: longer than any BatchGetItem that read the old count with
// a build lasts, so a write based on the old count reads the build before
// Reshard rewrites it and so fails its version condition.
const reshardSettle = time.Second

// Index lag: a GSI shows a write a moment after it on AWS (DynamoDB Local
// at once). Who writes from what an index shows waits until it shows as
// many builds as the table counts: 50 ms doubling, 6.35 s in all (an index
// usually shows a write within a second).
const (
	indexLagFirst = 50 * time.Millisecond
	indexLagSteps = 7
)

// errIndexLags is untilIndexed's answer when the index still shows fewer.
var errIndexLags = errors.New("the index lags")

// untilIndexed calls read until what it read shows at least want builds,
// pausing between reads, or answers errIndexLags. The pauses are fixed, not
// backoff's jitter: one reader waits for an index, with no racers to spread.
func untilIndexed(ctx context.Context, read func() (shown, want int64, err error)) error {
	wait := indexLagFirst
	for step := 0; ; step++ {
		shown, want, err := read()
		if err != nil || shown >= want {
			return err
		}
		if step == indexLagSteps {
			return fmt.Errorf("%w: it shows %d of %d builds", errIndexLags, shown, want)
		}
		if err := pause(ctx, wait); err != nil {
			return err
		}
		wait *= 2
	}
}

// Reshard gives project pid shards write shards and moves its builds there,
// keeping every list whole meanwhile: lists read the keys of both counts
// until the builds are moved (jobs.Project.ShardsToo). It first tells lists
// to read the new count's keys too and waits warm, how long a container
// trusts a project it read (WarmTTL, the functions'), so that every list
// reads both before anything is under the new count's keys. Then it sets
// the new count: from then on builds are created under it (a creation that
// read the old one fails its condition and reads again). A project that
// keeps its ref counts together (in its own partition) is set to move them
// too, and they move before the builds do. Then it finds every build under
// any count's keys and rewrites those not under the new one, each on its
// version with the version moved on, so that an action that read the build
// before fails and reads it again, and last lets lists read the new count's
// keys only. Running it again finishes an interrupted run; another count
// must wait until it has. It returns how many builds it moved; progress, if
// not nil, is told as they are.
//
// Errors: ErrNotFound for a project not stored; ErrConflict while another
// count's reshard is unfinished; the DynamoDB client's.
func (s *Store) Reshard(ctx context.Context, pid int64, shards int, warm time.Duration, progress func(done int)) (int, error) {
	if shards < 1 || shards > MaxShards {
		return 0, fmt.Errorf("shards %d, want 1 to %d", shards, MaxShards)
	}
	was, err := s.readProject(ctx, pid)
	if err != nil {
		return 0, err
	}
	old := shardsOf(was)
	if was.ShardsToo > 0 && old != shards && was.ShardsToo != shards {
		// Running it to the count the project has finishes either way.
		return 0, fmt.Errorf("project %d: a reshard between %d and %d shards is unfinished: run jobsctl reshard %d %d first: %w",
			pid, old, was.ShardsToo, pid, old, ErrConflict)
	}
	if old != shards {
		if err := s.markMoving(ctx, pid, "SET so = :new", old, shards); err != nil {
			return 0, err
		}
		if err := pause(ctx, warm); err != nil {
			return 0, err
		}
	}
	update := "SET sh = :new, ra = if_not_exists(ra, :moving)"
	values := map[string]types.AttributeValue{":new": num(int64(shards)), ":moving": num(refsMoving)}
	if old != shards {
		update += ", so = :old" // lists read the old count's keys until the end
		values[":old"] = num(int64(old))
	}
	// The project item is every creation's: its transactions can keep a
	// single write out for longer than the client's attempts.
	var set *dynamodb.UpdateItemOutput
	err = outlasting(ctx, func() (err error) {
		set, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: projectKey(pid),
			UpdateExpression:          aws.String(update),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeValues: values,
			ReturnValues:              types.ReturnValueAllNew,
		})
		return err
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	var p jobs.Project
	if err := unmarshal(set.Attributes, &p); err != nil {
		return 0, err
	}
	if err := pause(ctx, reshardSettle); err != nil {
		return 0, err
	}
	if err := s.keepRefCountsApart(ctx, pid); err != nil {
		return 0, err
	}
	// A build's ref keys are dealt by its ref ordinal, not its ordinal: a
	// build in place in GSI1 may still be under another count's ref keys.
	refs, err := s.countedRefs(ctx, pid)
	if err != nil {
		return 0, err
	}
	// Each list's partition key of a shard count n and shard k, and the
	// ordinal that deals a build over the shards.
	type list struct {
		index   string
		pk      func(n, k int) string
		ordinal func(*jobs.Job) int64
	}
	lists := []list{{GSIProjectBuilds, func(n, k int) string { return projectBuildsPK(pid, n, k) },
		func(j *jobs.Job) int64 { return j.Ordinal }}}
	for ref := range refs {
		lists = append(lists, list{GSIRefBuilds, func(n, k int) string { return refBuildsPK(pid, ref, n, k) },
			func(j *jobs.Job) int64 { return j.RefOrdinal }})
	}
	// Every build created before the count was set is under some key of
	// the ordinal index, and of its ref's if that is read: a build an
	// index does not show yet would stay misplaced in it. A build counts
	// as shown when both show it.
	var misplaced []item
	err = untilIndexed(ctx, func() (int64, int64, error) {
		misplaced = nil
		seen, indexed, inRef := map[int64]bool{}, map[int64]*jobs.Job{}, map[int64]bool{}
		for _, l := range lists {
			for _, pk := range everyShard(l.pk) {
				found, err := s.queryAll(ctx, gsi(l.index, pk))
				if err != nil {
					return 0, 0, err
				}
				for _, j := range found {
					if l.index == GSIProjectBuilds {
						indexed[j.ID] = j
					} else {
						inRef[j.ID] = true
					}
					if pk != l.pk(shards, shardOf(l.ordinal(j), shards)) && !seen[j.ID] {
						seen[j.ID] = true
						misplaced = append(misplaced, jobKey(j.ID))
					}
				}
			}
		}
		shown := int64(0)
		for id, j := range indexed {
			if inRef[id] || !hasRef(j) || !refs[j.Ref] {
				shown++
			}
		}
		return shown, p.Builds, nil
	})
	if errors.Is(err, errIndexLags) {
		return 0, fmt.Errorf("project %d: %w: run it again", pid, err)
	}
	if err != nil {
		return 0, err
	}
	moved, err := inBatches(ctx, misplaced, 100, 16, progress, func(ctx context.Context, keys []item) (int, error) {
		return s.moveBuilds(ctx, keys, shards, func(*jobs.Job) bool { return true })
	})
	if err != nil || p.ShardsToo == 0 {
		return moved, err
	}
	// Every build is under the new count's keys: lists read those only.
	return moved, s.markMoving(ctx, pid, "REMOVE so", shards, 0)
}

// markMoving applies update (too is its :new, if any) to project pid on
// the condition that its count is still shards, as Reshard read it: a
// reshard run meanwhile makes it fail with ErrConflict.
func (s *Store) markMoving(ctx context.Context, pid int64, update string, shards, too int) error {
	values := map[string]types.AttributeValue{":sh": num(int64(shards))}
	if too > 0 {
		values[":new"] = num(int64(too))
	}
	cond := "sh = :sh"
	if shards == 1 {
		cond = "(sh = :sh OR attribute_not_exists(sh))" // 1 is stored as none
	}
	err := outlasting(ctx, func() error {
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: projectKey(pid),
			UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: values,
		})
		return err
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return fmt.Errorf("project %d: another reshard ran meanwhile: %w", pid, ErrConflict)
	}
	return err
}

// everyShard is pk of every shard k of a count n a build's key can be
// under, whatever the project's count: unsharded, and each shard of the
// largest.
func everyShard(pk func(n, k int) string) []string {
	out := []string{pk(1, 0)}
	for k := range MaxShards {
		out = append(out, pk(MaxShards, k))
	}
	return out
}

// moveBuilds rewrites the builds of keys, read fresh and changed by place
// (false: leave it as it is), under shards' keys, each on its version; one
// that changed meanwhile, or whose transaction met another in flight, is
// read and moved again after a backoff. It returns how many it moved.
func (s *Store) moveBuilds(ctx context.Context, keys []item, shards int, place func(*jobs.Job) bool) (int, error) {
	moved := 0
	for attempt := 1; len(keys) > 0; attempt++ {
		if attempt > maxAttempts {
			return moved, fmt.Errorf("move builds: %d attempts lost: %w", maxAttempts, ErrConflict)
		}
		// Callers move 16 batches at once, whose moves add to the same
		// rank count items: a pause spreads the losers of the last round.
		if attempt > 1 {
			if err := backoff(ctx, attempt-2); err != nil {
				return moved, err
			}
		}
		got, err := s.batchGet(ctx, keys)
		if err != nil {
			return moved, err
		}
		var again []item
		for _, k := range keys {
			it, ok := got[keyString(k)]
			if !ok {
				continue // gone
			}
			j, err := decodeJob(it)
			if err != nil {
				return moved, err
			}
			before := *j
			if !place(j) {
				continue
			}
			j.Version++
			next, err := jobItem(j, shards)
			if err != nil {
				return moved, err
			}
			if wt, ok := it[writeTokenAttr]; ok {
				next[writeTokenAttr] = wt // the last Apply still knows its write
			}
			lost, err := s.moveBuild(ctx, next, before.Version, s.rankUpdates(j.ProjectID, rankMoves(&before, j)))
			switch {
			case err != nil:
				return moved, err
			case lost:
				again = append(again, k)
			default:
				moved++
			}
		}
		keys = again
	}
	return moved, nil
}

// moveBuild writes a build's item next on its version old, with ranks, the
// moves of its rank counts (a renumbered completed build's), in the same
// transaction (writeOps). lost is a failed version condition.
func (s *Store) moveBuild(ctx context.Context, next item, old int64, ranks []*types.Update) (lost bool, err error) {
	ops := []op{{race: true, w: types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(s.table), Item: next,
		ConditionExpression:       aws.String("v = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": num(old)},
	}}}}
	for _, u := range ranks {
		ops = append(ops, op{w: types.TransactWriteItem{Update: u}})
	}
	err = s.writeOps(ctx, ops, writeToken())
	if errors.Is(err, ErrConflict) {
		return true, nil
	}
	return false, err
}
