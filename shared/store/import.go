package store

// The import writer: what jobsctl import and the demo world write. Nothing
// here runs on the request path (no function's policy grants BatchWriteItem
// or CreateTable); the request path is lookup.go, list.go, pipeline.go,
// related.go, agents.go and actions.go. Every method here returns only the
// DynamoDB client's errors.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"slices"
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
// counter of an existing project is kept, and so is its shard count unless
// p names one (Shards > 0), which only a project without builds may change.
func (s *Store) PutProject(ctx context.Context, p *jobs.Project, members map[int64]int) error {
	it, err := marshal(p)
	if err != nil {
		return err
	}
	delete(it, "nb")
	delete(it, "sh")
	delete(it, "tm")
	delete(it, "ra")
	if err := s.upsertKeeping(ctx, projectKey(p.ID), it, "nb", num(0)); err != nil {
		return fmt.Errorf("put project %d: %w", p.ID, err)
	}
	if err := s.startRankCounts(ctx, p.ID); err != nil {
		return err
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

// startRankCounts marks a project without builds as counted (tm, see
// rankSpan) and as keeping its ref counts apart (ra): from its first build
// on, every write keeps its rank counts, and its refs' counts.
// A project stored with builds before counts were kept is left unmarked,
// and its deep pages read as before.
func (s *Store) startRankCounts(ctx context.Context, pid int64) error {
	err := s.markCounted(ctx, pid, true)
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil
	}
	return err
}

// markCounted sets project pid's tm (and drops the marks of counts before
// masks, tc and tr): if new, only on a project without builds or the mark
// (startRankCounts), else on any stored one (Recount).
func (s *Store) markCounted(ctx context.Context, pid int64, new bool) error {
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: projectKey(pid),
		UpdateExpression:          aws.String("SET tm = :t REMOVE tc, tr"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	}
	if new {
		// Nor any ref count yet: they start apart.
		in.UpdateExpression = aws.String("SET tm = :t, ra = :apart REMOVE tc, tr")
		in.ConditionExpression = aws.String("nb = :zero AND attribute_not_exists(tm)")
		in.ExpressionAttributeValues[":zero"] = num(0)
		in.ExpressionAttributeValues[":apart"] = num(refsApart)
	}
	_, err := s.db.UpdateItem(ctx, in)
	return err
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
	sets, names, values := setsOf(it)
	names["#kept"], values[":initial"] = kept, initial
	sets = append(sets, "#kept = if_not_exists(#kept, :initial)")
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: k,
		UpdateExpression:         aws.String("SET " + strings.Join(sets, ", ")),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	return err
}

// setsOf is an update's SET clauses of the attributes of it, in order,
// with their names and values.
func setsOf(it item) ([]string, map[string]string, map[string]types.AttributeValue) {
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	attrs := slices.Sorted(maps.Keys(it))
	sets := make([]string, len(attrs))
	for i, a := range attrs {
		n, v := fmt.Sprintf("#a%d", i), fmt.Sprintf(":a%d", i)
		names[n], values[v] = a, it[a]
		sets[i] = n + " = " + v
	}
	return sets, names, values
}

// Build is a build an import is about to write, as its ordinals need it.
type Build struct {
	ID     int64
	Ref    string      // its pipeline's ref ("" for none)
	Status jobs.Status // a completed one is added to the rank counts
}

// Ordinals places a project's new builds in its ordinal indexes: the dense,
// 1-based position of each build in id order among the project's builds
// (GSI1) and among its ref's builds (GSI7). Fields are exported for an
// import's checkpoint.
type Ordinals struct {
	Shards    int // the project's build index shards, as read
	RefCounts int // where the project keeps its refs' build counts, as read
	// IDs are the new builds, ascending; Ordinal[i] and RefOrdinal[i] are
	// those of IDs[i].
	IDs, Ordinal, RefOrdinal []int64
	// Moved are the stored builds whose ordinals change: those above the
	// lowest new build, when a new one is older than a stored one.
	Moved []Placement
	// Builds is the project's build count (nb) as read and afterwards;
	// MaxID its highest build id afterwards (mx).
	OldBuilds, Builds, MaxID int64
	// Refs are the build counts of the refs whose builds change.
	Refs map[string]RefCount
	// Ranks are what the new completed builds add to the rank counts, of
	// the project's builds and of their refs'.
	Ranks  []RankCount
	rankAt map[RankCount]int // a (ref, status, slot)'s place in Ranks
}

// RankCount is the new builds of Status in rank slot Slot of the project's
// builds (Ref "") or of Ref's: Bits their bits in its mask, ID the oldest.
type RankCount struct {
	Ref        string
	Status     jobs.Status
	Slot, Bits int64
	ID         int64
}

// Placement is where a stored build moves.
type Placement struct{ ID, Ordinal, RefOrdinal int64 }

// RefCount is a ref's build count as read and afterwards.
type RefCount struct{ Old, New int64 }

// Of is the ordinal and ref ordinal of new build id, zeros if it is not one.
func (o *Ordinals) Of(id int64) (ordinal, refOrdinal int64) {
	if i, ok := slices.BinarySearch(o.IDs, id); ok {
		return o.Ordinal[i], o.RefOrdinal[i]
	}
	return 0, 0
}

// PlanOrdinals decides the ordinals of fresh, builds of project pid that
// are not stored yet. It reads the project, each of its index shards from
// the top down to the first build older than every fresh one (one item a
// shard when all of them are newer, the usual incremental import, whose
// ordinals continue from there), and, only when some stored builds are
// newer than a fresh one, those builds whole from the table, since they are
// renumbered. Index entries give only keys: nothing else of them is read.
func (s *Store) PlanOrdinals(ctx context.Context, pid int64, fresh []Build) (*Ordinals, error) {
	p, err := s.readProject(ctx, pid)
	if err != nil {
		return nil, err
	}
	if p.RefCounts == refsMoving {
		return nil, fmt.Errorf("project %d: a reshard is moving its ref counts: run jobsctl reshard again first", pid)
	}
	if p.ShardsToo != 0 {
		// Its builds are under two counts' keys, the plan reads one's.
		return nil, fmt.Errorf("project %d: a reshard is moving its builds: let it end, or run jobsctl reshard again, first", pid)
	}
	o := &Ordinals{Shards: shardsOf(p), RefCounts: p.RefCounts, OldBuilds: p.Builds, Builds: p.Builds, MaxID: p.MaxBuildID,
		Refs: map[string]RefCount{}}
	if len(fresh) == 0 {
		return o, nil
	}
	slices.SortFunc(fresh, func(a, b Build) int { return cmp.Compare(a.ID, b.ID) })
	base, above, err := s.indexedAbove(ctx, p, o.Shards, fresh[0].ID)
	if err != nil {
		return nil, err
	}
	keys := make([]item, len(above))
	for i, id := range above {
		keys[i] = jobKey(id)
	}
	stored, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	type entry struct {
		Build
		stored *jobs.Job
	}
	all := make([]entry, 0, len(fresh)+len(above))
	for _, b := range fresh {
		if !indexedRef(b.Ref) {
			b.Ref = ""
		}
		all = append(all, entry{Build: b})
	}
	for _, it := range stored {
		j, err := decodeJob(it)
		if err != nil {
			return nil, err
		}
		e := entry{Build{ID: j.ID}, j}
		if hasRef(j) {
			e.Ref = j.Ref
		}
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.ID, b.ID) })
	var names []string
	for _, e := range all {
		if e.Ref != "" {
			names = append(names, e.Ref)
		}
	}
	refs, err := s.refCounts(ctx, pid, o.RefCounts, names)
	if err != nil {
		return nil, err
	}
	// Counts read where a reshard had just moved them from would be 0.
	if p, err := s.readProject(ctx, pid); err != nil {
		return nil, err
	} else if p.RefCounts != o.RefCounts {
		return nil, fmt.Errorf("project %d: a reshard moved its ref counts while the import planned: import again", pid)
	}
	// A ref's builds below the lowest fresh one keep their ref ordinals:
	// they are its count less its stored builds from there on.
	last := maps.Clone(refs)
	for _, e := range all {
		if e.stored != nil && e.Ref != "" {
			last[e.Ref]--
		}
	}
	for i, e := range all {
		ord, refOrd := base+int64(i)+1, int64(0)
		if e.Ref != "" {
			refOrd = max(last[e.Ref], 0) + 1
			last[e.Ref] = refOrd
		}
		o.MaxID = max(o.MaxID, e.ID)
		if e.stored == nil {
			if b := e.Build; b.Status.Completed() {
				o.addRank("", b, ord)
				if b.Ref != "" {
					o.addRank(b.Ref, b, refOrd)
				}
			}
			o.IDs = append(o.IDs, e.ID)
			o.Ordinal = append(o.Ordinal, ord)
			o.RefOrdinal = append(o.RefOrdinal, refOrd)
		} else if e.stored.Ordinal != ord || e.stored.RefOrdinal != refOrd {
			o.Moved = append(o.Moved, Placement{e.ID, ord, refOrd})
		}
	}
	for ref, n := range refs {
		o.Refs[ref] = RefCount{Old: n, New: last[ref]}
	}
	o.Builds = base + int64(len(all))
	return o, nil
}

