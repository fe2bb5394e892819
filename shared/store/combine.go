package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Combined placement. Every creation of a build compare-and-sets its
// project's build count, so one project's creations commit one after
// another, one per transaction's round trip, and racing writers waste most
// of them (BENCHMARKS.md, "Combined placement"). When a project is busy (a
// creation lost queueAfter races, or a combiner's lease is live), a
// creation queues its transition as a request instead, and one container at
// a time, the project's combiner (it holds the lease on the project item,
// cl and ce), places up to combineBatch requests in each transaction: the
// same writes a direct creation makes, each item once, with the build
// count moved on by all of them. Ordinals stay dense and ids grow with
// them, since one writer hands out both in order.
const (
	// queueAfter is how many races a creation loses before it queues.
	queueAfter = 2
	// combineBatch requests at most a transaction: 2 or 3 items each (the
	// retried job, the new one, an idempotency record) and the shared ones;
	// fit cuts a batch to TransactWriteItems' 100.
	combineBatch = 48
	// queueShards spread the requests over partition keys: each is
	// written and deleted once, ≈ 1 WCU each (a request ≈ 0.5 KB).
	queueShards = 16
	// leaseFor is how long a combiner's lease lasts past its last
	// placement; a requester takes over one that ran out.
	leaseFor = 2 * time.Second
	// pollEvery is how soon a queued requester first looks for its answer
	// (see maxPoll), and how long a combiner waits on an empty queue
	// before it looks again.
	pollEvery = 30 * time.Millisecond
)

// errRequestLost is a queued request that was not placed: its job changed
// (another request retried it first), its once record was taken, or its
// time ran out. The caller asks its action again of the job as it now is.
var errRequestLost = fmt.Errorf("queued creation not placed: %w", ErrConflict)

// combinerHold is who writes a project's build count: the combiner of
// token owner, which renews its lease to until, or a direct creation
// (owner ""), which requires that no lease is live at now.
type combinerHold struct {
	owner      string
	now, until time.Time
}

// write adds the hold to the project item's update set and condition.
func (h combinerHold) write(set, cond string, values map[string]types.AttributeValue) (string, string) {
	if h.owner == "" {
		values[":now"] = num(h.now.UnixMilli())
		return set, cond + " AND (attribute_not_exists(ce) OR ce < :now)"
	}
	values[":me"], values[":until"] = str(h.owner), num(h.until.UnixMilli())
	return set + ", ce = :until", cond + " AND cl = :me"
}

// busyProject reports whether a creation in p (as read) on its attempt-th
// try queues for a combiner: it lost queueAfter races, a combiner's lease
// is live, or a creation here queued within the lease's time (the warm
// cache's project may be older than the lease).
func (s *Store) busyProject(p *jobs.Project, attempt int) bool {
	_, recent := s.warm.busy.get(p.ID)
	return attempt > queueAfter || combinerLive(p, time.Now()) || recent
}

// combinerLive reports whether p, as read, has a combiner at now.
func combinerLive(p *jobs.Project, now time.Time) bool {
	return p.Combiner != "" && p.CombinerUntil >= now.UnixMilli()
}

// queuePK is shard h of project p's queue of requests.
func queuePK(p int64, h int) string { return "P#" + id(p) + "#Q#" + strconv.Itoa(h) }

// requestKey is the request of the call of token, queued at: sorted by
// when it was queued, so that the oldest are placed first.
func requestKey(p int64, token string, at time.Time) item {
	f := fnv.New32a()
	f.Write([]byte(token))
	return key(queuePK(p, int(f.Sum32()%queueShards)), fmt.Sprintf("%020d#%s", at.UnixNano(), token))
}

// request is a queued placing, by its key, to be placed before deadline.
type request struct {
	key      item
	b        placing
	deadline time.Time
}

