package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// maxAttempts bounds how often Apply re-reads and writes again after losing
// a race; past it the request gets GitLab's 409 (ErrConflict).
const maxAttempts = 25

// staleAfter is the longest pause after a lost race after which Apply still
// writes again from what the lost writes returned, without reading them.
const staleAfter = 5 * time.Millisecond

// Apply runs a job action and writes its transition so that it applies to
// the job exactly as it was read: the job is written whole (jobItem, so its
// index keys follow its status and retried flag) on the condition that its
// version is unchanged, together with the pipeline count change.
//
// A retry creates a job in the same TransactWriteItems: the new job (only if
// its id is free), the project's build count moved from its value as read
// to the new build's ordinal with its highest build id (and the ids it
// leased, see newID) on the same shard count, its ref's build count moved
// likewise to the new build's ref ordinal, and the old job marked retried
// on its version. The id comes from ids leased beforehand (an UpdateItem
// ADD on the counter, without condition, once per idBlock ids), so creations
// in different projects never conflict; in one project they race for the
// build count, which keeps ordinals dense and ids growing with them. One
// transaction rather than a sequence of idempotent steps, because nothing of
// a half-done retry may show: no job without its ordinals, no job retried
// twice. When the transaction loses a race (a condition failed or DynamoDB
// saw a conflicting transaction), Apply asks the action again of the job,
// the project and the ref's count as they now are: as the failed writes
// returned them (DynamoDB returns an item whose condition failed; a
// conflicting transaction returns nothing and the rest is as read), or,
// when they do not tell or its pause was long, re-read in one BatchGetItem.
// Contention on a build count just tries again, while a job that someone
// else retried meanwhile is no longer retryable, so the action answers
// ErrNotRetryable. In a busy project a creation queues instead, and the
// project's combiner writes it in one transaction with others (combine.go):
// the same writes, the same conditions.
//
// Apply returns the job the request should show: the created job if any,
// else the job as it now is.
//
// Errors: the action's own (jobs.ErrNotRetryable, ...), ErrConflict after
// maxAttempts lost races, ErrNotFound when the job is gone on a re-read.
//
// Every write of the job carries a token of this call (attribute wt), and a
// transaction the same token as its ClientRequestToken: when DynamoDB
// applied a write whose answer was lost, the SDK's retry of a transaction
// is recognised by DynamoDB as a repeat, and a retried PutItem that fails
// its condition is recognised here, on the re-read, as this call's own
// write (the job carries its token): the call succeeds instead of asking
// the action again of the job it already changed.
func (s *Store) Apply(ctx context.Context, p *jobs.Project, j *jobs.Job, act jobs.Action) (*jobs.Job, error) {
	return s.ApplyOnce(ctx, p, j, act, Once{})
}