// readProject reads project pid's item, strongly consistent.
func (s *Store) readProject(ctx context.Context, pid int64) (*jobs.Project, error) {
	got, err := s.batchGet(ctx, []item{projectKey(pid)})
	if err != nil {
		return nil, err
	}
	it, ok := got[keyString(projectKey(pid))]
	if !ok {
		return nil, fmt.Errorf("project %d: %w", pid, ErrNotFound)
	}
	p := &jobs.Project{}
	return p, unmarshal(it, p)
}

// addRank counts new build b of ordinal ord in the rank counts of ref's
// builds (the project's for ""). Builds come in id order, so a slot's id
// is its oldest new build's.
func (o *Ordinals) addRank(ref string, b Build, ord int64) {
	k := RankCount{Ref: ref, Status: b.Status, Slot: rankSlot(ord)}
	if i, ok := o.rankAt[k]; ok {
		o.Ranks[i].Bits |= rankBit(ord)
		return
	}
	if o.rankAt == nil {
		o.rankAt = map[RankCount]int{}
	}
	o.rankAt[k] = len(o.Ranks)
	k.Bits, k.ID = rankBit(ord), b.ID
	o.Ranks = append(o.Ranks, k)
}

// indexedAbove is buildsAbove once the ordinal index shows each of project
// p's builds: ordinals are dense, so the builds above base must be nb-base.
// Fewer means the index has not shown a build just created yet, and
// numbering from it would give the import's first build that build's
// ordinal, which the compare-and-set of nb would not catch. More means
// builds were created since p was read, which that compare-and-set does
// catch.
func (s *Store) indexedAbove(ctx context.Context, p *jobs.Project, shards int, low int64) (base int64, above []int64, err error) {
	err = untilIndexed(ctx, func() (int64, int64, error) {
		var err error
		base, above, err = s.buildsAbove(ctx, p.ID, shards, low)
		return base + int64(len(above)), p.Builds, err
	})
	if errors.Is(err, errIndexLags) {
		err = fmt.Errorf("project %d: %w (or a reshard is moving them): import again", p.ID, err)
	}
	return base, above, err
}

