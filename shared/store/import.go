package store

// The import writer: what jobsctl import and the demo world write. Nothing
// here runs on the request path (no function's policy grants BatchWriteItem
// or CreateTable); the request path is lookup.go, list.go, pipeline.go,
// related.go, agents.go and actions.go. Every method here returns only the
// DynamoDB client's errors.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// CreateTable creates the table from TableSchema and waits until it is
// active. An existing table is left as it is.
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.db.CreateTable(ctx, TableSchema(s.table))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", s.table, err)
	}
	return dynamodb.NewTableExistsWaiter(s.db).Wait(ctx,
		&dynamodb.DescribeTableInput{TableName: aws.String(s.table)}, 2*time.Minute)
}

// PutUser writes a user.
func (s *Store) PutUser(ctx context.Context, u *jobs.User) error {
	return s.putDoc(ctx, userKey(u.ID), u)
}

// PutToken writes a token; t.Hash is the SHA-256 of the secret.
func (s *Store) PutToken(ctx context.Context, t *jobs.Token) error {
	return s.putDoc(ctx, tokenKey(t.Hash), t)
}

// PutGroup writes a group.
func (s *Store) PutGroup(ctx context.Context, g *jobs.Group) error {
	return s.putDoc(ctx, groupKey(g.ID), g)
}

// PutRunner writes a runner.
func (s *Store) PutRunner(ctx context.Context, r *jobs.Runner) error {
	return s.putDoc(ctx, runnerKey(r.ID), r)
}

// PutAgent writes an agent and one authorization item under each project and
// group it is authorized for. Authorization items carry a copy of the agent,
// so that the Query finding them also reads the agents.
func (s *Store) PutAgent(ctx context.Context, a *jobs.Agent) error {
	items := []item{agentKey(a.ID)}
	for _, p := range a.AuthorizedProjectIDs {
		items = append(items, key("P#"+id(p), "A#"+id(a.ID)))
	}
	for _, g := range a.AuthorizedGroupIDs {
		items = append(items, key("G#"+id(g), "A#"+id(a.ID)))
	}
	for i, k := range items {
		it, err := marshal(a)
		if err != nil {
			return err
		}
		items[i] = withKey(it, k)
	}
	return s.writeAll(ctx, items)
}

func (s *Store) putDoc(ctx context.Context, k item, v any) error {
	it, err := marshal(v)
	if err != nil {
		return err
	}
	return s.put(ctx, withKey(it, k))
}

// PutProject writes a project, its path alias and its members. The builds
// counter of an existing project is kept.
func (s *Store) PutProject(ctx context.Context, p *jobs.Project, members map[int64]int) error {
	it, err := marshal(p)
	if err != nil {
		return err
	}
	delete(it, "nb")
	if err := s.upsertKeeping(ctx, projectKey(p.ID), it, "nb", num(0)); err != nil {
		return fmt.Errorf("put project %d: %w", p.ID, err)
	}
	items := []item{withKey(item{"id": num(p.ID)}, projectPathKey(p.Path))}
	for u, lvl := range members {
		m, err := marshal(member{UserID: u, Access: lvl})
		if err != nil {
			return err
		}
		items = append(items, withKey(m, memberKey(p.ID, u)))
	}
	return s.writeAll(ctx, items)
}

