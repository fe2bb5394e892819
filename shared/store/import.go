package store

// The import writer: what jobsctl import and the demo world write. Nothing
// here runs on the request path (no function's policy grants BatchWriteItem
// or CreateTable); the request path is lookup.go, list.go, pipeline.go,
// related.go, agents.go and actions.go. Every method here returns only the
// DynamoDB client's errors.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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

// PutPipeline writes a pipeline; the job counts of an existing one are kept.
func (s *Store) PutPipeline(ctx context.Context, p *jobs.Pipeline) error {
	it, err := marshal(p)
	if err != nil {
		return err
	}
	delete(it, "n")
	return s.upsertKeeping(ctx, pipelineKey(p.ID), it, "n", &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}})
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
// counter of an existing project is kept, and so is its shard count unless
// p names one (Shards > 0), which only a project without builds may change.
func (s *Store) PutProject(ctx context.Context, p *jobs.Project, members map[int64]int) error {
	it, err := marshal(p)
	if err != nil {
		return err
	}
	delete(it, "nb")
	delete(it, "sh")
	if err := s.upsertKeeping(ctx, projectKey(p.ID), it, "nb", num(0)); err != nil {
		return fmt.Errorf("put project %d: %w", p.ID, err)
	}
	if p.Shards > 0 {
		if err := s.setShards(ctx, p.ID, p.Shards); err != nil {
			return err
		}
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

// setShards sets a project's shard count if it has no builds yet (or has
// that count already): its builds' keys follow the count (see Reshard).
func (s *Store) setShards(ctx context.Context, pid int64, shards int) error {
	cond := "nb = :zero OR sh = :sh"
	if shards == 1 {
		cond += " OR attribute_not_exists(sh)"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: projectKey(pid),
		UpdateExpression:          aws.String("SET sh = :sh"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{":sh": num(int64(shards)), ":zero": num(0)},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return fmt.Errorf("project %d has builds: change its shards with jobsctl reshard", pid)
	}
	return err
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

// ImportJobs writes the jobs that do not exist yet; existing ones are left
// untouched, so importing twice changes nothing. New builds get the next
// ordinals of their project, or the project's builds are renumbered when the
// new ones do not all come after the existing ones. It returns how many jobs
// were written; progress, if not nil, is told after each batch.
func (s *Store) ImportJobs(ctx context.Context, js []*jobs.Job, progress func(done int)) (int, error) {
	keys := make([]item, len(js))
	for i, j := range js {
		keys[i] = jobKey(j.ID)
	}
	existing, err := s.batchGet(ctx, keys)
	if err != nil {
		return 0, err
	}
	var fresh []*jobs.Job
	for _, j := range js {
		if _, ok := existing[keyString(jobKey(j.ID))]; !ok {
			fresh = append(fresh, j)
		}
	}
	byProject := map[int64][]*jobs.Job{}
	var maxID int64
	for _, j := range fresh {
		if j.Kind != jobs.Bridge {
			byProject[j.ProjectID] = append(byProject[j.ProjectID], j)
		}
		maxID = max(maxID, j.ID)
	}
	shards, err := s.shardCounts(ctx, byProject)
	if err != nil {
		return 0, err
	}
	var rewrite []*jobs.Job // existing builds whose ordinals move
	counts := map[int64]int64{}
	var refCounts []item // each ref's build count, where it moved
	for pid, builds := range byProject {
		moved, total, refs, err := s.assignOrdinals(ctx, pid, shards[pid], builds)
		if err != nil {
			return 0, err
		}
		rewrite = append(rewrite, moved...)
		counts[pid] = total
		for ref, n := range refs {
			refCounts = append(refCounts, withKey(item{"n": num(n)}, refCountKey(pid, ref)))
		}
	}
	items := make([]item, 0, len(fresh)+len(rewrite))
	for _, j := range append(fresh, rewrite...) {
		it, err := jobItem(j, max(shards[j.ProjectID], 1))
		if err != nil {
			return 0, err
		}
		items = append(items, it)
	}
	defer s.ForgetPages()
	if err := s.writeAllProgress(ctx, items, progress); err != nil {
		return 0, err
	}
	if err := s.writeAll(ctx, refCounts); err != nil {
		return 0, err
	}
	deltas := map[int64]map[string]int64{}
	for _, j := range fresh {
		if deltas[j.PipelineID] == nil {
			deltas[j.PipelineID] = map[string]int64{}
		}
		for k, v := range countDelta(nil, j) {
			deltas[j.PipelineID][k] += v
		}
	}
	for pl, d := range deltas {
		if err := s.addCounts(ctx, pl, d); err != nil {
			return 0, err
		}
	}
	if err := s.raiseCounter(ctx, maxID); err != nil {
		return 0, err
	}
	for pid, n := range counts {
		// The project's leased ids (ie) may hold imported ones: its next
		// build leases new ids, above the counter and so above every
		// imported id; mx is then only a floor.
		builds := byProject[pid]
		if _, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: projectKey(pid),
			UpdateExpression:          aws.String("SET nb = :n, mx = :mx REMOVE ie"),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n), ":mx": num(builds[len(builds)-1].ID)},
		}); err != nil {
			return 0, fmt.Errorf("count builds of project %d: %w", pid, err)
		}
	}
	return len(fresh), nil
}