// ApplyOnce is Apply that also writes once's record, naming the job shown,
// in the same transaction: the action and its record happen together or
// not at all. When a concurrent request with the same key wrote its record
// first, ApplyOnce shows that request's job instead of acting.
func (s *Store) ApplyOnce(ctx context.Context, p *jobs.Project, j *jobs.Job, act jobs.Action, once Once) (*jobs.Job, error) {
	cur, proj := j, p
	token := writeToken()
	var counts *creation // nil until read
	fresh := false       // the project's next id was taken: lease new ones
	for attempt := 1; ; attempt++ {
		t, err := act(cur)
		if err != nil || (t.Job == nil && t.Created == nil) {
			return cur, err
		}
		var lost error // how the attempt lost: a *lostRace, or errRequestLost
		if c := t.Created; c != nil && c.Kind != jobs.Bridge && s.busyProject(proj, attempt) {
			// The project is busy: queue for its combiner (combine.go).
			// A lost request tells nothing, so the job is read again.
			shownJob, err := s.queued(ctx, proj, placing{cur, t, token, once})
			if !errors.Is(err, errRequestLost) {
				return shownJob, err
			}
			lost = err
		} else {
			shownJob, err := s.writeDirect(ctx, proj, placing{cur, t, token, once}, attempt, &counts, &fresh)
			if !errors.Is(err, ErrConflict) {
				return shownJob, err
			}
			lost = err
		}
		if attempt == maxAttempts {
			return nil, fmt.Errorf("job %d: %d attempts lost: %w", j.ID, attempt, ErrConflict)
		}
		// Full jitter, 5 ms doubling to 320 ms: writers racing for one
		// project's build count spread out instead of colliding again
		// (BenchmarkCreations/one-project: 16 writers lost 9 attempts a
		// retry and 6-9% ran out of them with 5 ms steps to 40 ms), and
		// maxAttempts of them stay within the function's 10 s.
		wait := time.Duration(rand.Int64N(int64(5 * time.Millisecond << min(attempt-1, 6))))
		if err := pause(ctx, wait); err != nil {
			return nil, err
		}
		// What changed is what the lost writes returned, when they tell
		// (every other item is as this attempt read it) and the pause was
		// short, else read again: after a longer one, what they returned
		// has likely changed again, and the next attempt would lose for it
		// (BenchmarkCreations/one-project: 7% of the retries ran out of
		// attempts without this).
		var l *lostRace
		if !errors.As(lost, &l) || wait > staleAfter {
			l = &lostRace{} // tells nothing
		}
		got, known := l.now, false
		if counts, known = l.counts(proj, t.Created, counts); !known {
			keys := []item{jobKey(j.ID), projectKey(p.ID)}
			if once.Key != "" {
				keys = append(keys, onceKey(once.Key))
			}
			if got, counts, err = s.reread(ctx, keys, proj, t.Created); err != nil {
				return nil, err
			}
		}
		if it, ok := got[keyString(jobKey(j.ID))]; ok || !known {
			if it == nil {
				return nil, ErrNotFound
			}
			if written, ok := it[writeTokenAttr].(*types.AttributeValueMemberS); ok && written.Value == token {
				return shown(t), nil
			}
			if cur, err = decodeJob(it); err != nil {
				return nil, err
			}
		}
		if it, ok := got[keyString(onceKey(once.Key))]; ok && it != nil && once.Key != "" {
			d, err := decodeDone(it)
			if err != nil {
				return nil, err
			}
			if d.Live(once.At) {
				return s.doneJob(ctx, d)
			}
		}
		if it, ok := got[keyString(projectKey(p.ID))]; ok && it != nil {
			proj = &jobs.Project{}
			if err := unmarshal(it, proj); err != nil {
				return nil, err
			}
		}
	}
}

// writeDirect is one attempt of ApplyOnce to write b itself, in one
// transaction (or PutItem), that of the attempt-th try: counts are the
// creation's counts as read (read here when nil), fresh asks for new ids
// (and is set when the transaction lost for an id an import holds). A lost
// race is ErrConflict.
func (s *Store) writeDirect(ctx context.Context, proj *jobs.Project, b placing, attempt int, counts **creation, fresh *bool) (*jobs.Job, error) {
	t := b.t
	var lease [2]int64
	var refs map[string]refCount
	if c := t.Created; c != nil {
		if *counts == nil {
			var err error
			if *counts, err = s.creationCounts(ctx, proj, c); err != nil {
				return nil, err
			}
		}
		var err error
		if c.ID, lease, err = s.newID(ctx, proj, c, *fresh); err != nil {
			return nil, err
		}
		if hasRef(c) {
			refs = map[string]refCount{c.Ref: (*counts).ref}
		}
	}
	ops, err := s.transitionWrites(proj, refs, []placing{b}, lease, combinerHold{now: time.Now()})
	if err != nil {
		return nil, err
	}
	err = s.writeOps(ctx, ops, fmt.Sprintf("%s-%d", b.token, attempt))
	if err == nil {
		if c := t.Created; c != nil && hasRef(c) {
			s.warm.builds.put(listOf{proj.ID, c.Ref}, buildsHint{count: c.RefOrdinal})
		}
		return shown(t), nil
	}
	if errors.Is(err, ErrConflict) && t.Created != nil {
		// The transaction did not happen: its leased ids are unused, but
		// for a taken one.
		if *fresh = errors.Is(err, errIDTaken); *fresh {
			lease[0] = t.Created.ID + 1
		}
		s.giveBack(lease[0], lease[1])
	}
	return nil, err
}

// doneJob is the job a Once record names, as it now is.
func (s *Store) doneJob(ctx context.Context, d *Done) (*jobs.Job, error) {
	f, err := s.Lookup(ctx, Lookup{JobID: d.JobID})
	if err != nil {
		return nil, err
	}
	if f.Job == nil {
		return nil, ErrNotFound
	}
	return f.Job, nil
}

// shown is the job a request shows after t: the created job if any.
func shown(t jobs.Transition) *jobs.Job {
	if t.Created != nil {
		return t.Created
	}
	return t.Job
}

// writeTokenAttr is the job item's attribute naming the Apply call that
// wrote it last.
const writeTokenAttr = "wt"

// writeToken is a fresh token for one Apply call: 32 hex digits, so that
// with an attempt suffix it fits ClientRequestToken's 36 characters.
func writeToken() string {
	return fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
}