// upsertKeeping writes the attributes of it under k, keeping the attribute
// kept of an existing item (a counter) or setting it to initial.
func (s *Store) upsertKeeping(ctx context.Context, k item, it item, kept string, initial types.AttributeValue) error {
	names := map[string]string{"#kept": kept}
	values := map[string]types.AttributeValue{":initial": initial}
	sets := []string{"#kept = if_not_exists(#kept, :initial)"}
	attrs := make([]string, 0, len(it))
	for a := range it {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	for i, a := range attrs {
		n, v := fmt.Sprintf("#a%d", i), fmt.Sprintf(":a%d", i)
		names[n], values[v] = a, it[a]
		sets = append(sets, n+" = "+v)
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: k,
		UpdateExpression:         aws.String("SET " + strings.Join(sets, ", ")),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	return err
}

// Ordinals places a project's new builds in its ordinal index (the dense,
// 1-based position of each build in id order, GSI1).
type Ordinals struct {
	// Base is the ordinal of the stored build just below IDs[0] (0: none);
	// the builds below it keep theirs, untouched and unread.
	Base int64
	// IDs are the new builds and the stored ones above the lowest of them,
	// ascending: IDs[i] gets ordinal Base+i+1.
	IDs []int64
	// Moved are the stored builds whose ordinal changes, with the new one and
	// their version bumped, to be written again.
	Moved []*jobs.Job
	// Builds is the project's build count afterwards (nb).
	Builds int64
}

// Of is the ordinal of build id, 0 if it is not in o.
func (o *Ordinals) Of(id int64) int64 {
	if i, ok := slices.BinarySearch(o.IDs, id); ok {
		return o.Base + int64(i) + 1
	}
	return 0
}

// PlanOrdinals is where the ordinals of builds are decided, for the import
// of fresh, the ids of a project's builds that are not stored yet. It reads
// the project's builds from the top of the index down to the first one
// older than every fresh build: one item when all of them are newer (the
// usual incremental import, whose ordinals continue from the top), else the
// part of the history above the lowest fresh id, which is renumbered.
func (s *Store) PlanOrdinals(ctx context.Context, pid int64, fresh []int64) (*Ordinals, error) {
	fresh = slices.Clone(fresh)
	slices.Sort(fresh)
	o := &Ordinals{IDs: fresh}
	if len(fresh) == 0 {
		return o, nil
	}
	part := gsi(GSIProjectBuilds, projectBuildsPK(pid))
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(part.index),
		KeyConditionExpression:    aws.String("GSI1PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(part.pk)},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(1),
	}
	var above []*jobs.Job // stored builds newer than fresh[0], newest first
	for {
		res, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("builds of project %d: %w", pid, err)
		}
		for _, it := range res.Items {
			j, err := decodeJob(it)
			if err != nil {
				return nil, err
			}
			if j.ID < fresh[0] {
				return o.place(above, j.Ordinal), nil
			}
			above = append(above, j)
		}
		if res.LastEvaluatedKey == nil {
			return o.place(above, 0), nil
		}
		in.ExclusiveStartKey, in.Limit = res.LastEvaluatedKey, aws.Int32(1000)
	}
}

// place numbers the fresh builds and the stored ones above them from base.
func (o *Ordinals) place(above []*jobs.Job, base int64) *Ordinals {
	o.Base = base
	stored := map[int64]*jobs.Job{}
	for _, j := range above {
		stored[j.ID] = j
		o.IDs = append(o.IDs, j.ID)
	}
	slices.Sort(o.IDs)
	for i, id := range o.IDs {
		if j := stored[id]; j != nil && j.Ordinal != base+int64(i)+1 {
			j.Ordinal = base + int64(i) + 1
			j.Version++
			o.Moved = append(o.Moved, j)
		}
	}
	o.Builds = base + int64(len(o.IDs))
	return o
}

// SetBuilds sets the build count of an existing project (nb) after an
// import placed its builds.
func (s *Store) SetBuilds(ctx context.Context, pid, n int64) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: projectKey(pid),
		UpdateExpression:          aws.String("SET nb = :n"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n)},
	})
	if err != nil {
		return fmt.Errorf("count builds of project %d: %w", pid, err)
	}
	return nil
}

// ExistingJobs says which of ids are stored, reading only their keys.
func (s *Store) ExistingJobs(ctx context.Context, ids []int64) (map[int64]bool, error) {
	keys := make([]item, len(ids))
	for i, j := range ids {
		keys[i] = jobKey(j)
	}
	found, err := s.readKeys(ctx, keys, "PK")
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(found))
	for _, it := range found {
		if pk, ok := it["PK"].(*types.AttributeValueMemberS); ok {
			n, _ := strconv.ParseInt(strings.TrimPrefix(pk.Value, "J#"), 10, 64)
			out[n] = true
		}
	}
	return out, nil
}

// StoredPipelines reads the counts and commits of those of ids that are
// stored, which an import's pipeline items must carry on.
func (s *Store) StoredPipelines(ctx context.Context, ids []int64) (map[int64]*jobs.Pipeline, error) {
	keys := make([]item, len(ids))
	for i, p := range ids {
		keys[i] = pipelineKey(p)
	}
	found, err := s.readKeys(ctx, keys, "id, n, c")
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*jobs.Pipeline, len(found))
	for _, it := range found {
		var p jobs.Pipeline
		if err := unmarshal(it, &p); err != nil {
			return nil, err
		}
		out[p.ID] = &p
	}
	return out, nil
}