// shardCounts reads the shard count of each project of byProject (0 for
// a project not stored).
func (s *Store) shardCounts(ctx context.Context, byProject map[int64][]*jobs.Job) (map[int64]int, error) {
	keys := make([]item, 0, len(byProject))
	for pid := range byProject {
		keys = append(keys, projectKey(pid))
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := map[int64]int{}
	for _, it := range got {
		var p jobs.Project
		if err := unmarshal(it, &p); err != nil {
			return nil, err
		}
		out[p.ID] = shardsOf(&p)
	}
	return out, nil
}

// assignOrdinals numbers new builds of a project after its existing ones, or
// renumbers all of them when a new build is older than an existing one,
// and likewise among the builds of each ref (an existing build without its
// ref ordinal, imported before there were any, gets one then). It returns the
// existing builds whose ordinals changed, the new total and each ref's new
// total, for the refs of new or changed builds.
func (s *Store) assignOrdinals(ctx context.Context, pid int64, shards int, builds []*jobs.Job) ([]*jobs.Job, int64, map[string]int64, error) {
	slices.SortFunc(builds, func(a, b *jobs.Job) int { return cmp.Compare(a.ID, b.ID) })
	old, err := s.allBuilds(ctx, pid, shards)
	if err != nil {
		return nil, 0, nil, err
	}
	all := append(slices.Clone(old), builds...)
	if len(old) > 0 && old[len(old)-1].ID > builds[0].ID {
		slices.SortFunc(all, func(a, b *jobs.Job) int { return cmp.Compare(a.ID, b.ID) })
	}
	isOld := map[*jobs.Job]bool{}
	for _, j := range old {
		isOld[j] = true
	}
	var moved []*jobs.Job
	perRef := map[string]int64{} // builds of each ref so far
	touched := map[string]bool{} // refs of new or renumbered builds
	for i, j := range all {
		n, rn := int64(i+1), int64(0)
		if hasRef(j) {
			perRef[j.Ref]++
			rn = perRef[j.Ref]
		}
		if j.Ordinal == n && j.RefOrdinal == rn {
			continue
		}
		j.Ordinal, j.RefOrdinal = n, rn
		if isOld[j] {
			j.Version++
			moved = append(moved, j)
		}
		if hasRef(j) {
			touched[j.Ref] = true
		}
	}
	refs := make(map[string]int64, len(touched))
	for ref := range touched {
		refs[ref] = perRef[ref]
	}
	return moved, int64(len(all)), refs, nil
}

// allBuilds reads every build of a project in shards shards, oldest first.
// Only import uses it.
func (s *Store) allBuilds(ctx context.Context, pid int64, shards int) ([]*jobs.Job, error) {
	var out []*jobs.Job
	for k := range max(shards, 1) {
		part, err := s.queryAll(ctx, gsi(GSIProjectBuilds, projectBuildsPK(pid, shards, k)))
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	slices.SortFunc(out, func(a, b *jobs.Job) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
	return s.wholeJobs(ctx, out) // moved builds are written whole
}

// queryAll reads every job of one index partition (import and Reshard).
func (s *Store) queryAll(ctx context.Context, part partition) ([]*jobs.Job, error) {
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(part.index),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": part.pkAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(part.pk)},
	}
	var out []*jobs.Job
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		res, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range res.Items {
			j, err := decodeJob(it)
			if err != nil {
				return nil, err
			}
			out = append(out, j)
		}
	}
	return out, nil
}

// raiseCounter moves the job id counter up to at least n.
func (s *Store) raiseCounter(ctx context.Context, n int64) error {
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
	return s.writeAllProgress(ctx, items, nil)
}

// writeAllProgress writes items with BatchWriteItem, 25 a call, four calls at
// a time, retrying what DynamoDB leaves unprocessed.
func (s *Store) writeAllProgress(ctx context.Context, items []item, progress func(int)) error {
	_, err := inBatches(ctx, items, 25, 4, progress, func(ctx context.Context, batch []item) (int, error) {
		if err := s.batchWrite(ctx, batch); err != nil {
			return 0, err
		}
		return len(batch), nil
	})
	return err
}

// inBatches runs do on items in batches of size, at most inFlight at a
// time, and tells progress (if not nil) the running total of what do
// reports done, which it also returns.
func inBatches[T any](ctx context.Context, items []T, size, inFlight int, progress func(int),
	do func(context.Context, []T) (int, error)) (int, error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	var (
		mu   sync.Mutex
		done int
	)
	for start := 0; start < len(items); start += size {
		batch := items[start:min(start+size, len(items))]
		g.Go(func() error {
			n, err := do(ctx, batch)
			mu.Lock()
			defer mu.Unlock()
			if done += n; progress != nil && n > 0 {
				progress(done)
			}
			return err
		})
	}
	err := g.Wait()
	return done, err
}

func (s *Store) batchWrite(ctx context.Context, batch []item) error {
	reqs := make([]types.WriteRequest, len(batch))
	for i, it := range batch {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
	}
	pending := map[string][]types.WriteRequest{s.table: reqs}
	for len(pending[s.table]) > 0 {
		res, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
		pending = res.UnprocessedItems
	}
	return nil
}

// addCounts applies delta to a pipeline's counts outside a transaction
// (import only).
func (s *Store) addCounts(ctx context.Context, pipelineID int64, delta map[string]int64) error {
	u := s.countsUpdate(pipelineID, delta)
	if u == nil {
		return nil
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
		ExpressionAttributeNames: u.ExpressionAttributeNames, ExpressionAttributeValues: u.ExpressionAttributeValues,
		ConditionExpression: u.ConditionExpression,
	})
	if err != nil {
		return fmt.Errorf("count jobs of pipeline %d: %w", pipelineID, err)
	}
	return nil
}
