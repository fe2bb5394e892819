package store

import (
	"slices"
	"testing"
)

// Ordinals are dense (1..builds) and dealt round-robin over the shards, so
// the limit+1 rows at and below any bound hold at most ceil((limit+1)/S) of
// each shard: an unfiltered plan reads that many from the top of each
// shard's part of the range and has the page. This simulates the shards'
// Queries over every such range (page 1 without a count, offset pages,
// keyset pages) and compares the merge with the range's true top; also
// while a reshard has moved some builds (every third, or all but every
// third) from one count's keys to another's, and lists read both.
func TestShardedPlansReadWholePages(t *testing.T) {
	type layout struct {
		counts []int
		moved  func(o int64) bool // under counts[1]'s keys, not counts[0]'s
	}
	var layouts []layout
	for _, shards := range []int{1, 2, 3, 7, 8, 32} {
		layouts = append(layouts, layout{[]int{shards}, func(int64) bool { return false }})
	}
	for _, pair := range [][]int{{4, 2}, {1, 8}, {8, 1}, {3, 32}, {3, 2}, {2, 3}} {
		layouts = append(layouts, layout{pair, func(o int64) bool { return o%3 == 0 }},
			layout{pair, func(o int64) bool { return o%3 != 0 }})
	}
	for _, l := range layouts {
		for _, limit := range []int{1, 2, 19, 20, 100} {
			for _, builds := range []int64{0, 1, 5, 64, 257, 1000} {
				ranges := []Range{
					{Limit: limit},
					{Limit: limit, Skip: limit},
					{Limit: limit, Skip: 9 * limit},
					{Limit: limit, After: Position{ID: 1, Ordinal: builds/2 + 1}},
					{Limit: limit, After: Position{ID: 1, Ordinal: 3}},
				}
				for _, r := range ranges {
					pl := projectBuildsPlan(1, builds, l.counts, r)
					// The keys of shard k are one partition whatever the
					// count, but for an unsharded project's.
					pks := map[string]bool{}
					for _, n := range l.counts {
						for k := range n {
							pks[projectBuildsPK(1, n, k)] = true
						}
					}
					if len(pl.parts) != len(pks) || len(distinctPKs(pl)) != len(pks) {
						t.Fatalf("S=%v: partitions %v", l.counts, pl.parts)
					}
					bound := builds
					if pl.upTo > 0 {
						bound = min(pl.upTo, builds)
					}
					var want []int64
					for o := bound; o >= 1 && len(want) < limit+1 && !pl.none; o-- {
						want = append(want, o)
					}
					// Each partition's rows: the builds its keys hold under
					// the count each is under.
					var got []int64
					for _, part := range pl.parts {
						taken := 0
						for o := bound; o >= 1 && taken < pl.perPart() && !pl.none; o-- {
							n := l.counts[0]
							if l.moved(o) {
								n = l.counts[1]
							}
							if projectBuildsPK(1, n, shardOf(o, n)) == part.pk {
								got = append(got, o)
								taken++
							}
						}
					}
					slices.SortFunc(got, func(a, b int64) int { return int(b - a) })
					got = got[:min(len(got), limit+1)]
					if !slices.Equal(got, want) {
						t.Errorf("S=%v builds=%d range %+v: read %v, want %v", l.counts, builds, r, got, want)
					}
				}
			}
		}
	}
}

func distinctPKs(pl plan) []string {
	var out []string
	for _, p := range pl.parts {
		out = append(out, p.pk)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// An unsharded project keeps the keys it always had; a sharded one's keys
// end in the shard.
func TestShardKeys(t *testing.T) {
	tests := []struct {
		shards, k      int
		builds, status string
	}{
		{1, 0, "P#7#B", "P#7#B#failed"},
		{8, 0, "P#7#B#0", "P#7#B#failed#0"},
		{8, 7, "P#7#B#7", "P#7#B#failed#7"},
	}
	for _, tc := range tests {
		if got := projectBuildsPK(7, tc.shards, tc.k); got != tc.builds {
			t.Errorf("S=%d k=%d: builds key %q, want %q", tc.shards, tc.k, got, tc.builds)
		}
		if got := projectStatusPK(7, "failed", tc.shards, tc.k); got != tc.status {
			t.Errorf("S=%d k=%d: status key %q, want %q", tc.shards, tc.k, got, tc.status)
		}
	}
}