// requestItem is the stored form of r: the retried job as read, and the
// transition's two jobs as what they change of it (a retry sets a flag of
// the one and copies most of the other), none with its index keys, which
// the combiner writes from the jobs. A request then costs about one job's
// units to queue, poll, read and delete, not three.
func requestItem(r *request) (item, error) {
	// DynamoDB's TTL deletes what no combiner answered (its caller gave
	// up), within days; combiners drop it once its deadline passed.
	it := withKey(item{"tok": str(r.b.token), "dl": num(r.deadline.UnixMilli()), "ttl": num(r.deadline.Add(time.Hour).Unix())}, r.key)
	cur, err := requestJob(r.b.cur)
	if err != nil {
		return nil, err
	}
	it["cur"] = &types.AttributeValueMemberM{Value: cur}
	for name, j := range map[string]*jobs.Job{"jd": r.b.t.Job, "nd": r.b.t.Created} {
		if j == nil {
			continue
		}
		m, err := requestJob(j)
		if err != nil {
			return nil, err
		}
		it[name] = &types.AttributeValueMemberM{Value: changes(cur, m)}
	}
	if o := r.b.once; o.Key != "" {
		it["ok"], it["oa"], it["ox"] = str(o.Key), num(o.At.UnixMilli()), num(o.Expires.UnixMilli())
	}
	return it, nil
}

// requestJob is j's item without what only keys or indexes it.
func requestJob(j *jobs.Job) (item, error) {
	it, err := jobItem(j, 1)
	if err != nil {
		return nil, err
	}
	for _, n := range indexOnlyAttrs {
		delete(it, n)
	}
	return it, nil
}

// changes is what it changes of base: the attributes it sets to another
// value, and NULL for those it lacks (decodeJob reads NULL as absent, so
// no job attribute holds it).
func changes(base, it item) item {
	out := item{}
	for n, v := range it {
		if !reflect.DeepEqual(base[n], v) {
			out[n] = v
		}
	}
	for n := range base {
		if _, ok := it[n]; !ok {
			out[n] = &types.AttributeValueMemberNULL{Value: true}
		}
	}
	return out
}

// changed is base with changes made (changes' inverse).
func changed(base, changes item) item {
	out := maps.Clone(base)
	for n, v := range changes {
		if _, null := v.(*types.AttributeValueMemberNULL); null {
			delete(out, n)
		} else {
			out[n] = v
		}
	}
	return out
}

// decodeRequest is the request stored as it.
func decodeRequest(it item) (*request, error) {
	r := &request{key: key(keyAttr(it, "PK"), keyAttr(it, "SK"))}
	r.b.token = keyAttr(it, "tok")
	dl, err := avInt(it["dl"])
	if err != nil {
		return nil, fmt.Errorf("request %v: %w", r.key, err)
	}
	r.deadline = time.UnixMilli(dl)
	cur, ok := it["cur"].(*types.AttributeValueMemberM)
	if !ok {
		return nil, fmt.Errorf("request %v: no job to create", r.key)
	}
	if r.b.cur, err = decodeJob(cur.Value); err != nil {
		return nil, err
	}
	for name, to := range map[string]**jobs.Job{"jd": &r.b.t.Job, "nd": &r.b.t.Created} {
		m, ok := it[name].(*types.AttributeValueMemberM)
		if !ok {
			continue
		}
		if *to, err = decodeJob(changed(cur.Value, m.Value)); err != nil {
			return nil, err
		}
	}
	if r.b.t.Created == nil {
		return nil, fmt.Errorf("request %v: no job to create", r.key)
	}
	if k, ok := it["ok"].(*types.AttributeValueMemberS); ok {
		at, err1 := avInt(it["oa"])
		ex, err2 := avInt(it["ox"])
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		r.b.once = Once{Key: k.Value, At: time.UnixMilli(at), Expires: time.UnixMilli(ex)}
	}
	return r, nil
}

// keyAttr is the string attribute name of it ("" when it is none).
func keyAttr(it item, name string) string {
	s, _ := avString(it[name])
	return s
}

// newJobAttr is the retried job's attribute naming the job a combiner
// created in its place, so that the request's caller can show it.
const newJobAttr = "nj"

