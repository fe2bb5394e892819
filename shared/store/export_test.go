package store

import "testing"

// TypedQuery and TypedBatchGet are typedQuery and typedBatchGet, for the
// tests of package store_test, which need the local stack (testenv
// imports this package).
var (
	TypedQuery    = typedQuery
	TypedBatchGet = typedBatchGet
)

// SetQueryRows makes n the most rows a Query is asked for until t ends.
func SetQueryRows(t testing.TB, n int) {
	old := queryRows
	queryRows = n
	t.Cleanup(func() { queryRows = old })
}

// SetCountedSkip makes n the shallowest offset read through rank counts
// until t ends.
func SetCountedSkip(t testing.TB, n int) {
	old := countedSkip
	countedSkip = n
	t.Cleanup(func() { countedSkip = old })
}

// RankPK is rankPK: the partition of project p's count items of part h
// (of ref's builds, for a ref).
var RankPK = rankPK
