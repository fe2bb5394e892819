package store

import (
	"slices"
	"strings"
	"testing"

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
		{"canceled", build(7, 40, jobs.Running), build(7, 40, jobs.Canceled), []rankMove{{"", jobs.Canceled, 2, 7, 1}}},
		{"created pending", nil, build(8, 41, jobs.Pending), nil},
		{"imported success", nil, build(8, 47, jobs.Success), []rankMove{{"", jobs.Success, 2, 8, 1}}},
		{"erased, same slot", build(7, 40, jobs.Success), build(7, 40, jobs.Success), nil},
		{"renumbered within its slot", build(7, 40, jobs.Failed), build(7, 45, jobs.Failed), nil},
		{"renumbered to the next slot", build(7, 40, jobs.Failed), build(7, 48, jobs.Failed),
			[]rankMove{{"", jobs.Failed, 2, 7, -1}, {"", jobs.Failed, 3, 7, 1}}},
		{"running, renumbered", build(7, 40, jobs.Running), build(7, 48, jobs.Running), nil},
		{"a bridge", nil, bridge, nil},
		{"canceled, of a ref", ofRef(build(7, 40, jobs.Running), 3), ofRef(build(7, 40, jobs.Canceled), 3),
			[]rankMove{{"", jobs.Canceled, 2, 7, 1}, {"feature/x", jobs.Canceled, 0, 7, 1}}},
		{"renumbered in its ref only", ofRef(build(7, 40, jobs.Failed), 15), ofRef(build(7, 41, jobs.Failed), 16),
			[]rankMove{{"feature/x", jobs.Failed, 0, 7, -1}, {"feature/x", jobs.Failed, 1, 7, 1}}},
		{"a ref not placed", nil, ofRef(build(8, 47, jobs.Skipped), 0), []rankMove{{"", jobs.Skipped, 2, 8, 1}}},
		{"not placed", nil, build(8, 0, jobs.Success), nil},
	} {
		if got := rankMoves(tc.before, tc.after); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// One update a count item (a part's slots of a bucket), each slot's id set
// once however many statuses of it change (DynamoDB refuses a path twice in
// one expression), none for a build that leaves.
func TestRankUpdates(t *testing.T) {
	s := &Store{table: "jobs"}
	moves := []rankMove{
		{"", jobs.Success, 3, 70, 1}, {"", jobs.Failed, 3, 71, 2}, {"", jobs.Failed, 3 + rankParts, 90, 1}, // part 3, bucket 0
		{"", jobs.Canceled, 4, 80, 1},              // part 4, bucket 0
		{"", jobs.Canceled, 3 + rankSlots, 99, -1}, // part 3, bucket 1
		{"feature/x", jobs.Success, 3, 70, 1},      // the ref's part 3, bucket 0
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
	if want := []string{"cf11", "cf3", "cs3", "f11", "f3", "v"}; !slices.Equal(attrs, want) || strings.Count(*first.UpdateExpression, "#f") != 2 {
		t.Errorf("first update %q names %v, want %v", *first.UpdateExpression, attrs, want)
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
		{500, 0, 17},
		{9980, 0, 54},
		{9980, 256, 54},  // as dense as assumed: the same
		{9980, 1000, 54}, // denser: never less
		{1580, 64, 32},   // an eighth of the builds: ceil(1.25*1580/64)+1
		{9980, 64, 196},
		{500000, 1, 1000},
	} {
		if got := firstRead(tc.skip, tc.perBucket); got != tc.want {
			t.Errorf("firstRead(%d, %v) = %d, want %d", tc.skip, tc.perBucket, got, tc.want)
		}
	}
}
