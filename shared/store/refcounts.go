package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Where a project keeps its refs' build counts (jobs.Project.RefCounts).
// Every creation of a build with a ref moves its ref's count on in the
// creating transaction; kept apart, creations in many refs write many
// partitions instead of all writing the project's, next to its item.
const (
	refsTogether = 0 // in each ref's entry (refEntryKey): projects stored before
	refsMoving   = 1 // in either, the count item when it has one: a reshard moves them
	refsApart    = 2 // in each ref's count item (refCountKey)
)

// refEntryKey is a ref's entry in its project's partition: it lists the
// refs with builds (countedRefs), and holds the ref's build count (n, the
// highest ref ordinal) while the project keeps its counts together.
func refEntryKey(p int64, ref string) item { return key("P#"+id(p), "RF#"+ref) }

// refCountKey is the item of its own that counts a project's builds of one
// ref once the project keeps its counts apart.
func refCountKey(p int64, ref string) item { return key("P#"+id(p)+"#RF#"+ref, "RF") }

// refCount is a ref's build count as read; apart when it was read from the
// ref's count item.
type refCount struct {
	n     int64
	apart bool
}

// refCountOf is the count of a ref in a project keeping counts as mode,
// from the counts in its entry and its count item (0: none there).
func refCountOf(mode int, entry, count int64) refCount {
	switch {
	case mode == refsTogether:
		return refCount{n: entry}
	case count > 0:
		return refCount{n: count, apart: true}
	default: // moving, or apart: the entry has no count left then
		return refCount{n: entry}
	}
}

// countIn is the count n of a count item as read (0 for none).
func countIn(it item) (int64, error) {
	var c counterItem
	if it == nil {
		return 0, nil
	}
	err := unmarshal(it, &c)
	return c.N, err
}

// refCountWrites move the count of ref in project p from rc, as read, to
// to (see moveCount). In a project keeping counts apart, a count read
// from the entry (or none at all) moves to the ref's count item in the
// same transaction, on the condition that the entry still holds it, and
// the entry stays to list the ref.
func (s *Store) refCountWrites(p *jobs.Project, ref string, rc refCount, to int64) []*types.Update {
	if p.RefCounts == refsTogether {
		return []*types.Update{s.moveCount(refEntryKey(p.ID, ref), rc.n, to)}
	}
	if rc.apart {
		return []*types.Update{s.moveCount(refCountKey(p.ID, ref), rc.n, to)}
	}
	return []*types.Update{s.moveCount(refCountKey(p.ID, ref), 0, to), s.leaveEntry(p.ID, ref, rc.n)}
}

// leaveEntry is the write taking count n (0: none) off ref's entry, on the
// condition that it is still n, and marking the entry's count kept apart.
func (s *Store) leaveEntry(pid int64, ref string, n int64) *types.Update {
	u := &types.Update{
		TableName: aws.String(s.table), Key: refEntryKey(pid, ref),
		UpdateExpression:          aws.String("SET ap = :t REMOVE n"),
		ConditionExpression:       aws.String("attribute_not_exists(n)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	}
	if n > 0 {
		u.ConditionExpression = aws.String("n = :n")
		u.ExpressionAttributeValues[":n"] = num(n)
	}
	return u
}

// keepRefCountsApart moves every ref count of project pid off its entry
// into the ref's count item, each in one transaction with the entry's on
// the condition that no creation moved it first, and then marks the
// project as keeping them apart. The project must keep them as
// refsMoving, so that creations read both places and move a count they
// find in the entry themselves.
func (s *Store) keepRefCountsApart(ctx context.Context, pid int64) error {
	for attempt := 1; ; attempt++ {
		if attempt > maxAttempts {
			return fmt.Errorf("ref counts of project %d: %d attempts lost: %w", pid, maxAttempts, ErrConflict)
		}
		entries, err := s.refEntries(ctx, pid)
		if err != nil {
			return err
		}
		lost := false
		for ref, n := range entries {
			if n == 0 {
				continue
			}
			us := s.refCountWrites(&jobs.Project{ID: pid, RefCounts: refsMoving}, ref, refCount{n: n}, n)
			ops := make([]op, len(us))
			for j, u := range us {
				ops[j] = op{race: true, w: types.TransactWriteItem{Update: u}}
			}
			err := s.writeOps(ctx, ops, writeToken())
			if errors.Is(err, ErrConflict) {
				lost = true // a creation moved it: read again
				continue
			}
			if err != nil {
				return err
			}
		}
		if !lost {
			break
		}
	}
	// Conditional, so that a project deleted meanwhile is not written anew
	// with only this attribute; outlasting, as the project item is every
	// creation's and its transactions can keep this write out for longer
	// than the client's attempts.
	err := outlasting(ctx, func() error {
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: projectKey(pid),
			UpdateExpression:          aws.String("SET ra = :apart"),
			ConditionExpression:       aws.String("ra IN (:moving, :apart)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":apart": num(refsApart), ":moving": num(refsMoving)},
		})
		return err
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return fmt.Errorf("project %d: %w", pid, ErrNotFound)
	}
	return err
}

// refEntries reads project pid's ref entries: each ref with the count its
// entry holds (0: none, as where counts are apart).
func (s *Store) refEntries(ctx context.Context, pid int64) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.queryEach(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :rf)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": projectKey(pid)["PK"], ":rf": str("RF#")},
		ProjectionExpression: aws.String("SK, n"),
		ConsistentRead:       aws.Bool(true),
	}, func(it item) error {
		n, err := countIn(it)
		if sk, ok := it["SK"].(*types.AttributeValueMemberS); ok {
			out[strings.TrimPrefix(sk.Value, "RF#")] = n
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("refs of project %d: %w", pid, err)
	}
	return out, nil
}