// buildsAbove reads each shard of a project's ordinal index from the top
// down to its first build below id low (keys only): the ordinal of the
// highest build below low (0: none) and the ids of the builds above it.
func (s *Store) buildsAbove(ctx context.Context, pid int64, shards int, low int64) (int64, []int64, error) {
	var (
		base  int64
		above []int64
	)
	for k := range shards {
		in := &dynamodb.QueryInput{
			TableName: aws.String(s.table), IndexName: aws.String(GSIProjectBuilds),
			KeyConditionExpression:    aws.String("GSI1PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(projectBuildsPK(pid, shards, k))},
			ProjectionExpression:      aws.String("PK, GSI1SK"),
			ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(1),
		}
	pages:
		for {
			res, err := s.query(ctx, in)
			if err != nil {
				return 0, nil, fmt.Errorf("builds of project %d: %w", pid, err)
			}
			for _, it := range res.Items {
				id, ord := keyNumber(it["PK"], "J#"), keyNumber(it["GSI1SK"], "")
				if id < low {
					base = max(base, ord)
					break pages
				}
				above = append(above, id)
			}
			if res.LastEvaluatedKey == nil {
				break
			}
			// Read on in growing pages: a deep renumbering reads few calls,
			// a shallow one few items past what it needs.
			in.ExclusiveStartKey, in.Limit = res.LastEvaluatedKey, aws.Int32(min(2**in.Limit, 1000))
		}
	}
	return base, above, nil
}

// keyNumber is the number in a key attribute: a number, or a string that
// starts with prefix (0 if it is neither).
func keyNumber(v types.AttributeValue, prefix string) int64 {
	var s string
	switch v := v.(type) {
	case *types.AttributeValueMemberN:
		s = v.Value
	case *types.AttributeValueMemberS:
		s = strings.TrimPrefix(v.Value, prefix)
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// refCounts reads the build counts of refs of project pid, which keeps them
// as mode (together or apart; 0 for a ref without one).
func (s *Store) refCounts(ctx context.Context, pid int64, mode int, refs []string) (map[string]int64, error) {
	at := func(ref string) item { return refEntryKey(pid, ref) }
	if mode == refsApart {
		at = func(ref string) item { return refCountKey(pid, ref) }
	}
	out := map[string]int64{}
	var keys []item
	for _, ref := range refs {
		if _, ok := out[ref]; !ok {
			out[ref] = 0
			keys = append(keys, at(ref))
		}
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	for ref := range out {
		if out[ref], err = countIn(got[keyString(at(ref))]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RenumberBuilds moves the stored builds of o.Moved to their new ordinals,
// each read fresh and written on its version (see moveBuilds); one already
// there (a resumed import's) is left as it is.
func (s *Store) RenumberBuilds(ctx context.Context, o *Ordinals) error {
	to := make(map[int64]Placement, len(o.Moved))
	keys := make([]item, len(o.Moved))
	for i, m := range o.Moved {
		to[m.ID], keys[i] = m, jobKey(m.ID)
	}
	_, err := inBatches(ctx, keys, 100, 16, nil, func(ctx context.Context, keys []item) (int, error) {
		return s.moveBuilds(ctx, keys, o.Shards, func(j *jobs.Job) bool {
			m := to[j.ID]
			if j.Ordinal == m.Ordinal && j.RefOrdinal == m.RefOrdinal {
				return false
			}
			j.Ordinal, j.RefOrdinal = m.Ordinal, m.RefOrdinal
			return true
		})
	})
	return err
}

// moveImported rewrites o's new and renumbered builds under shards' keys.
func (s *Store) moveImported(ctx context.Context, o *Ordinals, shards int) error {
	keys := make([]item, 0, len(o.IDs)+len(o.Moved))
	for _, id := range o.IDs {
		keys = append(keys, jobKey(id))
	}
	for _, m := range o.Moved {
		keys = append(keys, jobKey(m.ID))
	}
	_, err := inBatches(ctx, keys, 100, 16, nil, func(ctx context.Context, keys []item) (int, error) {
		return s.moveBuilds(ctx, keys, shards, func(*jobs.Job) bool { return true })
	})
	return err
}

// CountBuilds sets a project's build count, highest build id and its refs'
// build counts as o planned, once its builds are written. Each is
// conditional on the count as o read it (or already as planned: a resumed
// import's), so a build created meanwhile, which took an ordinal
// the import gave too, fails the import instead of being overwritten. The
// project's leased ids (ie) are dropped: its next build leases new ones,
// above the counter and so above every imported id. Builds written under
// a shard count a reshard has changed since the plan move to the new one.
func (s *Store) CountBuilds(ctx context.Context, pid int64, o *Ordinals) error {
	if len(o.IDs) == 0 {
		return nil
	}
	// Ref counts are written where the project keeps them now, which a
	// reshard since the plan may have changed (their values it does not):
	// each write checks that it still does.
	res, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: projectKey(pid),
		UpdateExpression:    aws.String("SET nb = :new, mx = :mx REMOVE ie"),
		ConditionExpression: aws.String("(nb = :old OR nb = :new) AND (attribute_not_exists(ra) OR ra <> :moving)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":new": num(o.Builds), ":old": num(o.OldBuilds), ":mx": num(o.MaxID),
			":moving": num(refsMoving)},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		var p jobs.Project
		if unmarshal(failed.Item, &p) == nil && p.RefCounts == refsMoving {
			return fmt.Errorf("project %d: a reshard is moving its ref counts: run jobsctl reshard again, then resume the import", pid)
		}
	}
	if err := builtMeanwhile(err, pid, "project"); err != nil {
		return err
	}
	var p jobs.Project
	if err := unmarshal(res.Attributes, &p); err != nil {
		return err
	}
	if shards := shardsOf(&p); shards != o.Shards {
		// A reshard since the plan: every write of the import is done, so
		// either this reads its count and moves the builds written under
		// the plan's, or the reshard set it later and its scan finds them.
		if err := s.moveImported(ctx, o, shards); err != nil {
			return err
		}
	}
	if err := s.addRanks(ctx, pid, o); err != nil {
		return err
	}
	keeps := &types.ConditionCheck{TableName: aws.String(s.table), Key: projectKey(pid),
		ConditionExpression: aws.String("attribute_not_exists(ra)")}
	if p.RefCounts == refsApart {
		keeps.ConditionExpression = aws.String("ra = :apart")
		keeps.ExpressionAttributeValues = map[string]types.AttributeValue{":apart": num(refsApart)}
	}
	refs := slices.Sorted(maps.Keys(o.Refs))
	_, err = inBatches(ctx, refs, 1, 16, nil, func(ctx context.Context, refs []string) (int, error) {
		ref, c := refs[0], o.Refs[refs[0]]
		writes := []types.TransactWriteItem{{ConditionCheck: keeps}}
		cond := "n = :old OR n = :new"
		if c.Old == 0 {
			cond = "attribute_not_exists(n) OR n = :old OR n = :new"
		}
		at := refEntryKey(pid, ref)
		if p.RefCounts == refsApart {
			// The entry lists the ref (countedRefs); its count is apart.
			writes = append(writes, types.TransactWriteItem{Update: s.leaveEntry(pid, ref, 0)})
			at = refCountKey(pid, ref)
		}
		writes = append(writes, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: at,
			UpdateExpression:          aws.String("SET n = :new"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeValues: map[string]types.AttributeValue{":new": num(c.New), ":old": num(c.Old)},
		}})
		err := outlasting(ctx, func() error {
			_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
			return err
		})
		var canceled *types.TransactionCanceledException
		if errors.As(err, &canceled) && len(canceled.CancellationReasons) > 0 &&
			aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
			return 0, fmt.Errorf("project %d: a reshard moved its ref counts during the import: resume it once the reshard is done", pid)
		}
		return 1, builtMeanwhile(err, pid, "ref "+ref)
	})
	return err
}

// addRanks adds o's new completed builds to the rank counts: one update
// per count item, made on the condition that it does not record this
// import's mark (ir: a hash of what it adds), so that an import resumed
// after a crash adds them once.
func (s *Store) addRanks(ctx context.Context, pid int64, o *Ordinals) error {
	moves := make([]rankMove, len(o.Ranks))
	for i, r := range o.Ranks {
		moves[i] = rankMove{r.Ref, r.Status, r.Slot, r.ID, r.Bits}
	}
	_, err := inBatches(ctx, byRankItem(pid, moves), 1, 16, nil, func(ctx context.Context, items [][]rankMove) (int, error) {
		moves := items[0]
		u := s.rankUpdate(pid, moves)
		mark := fnv.New64a()
		for _, m := range moves {
			mark.Write(binary.AppendVarint(binary.AppendVarint(binary.AppendVarint(nil, m.slot), m.id), m.d))
		}
		u.ExpressionAttributeNames["#ir"] = "ir"
		u.ExpressionAttributeValues[":run"] = str(strconv.FormatUint(mark.Sum64(), 16))
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: u.TableName, Key: u.Key,
			UpdateExpression:         aws.String(*u.UpdateExpression + ", #ir = :run"),
			ConditionExpression:      aws.String("attribute_not_exists(#ir) OR #ir <> :run"),
			ExpressionAttributeNames: u.ExpressionAttributeNames, ExpressionAttributeValues: u.ExpressionAttributeValues,
		})
		var failed *types.ConditionalCheckFailedException
		if errors.As(err, &failed) {
			return 1, nil // added before the import was interrupted
		}
		if err != nil {
			return 0, fmt.Errorf("rank counts of project %d: %w", pid, err)
		}
		return 1, nil
	})
	return err
}

// builtMeanwhile names a failed condition on a count the import moves on
// (its write or transaction's), not a transaction that only met others in
// flight past its attempts (transient).
func builtMeanwhile(err error, pid int64, what string) error {
	var failed *types.ConditionalCheckFailedException
	var canceled *types.TransactionCanceledException
	if errors.As(err, &failed) || (errors.As(err, &canceled) && !transient(err)) {
		return fmt.Errorf("project %d: %s gained builds during the import, whose ordinals it gave too: import again: %w", pid, what, ErrConflict)
	}
	return err
}

// ImportPipeline writes pipeline p's document and adds delta, the job
// counts of the jobs an import writes, to its counts: one UpdateItem that
// sets only what the import owns and adds to the counts (actions change
// only those), so a concurrent action's change is kept. A new pipeline is
// created with delta as its counts; on a stored one delta is added. mark
// names the jobs delta counts (the import's hash of their ids): the write
// records it (ir) and is made on the condition that it is not recorded
// yet, so that an import resumed after a crash adds them once, and a later
// import, of other jobs, adds its own.
func (s *Store) ImportPipeline(ctx context.Context, p *jobs.Pipeline, delta map[string]int64, mark uint64) error {
	it, err := marshal(p)
	if err != nil {
		return err
	}
	delete(it, "n")
	if len(delta) == 0 {
		return s.upsertKeeping(ctx, pipelineKey(p.ID), it, "n", &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}})
	}
	run := strconv.FormatUint(mark, 16)
	it["ir"] = str(run)
	sets, names, values := setsOf(it)
	counts := make(map[string]types.AttributeValue, len(delta))
	for k, n := range delta {
		counts[k] = num(n)
	}
	values[":counts"] = &types.AttributeValueMemberM{Value: counts}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: pipelineKey(p.ID),
		UpdateExpression:         aws.String("SET " + strings.Join(append(sets, "n = :counts"), ", ")),
		ConditionExpression:      aws.String("attribute_not_exists(PK)"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		return err
	}
	add := s.countsUpdate(p.ID, delta)
	delete(values, ":counts")
	maps.Copy(names, add.ExpressionAttributeNames)
	maps.Copy(values, add.ExpressionAttributeValues)
	values[":run"] = str(run)
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: pipelineKey(p.ID),
		UpdateExpression: aws.String("SET " + strings.Join(sets, ", ") + " " + *add.UpdateExpression),
		// Not countsUpdate's condition: a pipeline without counts fails the
		// ADD with an error, never passes for one counted already.
		ConditionExpression:      aws.String("attribute_not_exists(ir) OR ir <> :run"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	if errors.As(err, &failed) {
		return nil // this import added its counts before it was interrupted
	}
	if err != nil {
		return fmt.Errorf("count jobs of pipeline %d: %w", p.ID, err)
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
		out[keyNumber(it["PK"], "J#")] = true
	}
	return out, nil
}

// readKeys reads the projected attributes of keys with BatchGetItem, 100
// keys a call, batchCalls at a time, outlasting throttling: a
// call that fails for it is made again whole (its keys read twice at most
// add duplicates, which callers collect by key).
func (s *Store) readKeys(ctx context.Context, keys []item, projection string) ([]item, error) {
	var (
		mu  sync.Mutex
		out []item
	)
	_, err := inBatches(ctx, keys, 100, s.batchCalls(), nil, func(ctx context.Context, keys []item) (int, error) {
		for attempt := 0; ; attempt++ {
			got, err := s.batchGetKeys(ctx, types.KeysAndAttributes{Keys: keys,
				ProjectionExpression: aws.String(projection), ConsistentRead: aws.Bool(true)})
			if err != nil && transient(err) && attempt < 10 {
				if err := backoff(ctx, attempt); err != nil {
					return 0, err
				}
				continue
			}
			if err != nil {
				return 0, err
			}
			mu.Lock()
			out = append(out, got...)
			mu.Unlock()
			return len(keys), nil
		}
	})
	return out, err
}

// RaiseJobCounter moves the job id counter up to at least n, so that ids
// leased from then on lie above every imported one. It returns the highest
// id that may have been leased before and not used yet (a Store's block,
// a project's kept ids): the counter as it was, or n when it was there
// already. A job the import writes at or below it may find that id taken
// by an action meanwhile, so NewWriter writes those only where no action's
// job is.
func (s *Store) RaiseJobCounter(ctx context.Context, n int64) (leased int64, err error) {
	if n == 0 {
		return 0, nil
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: counterKey(),
		UpdateExpression:          aws.String("SET n = :n"),
		ConditionExpression:       aws.String("attribute_not_exists(n) OR n < :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n)},
		ReturnValues:              types.ReturnValueUpdatedOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	if v, ok := out.Attributes["n"].(*types.AttributeValueMemberN); ok {
		return strconv.ParseInt(v.Value, 10, 64)
	}
	return 0, nil // no counter yet: nothing leased
}

// queryAll reads every job of one index partition (Reshard).
func (s *Store) queryAll(ctx context.Context, part partition) ([]*jobs.Job, error) {
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(part.index),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": part.pkAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(part.pk)},
	}
	var out []*jobs.Job
	err := s.queryEach(ctx, in, func(it item) error {
		j, err := decodeJob(it)
		out = append(out, j)
		return err
	})
	return out, err
}

// queryEach reads every page of in, handing each item to each, and stops
// at each's first error.
func (s *Store) queryEach(ctx context.Context, in *dynamodb.QueryInput, each func(item) error) error {
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		res, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, it := range res.Items {
			if err := each(it); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) writeAll(ctx context.Context, items []item) error {
	w := s.NewWriter(ctx, 0)
	for _, it := range items {
		w.put(it)
	}
	return w.Wait()
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

// batchesInFlight is how many BatchWriteItem or BatchGetItem calls a
// Writer or an existence check keeps going (an import runs two Writers)
// unless SetImportCalls says otherwise: DynamoDB Local, whose SQLite store
// serializes writes, imported fastest at two to four (BENCHMARKS.md), and
// few calls back off quickly when DynamoDB throttles.
const batchesInFlight = 4

// SetImportCalls makes n (> 0) the batch calls an import's Writer or
// existence check keeps going, for DynamoDB itself, whose partitions take
// more at once than DynamoDB Local does (jobsctl import -calls). Call it
// before the import starts.
func (s *Store) SetImportCalls(n int) { s.importCalls = n }

func (s *Store) batchCalls() int {
	if s.importCalls > 0 {
		return s.importCalls
	}
	return batchesInFlight
}

// Writer writes items with BatchWriteItem, 25 a call, batchCalls calls at
// a time, backing off when DynamoDB leaves items unprocessed (its answer
// to throttling within a batch); several goroutines may queue items. Each
// item is a whole put: an import's items are final when written, so a
// write repeated after a crash writes the same item.
type Writer struct {
	s       *Store
	ctx     context.Context
	g       *errgroup.Group
	leased  int64 // jobs up to this id are written one by one (see RaiseJobCounter)
	mu      sync.Mutex
	pending []item
}

// NewWriter starts a writer; Wait flushes it. Jobs of ids up to leased
// (RaiseJobCounter's) are each one conditional PutItem, since
// BatchWriteItem cannot be conditional: one whose id an action's job took
// meanwhile (it carries a write token) is not replaced, and Wait returns
// ErrConflict naming it.
func (s *Store) NewWriter(ctx context.Context, leased int64) *Writer {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.batchCalls())
	return &Writer{s: s, ctx: ctx, g: g, leased: leased}
}

// PutJob queues job j of a project with shards build index shards.
func (w *Writer) PutJob(j *jobs.Job, shards int) error {
	it, err := jobItem(j, shards)
	if err != nil {
		return err
	}
	if j.ID <= w.leased {
		w.g.Go(func() error { return w.s.putImportedJob(w.ctx, j.ID, it) })
		return nil
	}
	w.put(it)
	return nil
}

// putImportedJob writes the item of imported job id unless a job that an
// action wrote is there: one imported before (by this import before a
// crash, or another) is replaced, as a batch put would.
func (s *Store) putImportedJob(ctx context.Context, id int64, it item) error {
	for attempt := 0; ; attempt++ {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table), Item: it,
			ConditionExpression:      aws.String("attribute_not_exists(PK) OR attribute_not_exists(#wt)"),
			ExpressionAttributeNames: map[string]string{"#wt": writeTokenAttr},
		})
		var failed *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &failed):
			return fmt.Errorf("job %d: a job created during the import took its id (the import leaves that job as it is; "+
				"import again to write the others): %w", id, ErrConflict)
		case err != nil && transient(err) && attempt < 10:
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("put job %d: %w", id, err)
		default:
			return nil
		}
	}
}

