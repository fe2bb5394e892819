package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// idBlock is how many job ids one lease takes from the counter (COUNTER
// JOB): one UpdateItem ADD per 64 new jobs, so 10,000 creations/s are about
// 160 writes/s on that item, a sixth of what one item takes. A build's
// project keeps the rest of the block for its next builds, so the number of
// containers creating in a project does not matter; a container keeps what
// its bridges leave. What a container never uses is lost when it ends: ids
// have gaps, as GitLab's do. Larger blocks would only waste more ids.
const idBlock = 64

// idLease is the block of ids a Store holds and nobody has used: next..last
// (none when last < next or last is 0: ids start at 1).
type idLease struct {
	mu         sync.Mutex
	next, last int64
}

// newID is the id of a job c that an action creates in project p, read
// fresh: a build takes the next of its project's leased ids (they lie above
// every build id of the project, so ids grow with ordinals), or, when none
// is left or fresh asks for new ones (the project's next id was taken by an
// import), a new block above the project's builds that the project keeps;
// a bridge needs an id only. lease is the new block, if any: the creating
// transaction writes it on the project, or gives it back (giveBack) when it
// loses.
func (s *Store) newID(ctx context.Context, p *jobs.Project, c *jobs.Job, fresh bool) (id int64, lease [2]int64, err error) {
	if c.Kind != jobs.Bridge && p.IDsEnd > p.MaxBuildID && !fresh {
		return p.MaxBuildID + 1, lease, nil
	}
	var floor int64
	if c.Kind != jobs.Bridge {
		floor = p.MaxBuildID
	}
	first, last, err := s.leaseIDs(ctx, floor)
	if err != nil {
		return 0, lease, err
	}
	if c.Kind == jobs.Bridge {
		s.giveBack(first+1, last)
		return first, lease, nil
	}
	return first, [2]int64{first, last}, nil
}

// leaseIDs hands over a block of unused ids, all above floor: the Store's
// own, whole (so that two callers never share one), or a new one from the
// counter, which lies above every id leased before.
func (s *Store) leaseIDs(ctx context.Context, floor int64) (first, last int64, err error) {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	if first := max(s.ids.next, floor+1); first <= s.ids.last {
		last := s.ids.last
		s.ids.next, s.ids.last = 0, 0
		return first, last, nil
	}
	n := int64(idBlock)
	for {
		last, err := s.addToCounter(ctx, n)
		if err != nil {
			return 0, 0, err
		}
		if first := max(last-n+1, floor+1); first <= last {
			return first, last, nil
		}
		// The counter lies below the project's builds (their import did
		// not raise it): jump past them.
		n = floor - last + idBlock
	}
}

// giveBack keeps unused ids first..last for the Store's next lease, in
// place of what it holds unless that is higher (a higher block serves more
// projects).
func (s *Store) giveBack(first, last int64) {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	if first > 0 && first <= last && last > s.ids.last {
		s.ids.next, s.ids.last = first, last
	}
}

// addToCounter adds n to the job id counter and returns its new value: one
// UpdateItem without condition, so concurrent leases never conflict.
func (s *Store) addToCounter(ctx context.Context, n int64) (int64, error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: counterKey(),
		UpdateExpression:          aws.String("ADD n :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("lease job ids: %w", err)
	}
	v, ok := out.Attributes["n"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("lease job ids: counter %v", out.Attributes)
	}
	return strconv.ParseInt(v.Value, 10, 64)
}