// pause waits d, or less if the request's time runs out first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff waits before the attempt+1st try of what DynamoDB left
// unprocessed: full jitter, 50 ms doubling up to 5 s. (Throttled and
// failed calls are retried by the SDK's own retryer, config's.)
func backoff(ctx context.Context, attempt int) error {
	ceiling := 50 * time.Millisecond << min(attempt, 7)
	return pause(ctx, time.Duration(rand.Int64N(int64(min(ceiling, 5*time.Second))+1)))
}

type counterItem struct {
	N int64 `db:"n"`
}

// creation is what a creating transaction moves on from its value as read:
// the build count of the new build's ref.
type creation struct{ ref refCount }

// reread reads keys, and for creating job c of project p (nil: none) the
// counts it moves, in one strongly consistent BatchGetItem. The counts are
// where the project keeps them as read with keys, if they hold it, else as
// p says (a project keeping them apart never keeps them together again).
func (s *Store) reread(ctx context.Context, keys []item, p *jobs.Project, c *jobs.Job) (map[string]item, *creation, error) {
	ref := c != nil && hasRef(c)
	if ref {
		keys = append(keys, refCountKey(p.ID, c.Ref))
		if p.RefCounts != refsApart {
			keys = append(keys, refEntryKey(p.ID, c.Ref))
		}
	}
	if len(keys) == 0 {
		return nil, &creation{}, nil
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil || c == nil {
		return got, nil, err
	}
	if !ref {
		return got, &creation{}, nil
	}
	mode := p.RefCounts
	if it, ok := got[keyString(projectKey(p.ID))]; ok {
		var fresh jobs.Project
		if err := unmarshal(it, &fresh); err != nil {
			return nil, nil, err
		}
		mode = fresh.RefCounts
	}
	entry, err := countIn(got[keyString(refEntryKey(p.ID, c.Ref))])
	if err != nil {
		return nil, nil, err
	}
	count, err := countIn(got[keyString(refCountKey(p.ID, c.Ref))])
	return got, &creation{refCountOf(mode, entry, count)}, err
}

// creationCounts are the counts creating c moves on as the warm cache has
// them (the request's lookup read them fresh with Lookup.JobRef, or a
// creation here wrote them), else as read now. A cached count that is no
// longer right only loses the creating transaction's condition, after
// which Apply reads them fresh; so does one cached before a reshard moved
// it (the value moves unchanged). While the counts move, where one is is
// read.
func (s *Store) creationCounts(ctx context.Context, p *jobs.Project, c *jobs.Job) (*creation, error) {
	if !hasRef(c) {
		return &creation{}, nil
	}
	if h, ok := s.warm.builds.get(listOf{p.ID, c.Ref}); ok && p.RefCounts != refsMoving {
		return &creation{refCount{n: h.count, apart: p.RefCounts == refsApart && h.count > 0}}, nil
	}
	_, counts, err := s.reread(ctx, nil, p, c)
	return counts, err
}

// moveCount is the write moving the count n of item k from old (0: the
// item or its n may not exist yet) to new, on the condition that it is
// still old.
func (s *Store) moveCount(k item, old, new int64) *types.Update {
	u := &types.Update{
		TableName: aws.String(s.table), Key: k,
		UpdateExpression:          aws.String("SET n = :new"),
		ConditionExpression:       aws.String("attribute_not_exists(n)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":new": num(new)},
	}
	if old > 0 {
		u.ConditionExpression = aws.String("n = :old")
		u.ExpressionAttributeValues[":old"] = num(old)
	}
	return u
}

// op is one write of a transition and what its failed condition means.
type op struct {
	w     types.TransactWriteItem
	race  bool // a failed condition means another writer came first
	taken bool // a failed condition means the new job's id is taken
}

// errIDTaken is a lost race for a new job's id: an imported job holds it.
var errIDTaken = fmt.Errorf("job id taken: %w", ErrConflict)

// lostRace is a write that lost a race: ErrConflict, or errIDTaken when
// the new job's id is taken. now holds, by keyString, each item whose
// write's condition failed as it is now (nil: there is none), which
// DynamoDB returns with the failure at no cost, and every other item is as
// the write read it (a conflicting transaction in flight changes nothing
// that is known); whole is false for a lost race that tells nothing.
type lostRace struct {
	taken bool
	now   map[string]item
	whole bool
}

func (l *lostRace) Unwrap() error {
	if l.taken {
		return errIDTaken
	}
	return ErrConflict
}

func (l *lostRace) Error() string { return l.Unwrap().Error() }

// counts is what creating c (nil: nothing) in project p, as the lost
// attempt had them, moves on after l: counts, unless l returned the ref's
// count. known is false when l does not tell (the ref's count may have
// changed places: p keeps counts moving, or l returned the project keeping
// them otherwise) and Apply reads again.
func (l *lostRace) counts(p *jobs.Project, c *jobs.Job, counts *creation) (_ *creation, known bool) {
	if !l.whole {
		return counts, false
	}
	if it := l.now[keyString(projectKey(p.ID))]; it != nil {
		var now jobs.Project
		if unmarshal(it, &now) != nil || now.RefCounts != p.RefCounts {
			return counts, false
		}
	}
	if c == nil || !hasRef(c) {
		return counts, true
	}
	entry, inEntry := l.now[keyString(refEntryKey(p.ID, c.Ref))]
	count, inItem := l.now[keyString(refCountKey(p.ID, c.Ref))]
	if p.RefCounts == refsMoving || (inEntry && p.RefCounts == refsApart) {
		return counts, false
	}
	var n int64
	var err error
	switch {
	case inEntry: // together
		n, err = countIn(entry)
	case inItem: // apart
		n, err = countIn(count)
	default:
		return counts, true
	}
	return &creation{refCount{n: n, apart: inItem && n > 0}}, err == nil
}

// placing is one action's transition to write: t, asked of cur as read,
// by the call of token, with once's record (zero: none).
type placing struct {
	cur   *jobs.Job
	t     jobs.Transition
	token string
	once  Once
}

// transitionWrites are the writes of the transitions batch in project p as
// read (see Apply): one transaction, each item written once. refs are the
// ref counts the creations move on, as read; lease is the block of ids the
// created jobs' ids came from, if new (they are set, growing in batch
// order). Builds created take the next ordinals in batch order.
// hold is the combiner that writes the batch (see combine.go), or none:
// then the project's write requires that no combiner's lease is live.
func (s *Store) transitionWrites(p *jobs.Project, refs map[string]refCount, batch []placing, lease [2]int64, hold combinerHold) ([]op, error) {
	shards := shardsOf(p)
	var ops []op
	var moves []rankMove
	deltas := map[int64]map[string]int64{}
	addDelta := func(pl int64, d map[string]int64) {
		if deltas[pl] == nil {
			deltas[pl] = map[string]int64{}
		}
		for k, v := range d {
			deltas[pl][k] += v
		}
	}
	builds, maxID := p.Builds, int64(0)
	refOrdinals := map[string]int64{}
	for _, b := range batch {
		cur, t := b.cur, b.t
		if t.Job != nil {
			t.Job.Version = cur.Version + 1
			it, err := jobItem(t.Job, shards)
			if err != nil {
				return nil, err
			}
			it[writeTokenAttr] = str(b.token)
			ops = append(ops, op{race: true, w: types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(s.table), Item: it,
				ConditionExpression:       aws.String("#v = :v"),
				ExpressionAttributeNames:  map[string]string{"#v": "v"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": num(cur.Version)},
			}}})
			addDelta(cur.PipelineID, countDelta(cur, t.Job))
			moves = append(moves, rankMoves(cur, t.Job)...)
		}
		if c := t.Created; c != nil {
			c.Version = 1
			if c.Kind != jobs.Bridge {
				builds++
				c.Ordinal, maxID = builds, c.ID
			}
			c.RefOrdinal = 0
			if hasRef(c) {
				// The same pipeline, so the same ref: its count moves on too.
				if _, ok := refOrdinals[c.Ref]; !ok {
					refOrdinals[c.Ref] = refs[c.Ref].n
				}
				refOrdinals[c.Ref]++
				c.RefOrdinal = refOrdinals[c.Ref]
			}
			it, err := jobItem(c, shards)
			if err != nil {
				return nil, err
			}
			// An import never replaces a job that carries a token (Writer).
			it[writeTokenAttr] = str(b.token)
			ops = append(ops, op{race: true, taken: true, w: types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(s.table), Item: it, ConditionExpression: aws.String("attribute_not_exists(PK)"),
			}}})
			addDelta(c.PipelineID, countDelta(nil, c))
			moves = append(moves, rankMoves(nil, c)...)
		}
		if b.once.Key != "" {
			ops = append(ops, s.onceWrite(b.once, shown(t).ID))
		}
	}
	if builds > p.Builds {
		set := "SET nb = :new, mx = :id"
		values := map[string]types.AttributeValue{
			":new": num(builds), ":old": num(p.Builds), ":id": num(maxID), ":sh": num(int64(shards))}
		if lease[1] > 0 {
			set += ", ie = :end"
			values[":end"] = num(lease[1])
		}
		// The shard count as read: the keys written are its. So is
		// where ref counts are, until a reshard moves them.
		cond := "nb = :old AND (attribute_not_exists(mx) OR mx < :id) AND (attribute_not_exists(sh) OR sh = :sh)"
		if p.RefCounts == refsTogether {
			cond += " AND attribute_not_exists(ra)"
		}
		set, cond = hold.write(set, cond, values)
		ops = append(ops, op{race: true, w: types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: projectKey(p.ID),
			UpdateExpression:    aws.String(set),
			ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
		}}})
	}
	for _, ref := range slices.Sorted(maps.Keys(refOrdinals)) {
		for _, u := range s.refCountWrites(p, ref, refs[ref], refOrdinals[ref]) {
			ops = append(ops, op{race: true, w: types.TransactWriteItem{Update: u}})
		}
	}
	for _, u := range s.rankUpdates(p.ID, moves) {
		ops = append(ops, op{w: types.TransactWriteItem{Update: u}})
	}
	for pl, d := range deltas {
		if u := s.countsUpdate(pl, nonZero(d)); u != nil {
			ops = append(ops, op{w: types.TransactWriteItem{Update: u}})
		}
	}
	return ops, nil
}

