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