// queued places b through project p's combiner: it queues b, and until its
// answer comes (or its time runs out) it looks for it, combining itself
// when the lease is handed to it or has run out. It reads the project item
// only when the lease it knows of has run out, so that waiting requesters
// do not make that item hot. It returns the job created, or
// errRequestLost.
func (s *Store) queued(ctx context.Context, p *jobs.Project, b placing) (*jobs.Job, error) {
	defer s.ForgetPages()
	now := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok || deadline.Sub(now) > maxQueued {
		deadline = now.Add(maxQueued)
	}
	r := &request{key: requestKey(p.ID, b.token, now), b: b, deadline: deadline}
	it, err := requestItem(r)
	if err != nil {
		return nil, err
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it}); err != nil {
		return nil, fmt.Errorf("queue creation: %w", err)
	}
	// The lease as last read, here or by this container's last request:
	// while it lasts, the project item is not read.
	until := p.CombinerUntil
	if u, ok := s.warm.busy.get(p.ID); ok {
		until = max(until, u)
	}
	defer func() { s.warm.busy.put(p.ID, until) }()
	wait, recheck := pollEvery, recheckAfter
	for polls := 0; ; polls++ {
		// The request and the retried job (which tells first that it was
		// placed), and the project too once the lease it knows of ran out
		// (or at a recheck, see recheckAfter).
		keys := []item{r.key, jobKey(b.cur.ID)}
		lease := polls == recheck || time.Now().UnixMilli() > until
		if polls == recheck {
			recheck *= 2
		}
		if lease {
			keys = append(keys, projectKey(p.ID))
		} else if err := pause(ctx, wait); err != nil {
			return nil, err
		} else {
			wait = min(wait*5/4, maxPoll)
		}
		// Eventually consistent, half the units: a stale answer only
		// means another poll (what decides lost or placed is read
		// strongly consistent below, and a lease is taken on a condition).
		got, err := s.batchRead(ctx, keys, false)
		if err != nil {
			return nil, err
		}
		if j, err := s.placedAs(ctx, got[keyString(jobKey(b.cur.ID))], b.token); j != nil || err != nil {
			return j, err
		}
		mine := got[keyString(r.key)]
		if mine == nil {
			// Gone, or not shown yet by an eventually consistent read:
			// read it strongly consistent. Gone, it was answered, placed
			// or lost, and the job (written before the request went, and
			// read after) tells which.
			sure, err := s.batchGet(ctx, []item{r.key})
			if err != nil {
				return nil, err
			}
			if mine = sure[keyString(r.key)]; mine == nil {
				again, err := s.batchGet(ctx, []item{jobKey(b.cur.ID)})
				if err != nil {
					return nil, err
				}
				if j, err := s.placedAs(ctx, again[keyString(jobKey(b.cur.ID))], b.token); j != nil || err != nil {
					return j, err
				}
				return nil, errRequestLost
			}
		}
		_, lead := mine[leadAttr]
		if lease {
			var now jobs.Project
			if pit := got[keyString(projectKey(p.ID))]; pit != nil {
				if err := unmarshal(pit, &now); err != nil {
					return nil, err
				}
			}
			until = now.CombinerUntil
		}
		if lead || lease && time.Now().UnixMilli() > until {
			if err := s.combineAs(ctx, p, r, lead); err != nil {
				return nil, err
			}
			until = 0 // its own request is likely answered: look at once
		}
	}
}

// A requester's polls start pollEvery apart and grow by a quarter each
// time up to maxPoll, so that a long wait costs few reads; and while the
// lease it knows of lasts, it reads the project's after recheckAfter
// polls, then after twice as many, and so on: a combiner that gave up the
// lease as this request was queued leaves it to a requester.
const (
	maxPoll      = 200 * time.Millisecond
	recheckAfter = 10
)

// leadAttr marks the request whose caller a combiner handed its lease to.
const leadAttr = "lead"

