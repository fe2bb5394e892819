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
// keyset pages) and compares the merge with the range's true top.
func TestShardedPlansReadWholePages(t *testing.T) {
	for _, shards := range []int{1, 2, 3, 7, 8, 32} {
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
					pl := projectBuildsPlan(1, builds, shards, r)
					if len(pl.parts) != shards || len(distinctPKs(pl)) != shards {
						t.Fatalf("S=%d: partitions %v", shards, pl.parts)
					}
					bound := builds
					if pl.upTo > 0 {
						bound = min(pl.upTo, builds)
					}
					var want []int64
					for o := bound; o >= 1 && len(want) < limit+1 && !pl.none; o-- {
						want = append(want, o)
					}
					var got []int64
					for k := range shards {
						taken := 0
						for o := bound; o >= 1 && taken < pl.perPart() && !pl.none; o-- {
							if shardOf(o, shards) == k {
								got = append(got, o)
								taken++
							}
						}
					}
					slices.SortFunc(got, func(a, b int64) int { return int(b - a) })
					got = got[:min(len(got), limit+1)]
					if !slices.Equal(got, want) {
						t.Errorf("S=%d builds=%d range %+v: read %v, want %v", shards, builds, r, got, want)
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
