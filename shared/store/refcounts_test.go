package store

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Where a ref's count is read from and which writes move it on: kept
// together, the entry alone; apart, the count item, which takes over a
// count still in the entry (while a reshard moves them) in the same
// transaction, on the condition that the entry still holds it.
func TestRefCounts(t *testing.T) {
	s := &Store{table: "jobs"}
	for _, c := range []struct {
		name         string
		mode         int
		entry, count int64
		want         refCount
		writes       []string // key, then condition, of each write
	}{
		{"together", refsTogether, 7, 0, refCount{n: 7}, []string{"P#5|RF#main: n = :old"}},
		{"together, first build", refsTogether, 0, 0, refCount{}, []string{"P#5|RF#main: attribute_not_exists(n)"}},
		{"together, a stale count item", refsTogether, 7, 9, refCount{n: 7}, []string{"P#5|RF#main: n = :old"}},
		{"apart", refsApart, 0, 9, refCount{n: 9, apart: true}, []string{"P#5#RF#main|RF: n = :old"}},
		{"apart, first build", refsApart, 0, 0, refCount{},
			[]string{"P#5#RF#main|RF: attribute_not_exists(n)", "P#5|RF#main: attribute_not_exists(n)"}},
		{"moving, still in the entry", refsMoving, 7, 0, refCount{n: 7},
			[]string{"P#5#RF#main|RF: attribute_not_exists(n)", "P#5|RF#main: n = :n"}},
		{"moving, moved", refsMoving, 0, 9, refCount{n: 9, apart: true}, []string{"P#5#RF#main|RF: n = :old"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := refCountOf(c.mode, c.entry, c.count)
			if rc != c.want {
				t.Fatalf("read %+v, want %+v", rc, c.want)
			}
			var got []string
			for _, u := range s.refCountWrites(&jobs.Project{ID: 5, RefCounts: c.mode}, "main", rc, rc.n+1) {
				got = append(got, fmt.Sprintf("%s: %s", keyString(u.Key), *u.ConditionExpression))
				if v := u.ExpressionAttributeValues[":new"]; v != nil && v.(*types.AttributeValueMemberN).Value != fmt.Sprint(rc.n+1) {
					t.Errorf("%s moves to %s, want %d", keyString(u.Key), v.(*types.AttributeValueMemberN).Value, rc.n+1)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.writes) {
				t.Errorf("writes %q, want %q", got, c.writes)
			}
		})
	}
}