// maxQueued bounds how long a request waits to be placed: about a
// function's time (the template's 10 s), after which it is dropped.
const maxQueued = 9 * time.Second

// placedAs is the job created in place of the retried job as stored in it,
// when the call of token retried it (nil otherwise).
func (s *Store) placedAs(ctx context.Context, it item, token string) (*jobs.Job, error) {
	if it == nil || keyAttr(it, writeTokenAttr) != token {
		return nil, nil
	}
	n, err := avInt(it[newJobAttr])
	if err != nil {
		// This call's own direct write, whose answer was lost: once the
		// request is answered lost, ApplyOnce's re-read recognises it.
		return nil, nil
	}
	got, err := s.batchGet(ctx, []item{jobKey(n)})
	if err != nil {
		return nil, err
	}
	nj := got[keyString(jobKey(n))]
	if nj == nil {
		return nil, fmt.Errorf("placed job %d: %w", n, ErrNotFound)
	}
	return decodeJob(nj)
}

// combineAs places project pid's queue as its combiner, for own's caller:
// it takes the lease (held: it was handed over already), and places rounds
// until own is answered and either the queue is empty or it has combined
// for combineFor (its own caller is waiting), or its time nears its end, or
// the lease is lost. Then it hands the lease to the caller of the newest
// request left, or gives it up. A lease someone else took first is no
// error: the caller waits for that combiner.
func (s *Store) combineAs(ctx context.Context, p *jobs.Project, own *request, held bool) error {
	pid := p.ID
	token := own.b.token
	if !held {
		if ok, err := s.takeLease(ctx, pid, token); !ok || err != nil {
			return err
		}
	}
	c := &combiner{s: s, pid: pid, token: token, placed: map[int64]bool{}, mode: p.RefCounts}
	start, idle := time.Now(), 0
	var next *request // whom to hand the lease to
	defer func() { s.handOver(context.WithoutCancel(ctx), pid, token, next) }()
	for round := 1; ; round++ {
		if d, ok := ctx.Deadline(); ok && time.Until(d) < leaseFor/2 {
			return nil
		}
		left, err := c.round(ctx, round)
		if err != nil || c.lost {
			next = nil
			return err
		}
		ownLeft := slices.ContainsFunc(left, func(r *request) bool { return r.b.token == token })
		// The lease goes to the caller of the newest request left: the
		// one that polls most often (the oldest are placed first anyway).
		next = nil
		for i := len(left) - 1; i >= 0 && next == nil; i-- {
			if left[i].b.token != token {
				next = left[i]
			}
		}
		switch {
		case ownLeft:
		case next != nil && time.Since(start) > combineFor:
			return nil
		case next == nil:
			// The queue is empty: wait a moment for requests on their way
			// (their creators saw the lease), then give the lease up and
			// look once more, for a request queued before that.
			if idle++; idle <= lingerRounds {
				if err := pause(ctx, pollEvery); err != nil {
					return err
				}
				continue
			}
			s.handOver(ctx, pid, token, nil)
			if reqs, _, err := s.queuedRequests(ctx, pid); err != nil || len(reqs) == 0 {
				return err
			}
			if ok, err := s.takeLease(ctx, pid, token); !ok || err != nil {
				return err
			}
			start = time.Now()
		}
		if next != nil {
			idle = 0
		}
	}
}

// lingerRounds is how many times pollEvery a combiner waits on an empty
// queue before it gives its lease up.
const lingerRounds = 2

// takeLease takes project pid's combiner lease for token, if no other is
// live; false when another is.
func (s *Store) takeLease(ctx context.Context, pid int64, token string) (bool, error) {
	now := time.Now()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: projectKey(pid),
		UpdateExpression:    aws.String("SET cl = :me, ce = :until"),
		ConditionExpression: aws.String("attribute_exists(PK) AND (attribute_not_exists(ce) OR ce < :now OR cl = :me)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": str(token), ":until": num(now.Add(leaseFor).UnixMilli()), ":now": num(now.UnixMilli())},
	})
	var failed *types.ConditionalCheckFailedException
	var conflict *types.TransactionConflictException
	if errors.As(err, &failed) || errors.As(err, &conflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take combiner lease: %w", err)
	}
	return true, nil
}

