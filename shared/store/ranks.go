package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Rank counts make a deep offset page of completed builds (success,
// failed, canceled, skipped: statuses a build only ever enters) cost what a
// shallow one does. GSI2 orders a status's builds by id, and within a
// project ids grow with ordinals, so a build's rank in a status list is the
// number of that status's builds of higher ordinal. The table keeps them
// per slot of rankSpan ordinals, as masks: bit b of a status's mask is set
// for the build of ordinal rankSpan·slot+b in that status, so the count is
// the mask's bits. One item per (project, part, bucket) holds them, a
// bucket being rankParts·rankSlots slots and a part's item the rankSlots
// of them whose number is the part's modulo rankParts: for each of its
// slots, at place i (rankIndex), every status's mask in one number (m<i>,
// rankStatuses) and f<i>, the id of some build ever counted in the slot
// (newer than every build below the slot). A page reads the count items
// from the top until they pass its skip and limit (one item under 1 KB per
// 4,096 ordinals a part, not one row per job), which tells the very
// ordinals on the page; then it reads those rows alone: the ordinal
// index's range that holds them, or where they are few among many, the
// statuses' rows from below the f of the nearest counted slot above, as
// many as the masks place there (see pageReads). Masks are written in the
// transaction that moves a build into or out of a status (an action), by
// the move that renumbers it (an import), and by the import for its new
// builds; a project uses them only if it has been counted since it had no
// builds (tm, PutProject). A ref's builds are counted the same way a
// second time (GSI8 by id, slots by ref ordinal, which grows with ids
// within the ref), in the same writes.
const (
	rankSpan = 16 // ordinals per slot
	// rankSlots per count item: 32 slots of masks (at most 14 bytes) and
	// an id (at most 10) keep an item under 1 KB, one write unit.
	rankSlots = 32
	// rankParts spread a project's count items over partition keys by
	// slot: the top bucket takes every build that completes, and
	// consecutive ordinals fall in consecutive slots, so each part takes
	// an eighth (make heat's mix: 1,667 completions/s in one project, 2
	// WCU each, ≈ 420 WCU/s a part; 4 parts put one at 93%).
	// Independent of the write shards, so that a reshard moves no count.
	rankParts = 8
)

// countedSkip is the shallowest offset a page of completed builds reads
// through rank counts: below it, reading skip rows in the page's one round
// trip costs less than a second round trip. (A variable only so that tests
// can make deep pages of a small world: SetCountedSkip.)
var countedSkip = 500

// rankPK is the partition of the count items of part h of project p's
// builds, or of its ref's (ref non-empty).
func rankPK(p int64, ref string, h int) string {
	if ref == "" {
		return "P#" + id(p) + "#N#" + strconv.Itoa(h)
	}
	return "P#" + id(p) + "#RN#" + rankRef(ref) + "#" + strconv.Itoa(h)
}

// rankRef names ref in its count items' keys: itself after its length, or
// for a long one "h" and 128 bits of its SHA-256 (base64url), since every
// count item a page reads carries its key: a ref's deep page then costs
// the same whatever the ref's length.
func rankRef(ref string) string {
	const hashed = 22 // base64url characters of 16 bytes
	if len(ref) <= hashed {
		return strconv.Itoa(len(ref)) + "#" + ref
	}
	sum := sha256.Sum256([]byte(ref))
	return "h#" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

func rankSlot(ordinal int64) int64 { return ordinal / rankSpan }

// rankKey is the count item of a slot of project p's builds (or its ref's).
func rankKey(p int64, ref string, slot int64) item {
	return key(rankPK(p, ref, int(slot%rankParts)), bucketSK(rankBucket(slot)))
}

// rankBucket is the bucket of slot, rankIndex its place in its part's item
// of the bucket, and slotAt the slot at place n of part h's item of
// bucket b.
func rankBucket(slot int64) int64 { return slot / (rankParts * rankSlots) }
func rankIndex(slot int64) int64  { return slot / rankParts % rankSlots }
func slotAt(h int, b, n int64) int64 {
	return (b*rankSlots+n)*rankParts + int64(h)
}

// rankStatuses are the completed statuses, in their places in a slot's
// masks: one number, status i's mask its bits rankSpan·i and up (at most
// 20 digits: 11 bytes and a 3-byte name, where four named numbers would
// take up to 32).
var rankStatuses = []jobs.Status{jobs.Success, jobs.Failed, jobs.Canceled, jobs.Skipped}

// rankShift is where st's mask starts in a slot's masks.
func rankShift(st jobs.Status) uint { return uint(rankSpan * slices.Index(rankStatuses, st)) }

// maskAttr is the name of slot's masks in its item.
func maskAttr(slot int64) string { return "m" + strconv.FormatInt(rankIndex(slot), 10) }

// rankBit is the bit of ordinal in its slot's masks.
func rankBit(ordinal int64) int64 { return 1 << (ordinal % rankSpan) }

// idAttr is the name of slot's id in its item: one for every status, as
// any build of the slot bounds the ids of every build below it.
func idAttr(slot int64) string { return "f" + strconv.FormatInt(rankIndex(slot), 10) }

// bucketSK is a bucket's sort key: zero-padded, so that the strings sort
// as the numbers.
func bucketSK(b int64) string { return fmt.Sprintf("%012d", b) }

// rankMove is one change of the mask of status st in slot slot of the
// project's list (ref "") or of ref's: d adds the bits of builds that
// enter (one of them id) and subtracts those of builds that leave, each
// bit once, so that the sum is the mask.
type rankMove struct {
	ref  string
	st   jobs.Status
	slot int64
	id   int64
	d    int64
}

// counted reports whether j is counted: a build, placed, completed.
func counted(j *jobs.Job) bool {
	return j != nil && j.Kind != jobs.Bridge && j.Ordinal > 0 && j.Status.Completed()
}

// rankOrdinal is j's ordinal in the list of ref (the project's for ""),
// 0 when it is not in that list.
func rankOrdinal(j *jobs.Job, ref string) int64 {
	switch {
	case ref == "":
		return j.Ordinal
	case hasRef(j) && j.Ref == ref:
		return j.RefOrdinal
	}
	return 0
}

// rankEntries are the counts j is in, one build each: its project's list
// and its ref's.
func rankEntries(j *jobs.Job) []rankMove {
	if !counted(j) {
		return nil
	}
	out := []rankMove{{"", j.Status, rankSlot(j.Ordinal), j.ID, rankBit(j.Ordinal)}}
	if hasRef(j) && j.RefOrdinal > 0 {
		out = append(out, rankMove{j.Ref, j.Status, rankSlot(j.RefOrdinal), j.ID, rankBit(j.RefOrdinal)})
	}
	return out
}

// rankMoves is how the counts change when before becomes after (either nil
// for none): it leaves the counts it is in and enters the new ones, but
// for those it stays in.
func rankMoves(before, after *jobs.Job) []rankMove {
	leave, enter := rankEntries(before), rankEntries(after)
	same := func(a, b rankMove) bool { return a.ref == b.ref && a.st == b.st && a.slot == b.slot && a.d == b.d }
	var out []rankMove
	for _, m := range leave {
		if !slices.ContainsFunc(enter, func(e rankMove) bool { return same(m, e) }) {
			m.d = -m.d
			out = append(out, m)
		}
	}
	for _, m := range enter {
		if !slices.ContainsFunc(leave, func(l rankMove) bool { return same(m, l) }) {
			out = append(out, m)
		}
	}
	return out
}

// rankUpdate is the write of moves (all of one count item) to project p's
// count item: it adds to the masks and records, for each slot a build
// enters, that build's id. The latest is the best bound: an import that
// renumbers moves builds up only, so an older id of the slot may now be a
// build further up, whose rows a page would read past.
func (s *Store) rankUpdate(p int64, moves []rankMove) *types.Update {
	var adds, sets []string
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	// A path may appear once in an update: a slot's masks are one number,
	// and a build renumbered within its slot leaves one bit and enters
	// another. The sum may pass int64: a status's mask starts at bit 48.
	var masks []string
	sum := map[string]*big.Int{}
	for _, m := range moves {
		a := maskAttr(m.slot)
		if _, ok := sum[a]; !ok {
			masks = append(masks, a)
			sum[a] = new(big.Int)
		}
		sum[a].Add(sum[a], new(big.Int).Lsh(big.NewInt(m.d), rankShift(m.st)))
	}
	for i, a := range masks {
		if sum[a].Sign() != 0 {
			c, d := "#c"+strconv.Itoa(i), ":d"+strconv.Itoa(i)
			names[c], values[d] = a, &types.AttributeValueMemberN{Value: sum[a].String()}
			adds = append(adds, c+" "+d)
		}
	}
	idSet := map[int64]bool{}
	for i, m := range moves {
		f, v := "#f"+strconv.Itoa(i), ":f"+strconv.Itoa(i)
		if m.d > 0 && !idSet[m.slot] {
			idSet[m.slot] = true
			names[f], values[v] = idAttr(m.slot), num(m.id)
			sets = append(sets, f+" = "+v)
		}
	}
	// v moves on with every write, for Recount's condition.
	names["#v"], values[":one"] = "v", num(1)
	adds = append(adds, "#v :one")
	expr := "ADD " + strings.Join(adds, ", ")
	if len(sets) > 0 {
		expr += " SET " + strings.Join(sets, ", ")
	}
	return &types.Update{
		TableName: aws.String(s.table), Key: rankKey(p, moves[0].ref, moves[0].slot),
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}
}

// rankUpdates is the writes of moves of project p: one per count item.
func (s *Store) rankUpdates(p int64, moves []rankMove) []*types.Update {
	groups := byRankItem(p, moves)
	out := make([]*types.Update, len(groups))
	for i, g := range groups {
		out[i] = s.rankUpdate(p, g)
	}
	return out
}

// byRankItem groups moves of project p by count item, in first-seen order.
func byRankItem(p int64, moves []rankMove) [][]rankMove {
	at := map[string]int{}
	var out [][]rankMove
	for _, m := range moves {
		k := keyString(rankKey(p, m.ref, m.slot))
		i, ok := at[k]
		if !ok {
			i, at[k] = len(out), len(out)
			out = append(out, nil)
		}
		out[i] = append(out[i], m)
	}
	return out
}

// countedPage reports whether r is a page that rank counts serve in
// project p.
func countedPage(p *jobs.Project, r Range) bool {
	if r.After.ID != 0 || r.Skip < countedSkip || len(r.Statuses) == 0 {
		return false
	}
	if !p.RankCounts || r.Ref != "" && !indexedRef(r.Ref) {
		return false
	}
	for _, st := range r.Statuses {
		if !st.Completed() {
			return false
		}
	}
	return true
}

// rankedPage reads an offset page of completed builds through their rank
// counts (see countedPage): one round trip for the counts, one for the
// page's rows alone.
func (s *Store) rankedPage(ctx context.Context, p *jobs.Project, r Range) (*Page, error) {
	rk, err := s.cachedRanks(ctx, p.ID, r.Ref, r.Statuses, r.Skip+r.Limit)
	if err != nil {
		return nil, err
	}
	at, more := rk.place(r.Skip, r.Limit)
	if len(at) == 0 {
		return &Page{}, nil // past the last row
	}
	top, bottom := at[0], at[len(at)-1]
	rows, err := s.rowsBelow(ctx, pageReads(p, r, rk, at), func(j *jobs.Job) bool {
		// A row whose status the index shows late is left out, as the
		// status index would.
		o := rankOrdinal(j, r.Ref)
		return o >= bottom && o <= top && slices.Contains(r.Statuses, j.Status)
	})
	if err != nil {
		return nil, err
	}
	pg, err := s.cut(ctx, rows, 0, r.Limit, r.Whole)
	if err != nil {
		return nil, err
	}
	pg.More = more
	return pg, nil
}

// place is the ordinals of the page that passes over skip rows of rk's
// statuses and takes limit, newest first, and whether a row follows it.
func (rk *ranks) place(skip, limit int) (at []int64, more bool) {
	union := map[int64]int64{}
	for _, byStatus := range rk.masks {
		for slot, m := range byStatus {
			if slot >= rk.known {
				union[slot] |= m
			}
		}
	}
	slots := slices.Sorted(maps.Keys(union))
	left := int64(skip)
	for i := len(slots) - 1; i >= 0; i-- {
		m := union[slots[i]]
		if n := int64(bits.OnesCount64(uint64(m))); left >= n {
			left -= n
			continue
		}
		for b := int64(rankSpan - 1); b >= 0; b-- {
			if m&(1<<b) == 0 {
				continue
			}
			if left > 0 {
				left--
				continue
			}
			if len(at) == limit {
				return at, true
			}
			at = append(at, slots[i]*rankSpan+b)
		}
	}
	return at, false
}

// listedRowBytes is about what a list index row of a build holds
// (TestStoreBudgets): pageReads weighs its two ways by it.
const listedRowBytes = 512

// pageReads is what rankedPage reads for the rows of ordinals at (newest
// first) of r's statuses, each partition as far as rk places them: either
// the ordinal index over their range in each shard (every build there, of
// any status: the cheaper way when the statuses are most builds), or each
// status's rows in each shard that holds some, from below the id of the
// nearest counted slot above (the rows of that slot and those the page
// passes over come first: the masks tell how many). It takes the way of
// fewer read units, a Query costing half a unit for each 4 KB it reads.
func pageReads(p *jobs.Project, r Range, rk *ranks, at []int64) []partRead {
	units := func(reads []partRead) int {
		n := 0
		for _, rd := range reads {
			n += (rd.want*listedRowBytes + 4095) / 4096
		}
		return n
	}
	// Each partition, with the shards it is of (a count and a shard of
	// it: two while a reshard moves builds, when it is shard k of both).
	// A partition holds at most the rows each of them deals there.
	shares := func(part func(shards, k int) partition) ([]partition, map[partition][][2]int) {
		of := map[partition][][2]int{}
		for _, shards := range layoutsOf(p) {
			for k := range shards {
				pt := part(shards, k)
				of[pt] = append(of[pt], [2]int{shards, k})
			}
		}
		return sharedParts(layoutsOf(p), part), of
	}
	// The ordinal index: each partition from its newest ordinal of the
	// page down to its oldest, every ordinal between being one row.
	var ranged []partRead
	parts, of := shares(func(shards, k int) partition { return buildsPart(p.ID, r.Ref, shards, k) })
	for _, pt := range parts {
		hi, lo := int64(-1), int64(-1)
		for _, o := range at {
			for _, sk := range of[pt] {
				if shardOf(o, sk[0]) == sk[1] {
					hi, lo = max(hi, o), o
				}
			}
		}
		if hi < 0 {
			continue
		}
		want := 0
		for _, sk := range of[pt] {
			want += int((hi-lo)/int64(sk[0])) + 1
		}
		ranged = append(ranged, partRead{part: pt, upTo: hi, want: want})
	}
	// The status index: below the nearest slot above the page's with an
	// id come at most that slot's rows, then those of the page's slot
	// above the page, then the page's.
	slot := rankSlot(at[0])
	nearest, upTo := int64(-1), int64(0)
	for s := range rk.ids {
		if s > slot && (nearest < 0 || s < nearest) {
			nearest = s
		}
	}
	if nearest >= 0 {
		upTo = rk.ids[nearest] - 1
	}
	in := func(m, o int64) bool { return m&rankBit(o) != 0 }
	var listed []partRead
	for i, st := range r.Statuses {
		masks := rk.masks[i]
		parts, of := shares(func(shards, k int) partition { return statusPart(p.ID, r.Ref, st, shards, k) })
		for _, pt := range parts {
			page, before := 0, 0
			for _, sk := range of[pt] {
				shards, k := sk[0], sk[1]
				for _, o := range at {
					if shardOf(o, shards) == k && in(masks[rankSlot(o)], o) {
						page++
					}
				}
				for o := at[0] + 1; o < (slot+1)*rankSpan; o++ {
					if shardOf(o, shards) == k && in(masks[slot], o) {
						before++
					}
				}
				for o := nearest * rankSpan; nearest >= 0 && o < (nearest+1)*rankSpan; o++ {
					if shardOf(o, shards) == k && in(masks[nearest], o) {
						before++
					}
				}
			}
			if page > 0 {
				listed = append(listed, partRead{part: pt, upTo: upTo, want: before + page})
			}
		}
	}
	if units(ranged) <= units(listed) {
		return ranged
	}
	return listed
}

// ranks is what a page read of its statuses' count items: by status (in
// the page's order) each slot's mask, and each slot's id, for every slot
// of bucket known and above (known is in slots), which hold rows rows.
// Once read it is not changed: the warm cache shares it (cachedRanks).
type ranks struct {
	masks []map[int64]int64
	ids   map[int64]int64
	known int64
	rows  int64
}

// covers reports whether rk places the rows down to n: its known slots
// hold more rows, or it holds every slot.
func (rk *ranks) covers(n int) bool { return rk.known == 0 || rk.rows > int64(n) }

// cachedRanks is readRanks from the warm cache while PageTTL lasts and
// what it holds covers the n rows asked for: a client walking deep pages
// one after the other reads the counts once a PageTTL, not once a page. The counts are
// then as stale as a cached page is, and an action here drops them too
// (ForgetPages).
func (s *Store) cachedRanks(ctx context.Context, pid int64, ref string, statuses []jobs.Status, n int) (*ranks, error) {
	var b strings.Builder
	b.WriteString(id(pid) + "\x00" + ref)
	for _, st := range statuses {
		b.WriteString("\x00" + string(st))
	}
	k := b.String()
	if rk, ok := s.warm.ranks.get(k); ok && rk.covers(n) {
		return rk, nil
	}
	perBucket, _ := s.warm.rankRows.hint(k)
	rk, err := s.readRanks(ctx, pid, ref, statuses, n, perBucket)
	if err != nil {
		return nil, err
	}
	if len(rk.ids) <= maxCachedSlots {
		s.warm.ranks.put(k, rk)
	}
	if r := rk.perBucket(); r > 0 {
		s.warm.rankRows.put(k, r)
	}
	return rk, nil
}

// perBucket is how many rows rk's known slots hold a bucket (all parts
// together): the list's density, which sizes the first count Query of its
// next page (firstRead). 0 when rk knows no rows.
func (rk *ranks) perBucket() float64 {
	top := int64(-1)
	for slot := range rk.ids {
		top = max(top, slot)
	}
	if rk.rows == 0 || top < rk.known {
		return 0
	}
	return float64(rk.rows) / float64(rankBucket(top)-rankBucket(rk.known)+1)
}

// maxCachedSlots bounds the counts the warm cache keeps of one list
// (about 40 bytes a slot and status, for 65,536 ordinals): a page deeper
// than that reads its counts each time, and maxRanks of them take a few
// megabytes at most.
const (
	maxCachedSlots = 4096
	maxRanks       = 64
)

// rankFirstRead is the fewest count items a part's first Query asks for:
// a Query costs half a read unit up to 4 KB anyway, about 8 of them full.
const rankFirstRead = 4

// firstRead is how many count items each part's first Query asks for to
// pass skip rows: twice the buckets a list of the statuses alone would
// need, and rankFirstRead more; or, when a page of the list read before
// found perBucket rows a bucket (sparser than that), its buckets for skip
// and a quarter more, so that a sparse list's deep page reads its counts
// in one round trip too.
func firstRead(skip int, perBucket float64) int32 {
	n := rankFirstRead + 2*skip/(rankSpan*rankSlots*rankParts)
	if perBucket > 0 {
		n = max(n, int(math.Ceil(1.25*float64(skip)/perBucket))+1)
	}
	return int32(min(n, queryRows))
}

// readRanks reads the count items of statuses of project pid's builds (or
// its ref's) from the top, every part in parallel, until the slots known
// in all of them hold more than want rows (or every part is read through):
// the first Query of a part reads firstRead's (perBucket: the list's rows
// a bucket as last read, 0 for unknown), and a part read short of the
// others is read on, twice as far each time (a status of few builds among
// many).
func (s *Store) readRanks(ctx context.Context, pid int64, ref string, statuses []jobs.Status, want int, perBucket float64) (*ranks, error) {
	streams := make([]*rankStream, rankParts)
	for h := range streams {
		streams[h] = &rankStream{part: h, last: -1, in: &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String("PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(rankPK(pid, ref, h))},
			ScanIndexForward:          aws.Bool(false),
			ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
			Limit:                     aws.Int32(firstRead(want, perBucket)),
		}}
	}
	out := &ranks{masks: make([]map[int64]int64, len(statuses)), ids: map[int64]int64{}}
	for i := range out.masks {
		out.masks[i] = map[int64]int64{}
	}
	var mu sync.Mutex
	read := func(ctx context.Context, st *rankStream) error {
		res, err := s.query(ctx, st.in)
		if err != nil {
			return fmt.Errorf("query rank counts: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, it := range res.Items {
			b := keyNumber(it["SK"], "")
			st.last = b
			for name, v := range it {
				if len(name) < 2 || (name[0] != 'm' && name[0] != 'f') {
					continue
				}
				n, err := strconv.ParseInt(name[1:], 10, 64)
				if err != nil || n < 0 || n >= rankSlots {
					continue
				}
				slot := slotAt(st.part, b, n)
				if name[0] == 'f' {
					out.ids[slot] = keyNumber(v, "")
					continue
				}
				all := rankMasks(v)
				for i, s := range statuses {
					if m := int64(all >> rankShift(s) & (1<<rankSpan - 1)); m != 0 {
						out.masks[i][slot] = m
					}
				}
			}
		}
		st.done = res.LastEvaluatedKey == nil
		st.in.ExclusiveStartKey = res.LastEvaluatedKey
		st.in.Limit = aws.Int32(min(2**st.in.Limit, int32(queryRows)))
		return nil
	}
	next := streams
	for {
		errs := make([]error, len(next))
		var wg sync.WaitGroup
		for i, st := range next {
			wg.Go(func() { errs[i] = read(ctx, st) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		// Buckets at and above the highest bucket that a part not read
		// through stopped at are known in every part.
		out.known, next = 0, nil
		for _, st := range streams {
			if !st.done {
				out.known = max(out.known, st.bound())
			}
		}
		out.rows = 0
		for _, byStatus := range out.masks {
			for slot, m := range byStatus {
				if slot >= out.known {
					out.rows += int64(bits.OnesCount64(uint64(m)))
				}
			}
		}
		if out.covers(want) {
			return out, nil
		}
		for _, st := range streams {
			if !st.done && st.bound() == out.known {
				next = append(next, st)
			}
		}
		if len(next) == 0 {
			return out, nil
		}
	}
}

// rankMasks is a slot's masks as stored (0 for none or not a number).
func rankMasks(v types.AttributeValue) uint64 {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	u, _ := strconv.ParseUint(n.Value, 10, 64)
	return u
}

// rankStream is one part of a project's count items, read from the top.
type rankStream struct {
	part int
	in   *dynamodb.QueryInput
	last int64 // the lowest bucket read; -1 before any
	done bool
}

// bound is the lowest slot known in st: that of the lowest bucket it read,
// or none (MaxInt64) before its first.
func (st *rankStream) bound() int64 {
	if st.last < 0 {
		return math.MaxInt64
	}
	return st.last * rankSlots * rankParts
}