func nonZero(d map[string]int64) map[string]int64 {
	for k, v := range d {
		if v == 0 {
			delete(d, k)
		}
	}
	return d
}

// writeOps writes ops atomically: one conditional PutItem when there is
// only one (half the cost of a transaction), else one TransactWriteItems.
// A lost race is a *lostRace (ErrConflict); any other failed condition an
// error. token makes the transaction idempotent for DynamoDB
// (ClientRequestToken).
func (s *Store) writeOps(ctx context.Context, ops []op, token string) error {
	// This container's next page shows the write (others within PageTTL).
	defer s.ForgetPages()
	// A race's write returns its item as it is when its condition fails, so
	// that the loser need not read it again (Apply).
	allOld := types.ReturnValuesOnConditionCheckFailureAllOld
	for _, o := range ops {
		if o.race && o.w.Put != nil {
			o.w.Put.ReturnValuesOnConditionCheckFailure = allOld
		} else if o.race && o.w.Update != nil {
			o.w.Update.ReturnValuesOnConditionCheckFailure = allOld
		}
	}
	if len(ops) == 1 && ops[0].w.Put != nil {
		p := ops[0].w.Put
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
			ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: p.ReturnValuesOnConditionCheckFailure,
		})
		var failed *types.ConditionalCheckFailedException
		var conflict *types.TransactionConflictException
		switch {
		case errors.As(err, &failed):
			return &lostRace{taken: ops[0].taken, now: map[string]item{keyString(p.Item): nilIfEmpty(failed.Item)}, whole: true}
		case errors.As(err, &conflict):
			return &lostRace{whole: true} // nothing is known to have changed
		}
		return err
	}
	items := make([]types.TransactWriteItem, len(ops))
	for i, o := range ops {
		items[i] = o.w
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items, ClientRequestToken: aws.String(token)})
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		return err
	}
	l := &lostRace{now: map[string]item{}, whole: true}
	lost, taken, raced := false, false, false
	for i, r := range canceled.CancellationReasons {
		switch code := aws.ToString(r.Code); {
		case i >= len(ops):
		case code == "TransactionConflict":
			// Another transaction on the item was in flight: nothing this
			// one read is known to have changed, so it is written again as
			// it was. Where the other did change something, a condition
			// fails then and returns it.
			lost, raced = true, true
		case code == "ConditionalCheckFailed" && (ops[i].race || ops[i].taken):
			lost = true
			taken, raced = taken || ops[i].taken, raced || !ops[i].taken
			l.now[keyString(opKey(ops[i].w))] = nilIfEmpty(r.Item)
		}
	}
	if !lost {
		return fmt.Errorf("transaction canceled: %w", err)
	}
	// The id is an import's only when nothing else raced: a creation that
	// won the build count may hold it.
	l.taken = taken && !raced
	return l
}

// opKey is the key of the item w writes.
func opKey(w types.TransactWriteItem) item {
	switch {
	case w.Put != nil:
		return w.Put.Item
	case w.Update != nil:
		return w.Update.Key
	case w.ConditionCheck != nil:
		return w.ConditionCheck.Key
	case w.Delete != nil:
		return w.Delete.Key
	}
	return nil
}

// nilIfEmpty is it, or nil for an item returned empty (there is none).
func nilIfEmpty(it item) item {
	if len(it) == 0 {
		return nil
	}
	return it
}