// combineFor is how long a combiner whose own request is placed goes on
// placing others' before it hands the lease on: its caller waits for it.
const combineFor = 500 * time.Millisecond

// handOver passes the lease of token's combiner on project pid to the
// caller of request next, marking that request, or gives it up (next nil,
// or that request already answered), so that the next busy moment need not
// wait for it to run out.
func (s *Store) handOver(ctx context.Context, pid int64, token string, next *request) {
	release := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: projectKey(pid),
		UpdateExpression:          aws.String("REMOVE cl, ce"),
		ConditionExpression:       aws.String("cl = :me"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(token)},
	}
	if next != nil {
		release.UpdateExpression = aws.String("SET cl = :next, ce = :until")
		release.ExpressionAttributeValues[":next"] = str(next.b.token)
		release.ExpressionAttributeValues[":until"] = num(time.Now().Add(leaseFor).UnixMilli())
	}
	if _, err := s.db.UpdateItem(ctx, release); err != nil || next == nil {
		return // a lease lost: its holder's, or it runs out
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: next.key,
		UpdateExpression:          aws.String("SET #l = :t"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeNames:  map[string]string{"#l": leadAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	})
	if err != nil {
		// Answered meanwhile: nobody takes the lease over, so give it up.
		s.handOver(ctx, pid, next.b.token, nil)
	}
}

// maxTransactItems is what one TransactWriteItems may write.
const maxTransactItems = 100

// combiner is one lease's placing of a project's queue.
type combiner struct {
	s      *Store
	pid    int64
	token  string
	placed map[int64]bool // retried jobs placed under this lease
	fresh  bool           // the project's next id is an import's: lease new ones
	lost   bool           // the lease is someone else's
	mode   int            // where the project keeps its refs' counts, as last read
	// The project and its refs' counts as the last placement left them
	// (nil: to be read).
	proj *jobs.Project
	refs map[string]refCount
}

// round places the oldest requests of the queue in one transaction and
// returns those it left, oldest first (none: the queue is empty). It sets
// lost when the lease is someone else's.
func (c *combiner) round(ctx context.Context, round int) ([]*request, error) {
	s := c.s
	reqs, unreadable, err := s.queuedRequests(ctx, c.pid)
	if err != nil || len(reqs) == 0 {
		return nil, errors.Join(err, s.deleteRequests(ctx, unreadable))
	}
	now := time.Now()
	var batch []*request
	answered := map[string]bool{} // by request key: placed, or lost
	seen := map[int64]bool{}
	for _, r := range reqs {
		switch {
		case r.deadline.Before(now), c.placed[r.b.cur.ID], seen[r.b.cur.ID]:
			answered[keyString(r.key)] = true // lost: too late, or its job already retried
		case len(batch) < combineBatch:
			seen[r.b.cur.ID] = true
			batch = append(batch, r)
		}
	}
	if len(batch) > 0 {
		if err := c.place(ctx, round, now, batch, answered); err != nil {
			return nil, err
		}
	}
	var left []*request
	done := unreadable
	for _, r := range reqs {
		if answered[keyString(r.key)] {
			done = append(done, r.key)
		} else {
			left = append(left, r)
		}
	}
	return left, s.deleteRequests(ctx, done)
}

