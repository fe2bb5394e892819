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

// What a lost creating transaction tells of the counts its next attempt
// moves on: the ref's count its failed write returned, or the counts as
// they were when that write's condition held; nothing when DynamoDB named
// a conflicting transaction or the count may have changed places.
func TestLostRaceCounts(t *testing.T) {
	build := &jobs.Job{ID: 9, ProjectID: 5, Ref: "main", Kind: jobs.Build}
	had := &creation{refCount{n: 3, apart: true}}
	project := func(mode int) item {
		return withKey(item{"id": num(5), "nb": num(40), "ra": num(int64(mode))}, projectKey(5))
	}
	counted := func(k item, n int64) item { return withKey(item{"n": num(n)}, k) }
	for _, c := range []struct {
		name  string
		mode  int // where the attempt had the project keep ref counts
		lost  *lostRace
		want  *creation
		known bool
	}{
		{"a race that tells nothing (after a long pause)", refsApart, &lostRace{}, had, false},
		{"a conflicting transaction", refsApart, lost(), had, true},
		{"the build count only", refsApart, lost(project(refsApart)), had, true},
		{"the ref's count item", refsApart, lost(project(refsApart), counted(refCountKey(5, "main"), 4)),
			&creation{refCount{n: 4, apart: true}}, true},
		{"the ref's entry, counts together", refsTogether, lost(counted(refEntryKey(5, "main"), 6)),
			&creation{refCount{n: 6}}, true},
		{"the ref's entry, counts apart", refsApart, lost(counted(refEntryKey(5, "main"), 6)), had, false},
		{"counts moving", refsMoving, lost(counted(refCountKey(5, "main"), 4)), had, false},
		{"the project, now keeping counts otherwise", refsTogether, lost(project(refsMoving)), had, false},
		{"only the new job's id", refsApart, &lostRace{taken: true, now: map[string]item{keyString(jobKey(9)): nil}, whole: true}, had, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, known := c.lost.counts(&jobs.Project{ID: 5, RefCounts: c.mode}, build, had)
			if known != c.known || *got != *c.want {
				t.Errorf("counts %+v known %v, want %+v %v", *got, known, *c.want, c.known)
			}
		})
	}
}

// lost is a lost race whose failed writes returned items.
func lost(items ...item) *lostRace {
	l := &lostRace{now: map[string]item{}, whole: true}
	for _, it := range items {
		l.now[keyString(it)] = it
	}
	return l
}
