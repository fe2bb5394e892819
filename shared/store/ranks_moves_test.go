package store

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Which writes move which counts: builds entering, leaving or moving within
// the completed statuses, and nothing else.
func TestRankMoves(t *testing.T) {
	build := func(id, ord int64, st jobs.Status) *jobs.Job {
		return &jobs.Job{ID: id, Ordinal: ord, Status: st, Kind: jobs.Build}
	}
	bridge := build(9, 40, jobs.Success)
	bridge.Kind = jobs.Bridge
	// A build of ref feature/x, its ref ordinal ref.
	ofRef := func(j *jobs.Job, ref int64) *jobs.Job {
		j.Ref, j.RefOrdinal = "feature/x", ref
		return j
	}
	for _, tc := range []struct {
		name          string
		before, after *jobs.Job
		want          []rankMove
	}{
		// Ordinal 40 is bit 8 of slot 2, 45 bit 13, 47 bit 15, 48 bit 0 of slot 3.
		{"canceled", build(7, 40, jobs.Running), build(7, 40, jobs.Canceled), []rankMove{{"", jobs.Canceled, 2, 7, 1 << 8}}},
		{"created pending", nil, build(8, 41, jobs.Pending), nil},
		{"imported success", nil, build(8, 47, jobs.Success), []rankMove{{"", jobs.Success, 2, 8, 1 << 15}}},
		{"erased, same slot", build(7, 40, jobs.Success), build(7, 40, jobs.Success), nil},
		{"renumbered within its slot", build(7, 40, jobs.Failed), build(7, 45, jobs.Failed),
			[]rankMove{{"", jobs.Failed, 2, 7, -1 << 8}, {"", jobs.Failed, 2, 7, 1 << 13}}},
		{"renumbered to the next slot", build(7, 40, jobs.Failed), build(7, 48, jobs.Failed),
			[]rankMove{{"", jobs.Failed, 2, 7, -1 << 8}, {"", jobs.Failed, 3, 7, 1}}},
		{"running, renumbered", build(7, 40, jobs.Running), build(7, 48, jobs.Running), nil},
		{"a bridge", nil, bridge, nil},
		{"canceled, of a ref", ofRef(build(7, 40, jobs.Running), 3), ofRef(build(7, 40, jobs.Canceled), 3),
			[]rankMove{{"", jobs.Canceled, 2, 7, 1 << 8}, {"feature/x", jobs.Canceled, 0, 7, 1 << 3}}},
		{"renumbered in its ref only", ofRef(build(7, 40, jobs.Failed), 15), ofRef(build(7, 41, jobs.Failed), 16),
			[]rankMove{{"", jobs.Failed, 2, 7, -1 << 8}, {"feature/x", jobs.Failed, 0, 7, -1 << 15}, {"", jobs.Failed, 2, 7, 1 << 9}, {"feature/x", jobs.Failed, 1, 7, 1}}},
		{"a ref not placed", nil, ofRef(build(8, 47, jobs.Skipped), 0), []rankMove{{"", jobs.Skipped, 2, 8, 1 << 15}}},
		{"not placed", nil, build(8, 0, jobs.Success), nil},
	} {
		if got := rankMoves(tc.before, tc.after); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// One update a count item (a part's slots of a bucket), each slot's id set
// once however many statuses of it change, and each slot's masks added to
// once, as one number, however many of their bits change (DynamoDB refuses
// a path twice in one expression; failed's mask starts at bit 16), no id
// for a build that leaves.
func TestRankUpdates(t *testing.T) {
	s := &Store{table: "jobs"}
	moves := []rankMove{
		{"", jobs.Success, 3, 70, 1}, {"", jobs.Failed, 3, 71, 2}, {"", jobs.Failed, 3, 72, -8}, {"", jobs.Failed, 3 + rankParts, 90, 1}, // part 3, bucket 0
		{"", jobs.Canceled, 4, 80, 1},                        // part 4, bucket 0
		{"", jobs.Canceled, 3 + rankSlots*rankParts, 99, -1}, // part 3, bucket 1
		{"feature/x", jobs.Success, 3, 70, 1},                // the ref's part 3, bucket 0
	}
	us := s.rankUpdates(5, moves)
	var keys []string
	for _, u := range us {
		keys = append(keys, keyString(u.Key))
	}
	if want := []string{"P#5#N#3|000000000000", "P#5#N#4|000000000000", "P#5#N#3|000000000001", "P#5#RN#9#feature/x#3|000000000000"}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	first := us[0]
	var attrs []string
	for _, n := range first.ExpressionAttributeNames {
		attrs = append(attrs, n)
	}
	slices.Sort(attrs)
	if want := []string{"f0", "f1", "m0", "m1", "v"}; !slices.Equal(attrs, want) || strings.Count(*first.UpdateExpression, "#f") != 2 {
		t.Errorf("first update %q names %v, want %v", *first.UpdateExpression, attrs, want)
	}
	var sums []string
	for _, v := range first.ExpressionAttributeValues {
		if n, ok := v.(*types.AttributeValueMemberN); ok {
			sums = append(sums, n.Value)
		}
	}
	slices.Sort(sums)
	if want := []string{"-393215", "1", "65536", "70", "90"}; !slices.Equal(sums, want) {
		t.Errorf("first update adds and sets %v, want %v", sums, want)
	}
	if strings.Contains(*us[2].UpdateExpression, "SET") {
		t.Errorf("a leaving build's update %q sets an id", *us[2].UpdateExpression)
	}
}

// A ref names its count items by itself up to 22 bytes, and by a hash of
// fixed length past that: two long refs that differ only at the end get
// keys of their own, as long as a short ref's at most.
func TestRankRef(t *testing.T) {
	long := strings.Repeat("release/", 20)
	for _, tc := range []struct{ ref, want string }{
		{"main", "4#main"},
		{"feature/ünï", "13#feature/ünï"},
		{strings.Repeat("x", 22), "22#" + strings.Repeat("x", 22)},
	} {
		if got := rankRef(tc.ref); got != tc.want {
			t.Errorf("rankRef(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	a, b := rankRef(long+"a"), rankRef(long+"b")
	if a == b || len(a) != len(b) || len(a) > len("22#")+22 || !strings.HasPrefix(a, "h#") || strings.Contains(a[2:], "#") {
		t.Errorf("long refs: %q and %q", a, b)
	}
}

// The first count Query of a part asks for twice a dense list's buckets,
// or, for a list a page found sparser, its own buckets and a quarter more;
// never more than a Query's rows.
func TestFirstRead(t *testing.T) {
	for _, tc := range []struct {
		skip      int
		perBucket float64
		want      int32
	}{
		{500, 0, 4},
		{9980, 0, 8},
		{9980, 2048, 8}, // as dense as assumed (half the builds): the same
		{9980, 4000, 8}, // denser: never less
		{1580, 512, 5},  // an eighth of the builds: ceil(1.25*1580/512)+1
		{9980, 512, 26},
		{500000, 1, 1000},
	} {
		if got := firstRead(tc.skip, tc.perBucket); got != tc.want {
			t.Errorf("firstRead(%d, %v) = %d, want %d", tc.skip, tc.perBucket, got, tc.want)
		}
	}
}

// The masks place a page's very ordinals, newest first, at any offset,
// and only in slots known to every part.
func TestRankPlace(t *testing.T) {
	rk := &ranks{masks: []map[int64]int64{
		{3: 1<<15 | 1<<2, 1: 1}, // success: 63, 50, 16
		{3: 1 << 7, 0: 1 << 5}}, // failed: 55, 5
	}
	for _, tc := range []struct {
		skip, limit int
		known       int64
		want        []int64
		more        bool
	}{
		{0, 2, 0, []int64{63, 55}, true},
		{1, 3, 0, []int64{55, 50, 16}, true},
		{3, 5, 0, []int64{16, 5}, false},
		{4, 1, 0, []int64{5}, false},
		{5, 1, 0, nil, false},
		{3, 5, 1, []int64{16}, false}, // slot 0 not known
	} {
		rk.known = tc.known
		if got, more := rk.place(tc.skip, tc.limit); !slices.Equal(got, tc.want) || more != tc.more {
			t.Errorf("place(%d, %d) known %d = %v, %v; want %v, %v", tc.skip, tc.limit, tc.known, got, more, tc.want, tc.more)
		}
	}
}

// A page of a dense list reads the ordinal index over its range, a row a
// shard per ordinal of it there; a page of a sparse one reads its status's
// rows, no more than the masks place from the bound down.
func TestPageReads(t *testing.T) {
	p := &jobs.Project{ID: 5, Shards: 2, RankCounts: true}
	// Ordinals 1..1024: every 8th canceled, the others success.
	succ, canc, ids := map[int64]int64{}, map[int64]int64{}, map[int64]int64{}
	for o := int64(1); o <= 1024; o++ {
		if o%8 == 0 {
			canc[rankSlot(o)] |= rankBit(o)
		} else {
			succ[rankSlot(o)] |= rankBit(o)
		}
		ids[rankSlot(o)] = 1000 + o
	}
	for _, tc := range []struct {
		name     string
		statuses []jobs.Status
		masks    []map[int64]int64
		index    string
		rows     int // the most rows all reads ask for
	}{
		{"dense", []jobs.Status{jobs.Success}, []map[int64]int64{succ}, GSIProjectBuilds, 23},
		{"sparse", []jobs.Status{jobs.Canceled}, []map[int64]int64{canc}, GSIProjectBuildsByStatus, 20 + 3}, // 1 above the page in its slot, 2 in the next
		{"both", []jobs.Status{jobs.Success, jobs.Canceled}, []map[int64]int64{succ, canc}, GSIProjectBuilds, 20},
	} {
		rk := &ranks{masks: tc.masks, ids: ids}
		at, _ := rk.place(60, 20)
		if len(at) != 20 {
			t.Fatalf("%s: placed %v", tc.name, at)
		}
		reads := pageReads(p, Range{Statuses: tc.statuses, Skip: 60, Limit: 20}, rk, at)
		rows := 0
		for _, rd := range reads {
			rows += rd.want
			if rd.part.index != tc.index || rd.need != 0 {
				t.Errorf("%s: reads %+v, want index %s and no more than asked", tc.name, rd, tc.index)
			}
		}
		if rows > tc.rows || len(reads) > 2 {
			t.Errorf("%s: %d reads ask for %d rows, want at most 2 and %d", tc.name, len(reads), rows, tc.rows)
		}
	}
}

// A slot's part, bucket and place in its item name it again, and the
// items of a bucket hold its slots, every part the same share.
func TestRankSlots(t *testing.T) {
	per := map[[2]int64]int{}
	for slot := int64(0); slot < 3*rankParts*rankSlots; slot++ {
		h, b, n := int(slot%rankParts), rankBucket(slot), rankIndex(slot)
		if got := slotAt(h, b, n); got != slot || n >= rankSlots {
			t.Fatalf("slot %d: part %d, bucket %d, place %d name slot %d", slot, h, b, n, got)
		}
		per[[2]int64{int64(h), b}]++
	}
	for k, n := range per {
		if n != rankSlots {
			t.Errorf("part %d, bucket %d holds %d slots, want %d", k[0], k[1], n, rankSlots)
		}
	}
}
