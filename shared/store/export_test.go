package store

// TypedQuery and TypedBatchGet are typedQuery and typedBatchGet, for the
// tests of package store_test, which need the local stack (testenv
// imports this package).
var (
	TypedQuery    = typedQuery
	TypedBatchGet = typedBatchGet
)