// PutToken queues a token (see Store.PutToken).
func (w *Writer) PutToken(t *jobs.Token) error {
	it, err := marshal(t)
	if err != nil {
		return err
	}
	w.put(withKey(it, tokenKey(t.Hash)))
	return nil
}

func (w *Writer) put(it item) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending = append(w.pending, it); len(w.pending) == 25 {
		w.send()
	}
}

// send starts writing what is pending; w.mu is held (a caller waits there
// while batchCalls calls are under way).
func (w *Writer) send() {
	batch := w.pending
	w.pending = nil
	w.g.Go(func() error { return w.s.batchWrite(w.ctx, batch) })
}

// Wait writes what is queued and waits until everything is written.
func (w *Writer) Wait() error {
	w.mu.Lock()
	if len(w.pending) > 0 {
		w.send()
	}
	w.mu.Unlock()
	return w.g.Wait()
}

func (s *Store) batchWrite(ctx context.Context, batch []item) error {
	reqs := make([]types.WriteRequest, len(batch))
	for i, it := range batch {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
	}
	return s.writeRequests(ctx, reqs)
}

// writeRequests sends up to 25 puts and deletes in one BatchWriteItem, and
// again what DynamoDB leaves unprocessed or fails transiently, after a
// backoff.
func (s *Store) writeRequests(ctx context.Context, reqs []types.WriteRequest) error {
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

// outlasting calls f until it does not fail transiently, with a backoff
// between calls, 11 calls at most: a write the SDK's few attempts gave up
// on (an operator's command, which has time to wait).
func outlasting(ctx context.Context, f func() error) error {
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || !transient(err) || attempt == 10 {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// transient errors are those an import outlasts by waiting: throttling
// and transactions in flight on an item (a live project's) that the SDK's
// few attempts did not outlast, a transaction canceled for nothing else
// (the import's own run 16 at a time, each checking the project item), and
// calls that timed out (a busy DynamoDB Local does).
func transient(err error) bool {
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		waited := false
		for _, r := range canceled.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "None":
			case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
				waited = true
			default:
				return false
			}
		}
		return waited
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "TransactionConflictException":
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