// place writes batch in one transaction, and marks in answered the
// requests it placed and those it found lost.
func (c *combiner) place(ctx context.Context, round int, now time.Time, batch []*request, answered map[string]bool) error {
	s := c.s
	p, refs := c.proj, c.refs
	for _, r := range batch {
		if _, ok := refs[r.b.t.Created.Ref]; !ok && hasRef(r.b.t.Created) {
			p = nil // a ref not read yet
		}
	}
	if p == nil {
		var err error
		if p, refs, err = s.placingCounts(ctx, c.pid, batch, c.mode); err != nil {
			return err
		}
		c.mode = p.RefCounts
		if p.Combiner != c.token {
			c.lost = true // the lease is someone else's
			return nil
		}
	}
	// What the combiner wrote is what it reads next: while its lease
	// lasts no other creation moves the counts (an import or a reshard
	// fails this transaction, after which they are read again).
	c.proj, c.refs = nil, nil
	ops, lease, batch, err := c.fit(ctx, p, refs, batch, now)
	if err != nil {
		return err
	}
	c.fresh = false
	// Each retried job names the job created in its place.
	created := map[string]int64{}
	for _, r := range batch {
		created[keyString(jobKey(r.b.cur.ID))] = r.b.t.Created.ID
	}
	for i := range ops {
		if put := ops[i].w.Put; put != nil {
			if n, ok := created[keyString(put.Item)]; ok {
				put.Item[newJobAttr] = num(n)
			}
		}
	}
	// A ClientRequestToken of this round (at most 36 characters), unlike
	// any of the direct writes' (the whole token, "-", the attempt).
	err = s.writeOps(ctx, ops, fmt.Sprintf("%s-%x", c.token[:31], round))
	var l *lostRace
	switch {
	case err == nil:
		for _, r := range batch {
			c.placed[r.b.cur.ID] = true
			answered[keyString(r.key)] = true
			if n := r.b.t.Created; hasRef(n) {
				refs[n.Ref] = refCount{n: n.RefOrdinal, apart: p.RefCounts != refsTogether}
			}
			p.Builds, p.MaxBuildID = r.b.t.Created.Ordinal, r.b.t.Created.ID
		}
		if lease[1] > 0 {
			p.IDsEnd = lease[1]
		}
		c.proj, c.refs = p, refs
		return nil
	case !errors.As(err, &l):
		s.giveBack(lease[0], lease[1])
		return err
	}
	s.giveBack(lease[0], lease[1])
	// A request whose own item failed is answered lost; one whose id an
	// import holds is placed again with new ids.
	for _, r := range batch {
		_, changed := l.now[keyString(jobKey(r.b.cur.ID))]
		_, onceTaken := l.now[keyString(onceKey(r.b.once.Key))]
		if changed || onceTaken && r.b.once.Key != "" {
			answered[keyString(r.key)] = true
		} else if _, taken := l.now[keyString(jobKey(r.b.t.Created.ID))]; taken {
			c.fresh = true
		}
	}
	// Full jitter up to 5 ms doubling: what it lost to is one write.
	return pause(ctx, time.Duration(rand.Int64N(int64(5*time.Millisecond<<min(round-1, 4)))))
}

// fit is the writes of the longest head of batch that one transaction
// takes (those of many pipelines and refs share fewer items; the rest wait
// for a round), that head, and the ids it leased.
func (c *combiner) fit(ctx context.Context, p *jobs.Project, refs map[string]refCount, batch []*request, now time.Time) ([]op, [2]int64, []*request, error) {
	for {
		lease, err := c.ids(ctx, p, batch)
		if err != nil {
			return nil, lease, nil, err
		}
		placings := make([]placing, len(batch))
		for i, r := range batch {
			placings[i] = r.b
		}
		ops, err := c.s.transitionWrites(p, refs, placings, lease, combinerHold{owner: c.token, now: now, until: now.Add(leaseFor)})
		if err != nil || len(ops) <= maxTransactItems || len(batch) == 1 {
			return ops, lease, batch, err
		}
		c.s.giveBack(lease[0], lease[1])
		batch = batch[:len(batch)-1]
	}
}