// readKeys reads the projected attributes of keys with BatchGetItem, 100
// keys a call, batchesInFlight calls at a time.
func (s *Store) readKeys(ctx context.Context, keys []item, projection string) ([]item, error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(batchesInFlight)
	var (
		mu  sync.Mutex
		out []item
	)
	for start := 0; start < len(keys); start += 100 {
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys[start:min(start+100, len(keys))],
			ProjectionExpression: aws.String(projection), ConsistentRead: aws.Bool(true)}}
		g.Go(func() error {
			for attempt := 0; len(req) > 0; attempt++ {
				res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
				if err != nil && transient(err) && attempt < 10 {
					if err := backoff(ctx, attempt); err != nil {
						return err
					}
					continue
				}
				if err != nil {
					return fmt.Errorf("batch get: %w", err)
				}
				mu.Lock()
				out = append(out, res.Responses[s.table]...)
				mu.Unlock()
				if req = res.UnprocessedKeys; len(req) > 0 {
					if err := backoff(ctx, attempt); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	return out, g.Wait()
}

// RaiseJobCounter moves the job id counter up to at least n.
func (s *Store) RaiseJobCounter(ctx context.Context, n int64) error {
	if n == 0 {
		return nil
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: counterKey(),
		UpdateExpression:          aws.String("SET n = :n"),
		ConditionExpression:       aws.String("attribute_not_exists(n) OR n < :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n)},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil
	}
	return err
}

func (s *Store) writeAll(ctx context.Context, items []item) error {
	w := s.NewWriter(ctx)
	w.put(items...)
	return w.Wait()
}

// batchesInFlight is how many BatchWriteItem or BatchGetItem calls an
// import keeps going: enough to keep DynamoDB busy, few enough that
// throttling backs them all off quickly.
const batchesInFlight = 24

// Writer writes items with BatchWriteItem, 25 a call, batchesInFlight calls
// at a time, backing off when DynamoDB leaves items unprocessed (its answer
// to throttling within a batch). Each item is a whole put: the import's
// items are final when written, so a write repeated after a crash writes
// the same item.
type Writer struct {
	s       *Store
	ctx     context.Context
	g       *errgroup.Group
	pending []item
}

// NewWriter starts a writer; Wait flushes it.
func (s *Store) NewWriter(ctx context.Context) *Writer {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(batchesInFlight)
	return &Writer{s: s, ctx: ctx, g: g}
}

// PutJobs queues the items of js.
func (w *Writer) PutJobs(js ...*jobs.Job) error {
	for _, j := range js {
		it, err := jobItem(j)
		if err != nil {
			return err
		}
		w.put(it)
	}
	return nil
}

// PutPipelines queues pipelines, their counts (Counts) as given: an import
// computes them.
func (w *Writer) PutPipelines(ps ...*jobs.Pipeline) error {
	for _, p := range ps {
		if p.Counts == nil {
			p.Counts = map[string]int64{}
		}
		it, err := marshal(p)
		if err != nil {
			return err
		}
		w.put(withKey(it, pipelineKey(p.ID)))
	}
	return nil
}

func (w *Writer) put(items ...item) {
	w.pending = append(w.pending, items...)
	for len(w.pending) >= 25 {
		w.send(w.pending[:25])
		w.pending = w.pending[25:]
	}
}

func (w *Writer) send(batch []item) {
	batch = slices.Clone(batch)
	w.g.Go(func() error { return w.s.batchWrite(w.ctx, batch) })
}

// Wait sends what is queued and waits until everything is written.
func (w *Writer) Wait() error {
	if len(w.pending) > 0 {
		w.send(w.pending)
		w.pending = nil
	}
	return w.g.Wait()
}

func (s *Store) batchWrite(ctx context.Context, batch []item) error {
	reqs := make([]types.WriteRequest, len(batch))
	for i, it := range batch {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
	}
	pending := map[string][]types.WriteRequest{s.table: reqs}
	for attempt := 0; len(pending[s.table]) > 0; attempt++ {
		res, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil && transient(err) && attempt < 10 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
		if pending = res.UnprocessedItems; len(pending[s.table]) > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
	}
	return nil
}

// transient errors are those an import outlasts by waiting: throttling
// that the SDK's few attempts did not outlast, and calls that timed out (a
// busy DynamoDB Local does).
func transient(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// backoff waits before the attempt+1st try of what DynamoDB left
// unprocessed: full jitter, 50 ms doubling up to 5 s. (Throttled and
// failed calls are retried by the SDK's own retryer, config's.)
func backoff(ctx context.Context, attempt int) error {
	ceiling := 50 * time.Millisecond << min(attempt, 7)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(min(ceiling, 5*time.Second)) + 1)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