// ids gives the batch's new builds their ids, growing in batch order above
// the project's builds: from the project's leased ids, then a new block
// (returned: the transaction records it on the project).
func (c *combiner) ids(ctx context.Context, p *jobs.Project, batch []*request) ([2]int64, error) {
	next, end := p.MaxBuildID+1, p.IDsEnd
	if c.fresh {
		end = 0
	}
	var lease [2]int64
	for _, r := range batch {
		if next > end {
			first, last, err := c.s.leaseIDs(ctx, next-1)
			if err != nil {
				return lease, err
			}
			lease = [2]int64{first, last}
			next, end = first, last
		}
		r.b.t.Created.ID = next
		next++
	}
	if lease[1] > 0 {
		lease[0] = next // the rest, given back if the transaction loses
	}
	return lease, nil
}

// placingCounts reads project pid and the counts of the refs that batch
// creates builds of, strongly consistent, in one BatchGetItem.
func (s *Store) placingCounts(ctx context.Context, pid int64, batch []*request, mode int) (*jobs.Project, map[string]refCount, error) {
	keys := []item{projectKey(pid)}
	var refs []string
	for _, r := range batch {
		if c := r.b.t.Created; hasRef(c) && !slices.Contains(refs, c.Ref) {
			refs = append(refs, c.Ref)
			keys = append(keys, refCountKey(pid, c.Ref))
			if mode != refsApart {
				// Entries share the project's partition: read only where
				// they may hold a count.
				keys = append(keys, refEntryKey(pid, c.Ref))
			}
		}
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	pit := got[keyString(projectKey(pid))]
	if pit == nil {
		return nil, nil, fmt.Errorf("project %d: %w", pid, ErrNotFound)
	}
	p := &jobs.Project{}
	if err := unmarshal(pit, p); err != nil {
		return nil, nil, err
	}
	if p.RefCounts != refsApart && mode == refsApart {
		return s.placingCounts(ctx, pid, batch, p.RefCounts) // not apart after all
	}
	counts := map[string]refCount{}
	for _, ref := range refs {
		entry, err1 := countIn(got[keyString(refEntryKey(pid, ref))])
		count, err2 := countIn(got[keyString(refCountKey(pid, ref))])
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, err
		}
		counts[ref] = refCountOf(p.RefCounts, entry, count)
	}
	return p, counts, nil
}

// shardTake is how many requests a round reads of each queue shard: the
// oldest, twice a batch's share, so that a round reads about 2 batches'
// worth (each request ≈ 0.5 KB), not 16, and no shard waits more than a
// few rounds however full the others are.
const shardTake = 2 * combineBatch / queueShards

// queuedRequests reads every shard of project pid's queue, the oldest
// shardTake of each, strongly consistent, in parallel, oldest first; and
// the keys of those it cannot read (another version's, or damaged), which
// the round answers lost, so that none blocks the queue: their callers ask
// the domain again.
func (s *Store) queuedRequests(ctx context.Context, pid int64) ([]*request, []item, error) {
	var mu sync.Mutex
	var out []*request
	var unreadable []item
	errs := make([]error, queueShards)
	var wg sync.WaitGroup
	for h := range queueShards {
		wg.Go(func() {
			res, err := s.query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
				KeyConditionExpression:    aws.String("PK = :pk"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(queuePK(pid, h))},
				Limit:                     aws.Int32(shardTake),
			})
			if err != nil {
				errs[h] = fmt.Errorf("query requests: %w", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, it := range res.Items {
				if r, err := decodeRequest(it); err == nil {
					out = append(out, r)
				} else {
					unreadable = append(unreadable, key(keyAttr(it, "PK"), keyAttr(it, "SK")))
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(out, func(a, b *request) int { return strings.Compare(keyAttr(a.key, "SK"), keyAttr(b.key, "SK")) })
	return out, unreadable, nil
}

// deleteRequests deletes answered requests, 25 a BatchWriteItem.
func (s *Store) deleteRequests(ctx context.Context, keys []item) error {
	for start := 0; start < len(keys); start += 25 {
		var reqs []types.WriteRequest
		for _, k := range keys[start:min(start+25, len(keys))] {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
		}
		if err := s.writeRequests(ctx, reqs); err != nil {
			return fmt.Errorf("delete requests: %w", err)
		}
	}
	return nil
}
