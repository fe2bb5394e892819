package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// An offset page of completed builds read through the rank counts answers
// what reading the statuses' partitions whole gives, at every depth, in 1
// and 4 shards, of a project's builds and of a ref's (with a slash): after an import, after cancels (counted in their
// transactions), after an import of older builds that renumbers the stored
// ones, and after a reshard. It reads two round trips and a bounded number
// of rows at any depth.
func TestRankedPagesAnswerAsTheWholeList(t *testing.T) {
	env := testenv.New(t)
	w := demo.Seed(1200)
	renameRef(w, "fix/cache", longRef) // a ref whose count keys hold its hash
	// Hold back some builds of the backend to import later, older than
	// most stored ones: that import renumbers the builds above them.
	var later []int
	for i := range w.Jobs {
		if i%7 == 3 && i > 100 {
			later = append(later, i)
		}
	}
	first, second := *w, *w
	first.Jobs, second.Jobs = nil, nil
	for i, raw := range w.Jobs {
		if _, held := slices.BinarySearch(later, i); held {
			second.Jobs = append(second.Jobs, raw)
		} else {
			first.Jobs = append(first.Jobs, raw)
		}
	}
	first.Projects = slices.Clone(w.Projects)
	first.Projects[0].Shards = 4 // demo/backend; demo/platform/frontend stays in 1
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	ctx := context.Background()
	if _, err := im.Import(ctx, &first); err != nil {
		t.Fatal(err)
	}
	st := env.Deps.Store
	store.SetCountedSkip(t, 1)
	check := func(t *testing.T, when string) {
		for _, pid := range []int64{demo.ProjectBackend, demo.ProjectFrontend} {
			st.ForgetPages()
			f, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: pid}})
			if err != nil || f.Project == nil {
				t.Fatal(pid, err)
			}
			p := f.Project
			if !p.RankCounts {
				t.Fatalf("project %d is not counted", pid)
			}
			type list struct {
				ref      string
				statuses []jobs.Status
			}
			var lists []list
			for _, statuses := range [][]jobs.Status{{jobs.Success}, {jobs.Canceled}, {jobs.Success, jobs.Failed}, {jobs.Success, jobs.Failed, jobs.Canceled, jobs.Skipped}} {
				lists = append(lists, list{"", statuses})
			}
			lists = append(lists, list{"main", []jobs.Status{jobs.Success, jobs.Failed, jobs.Canceled, jobs.Skipped}},
				list{"feature/login", []jobs.Status{jobs.Success}}, list{longRef, []jobs.Status{jobs.Failed, jobs.Canceled}})
			for _, l := range lists {
				statuses := l.statuses
				// Skip 0 reads as before: the whole list.
				whole, err := st.ProjectBuilds(ctx, p, store.Range{Statuses: statuses, Ref: l.ref, Limit: 100000})
				if err != nil {
					t.Fatal(err)
				}
				all := ids(whole.Jobs)
				if len(all) < 20 {
					t.Fatalf("%s: project %d ref %q %v: %d builds, too few to page", when, pid, l.ref, statuses, len(all))
				}
				parts := len(statuses) * max(1, p.Shards)
				for _, r := range []store.Range{{Skip: 1, Limit: 20}, {Skip: 15, Limit: 1}, {Skip: 16, Limit: 20}, {Skip: 33, Limit: 7},
					{Skip: 200, Limit: 20}, {Skip: 517, Limit: 50}, {Skip: len(all) - 10, Limit: 20}, {Skip: len(all) - 1, Limit: 20},
					{Skip: len(all), Limit: 20}, {Skip: len(all) + 5, Limit: 20}, {Skip: 40, Limit: 20, Whole: true}} {
					if r.Skip < 1 {
						continue
					}
					st.ForgetPages()
					env.Counter.Reset()
					r.Statuses, r.Ref = statuses, l.ref
					pg, err := st.ProjectBuilds(ctx, p, r)
					if err != nil {
						t.Fatal(err)
					}
					want := all[min(r.Skip, len(all)):min(r.Skip+r.Limit, len(all))]
					if got := ids(pg.Jobs); !slices.Equal(got, want) || pg.More != (r.Skip+r.Limit < len(all)) {
						t.Fatalf("%s: project %d ref %q %v skip %d limit %d: got %v more %v, want %v more %v",
							when, pid, l.ref, statuses, r.Skip, r.Limit, got, pg.More, want, r.Skip+r.Limit < len(all))
					}
					if r.Whole && len(pg.Jobs) > 0 && pg.Jobs[0].Variables == nil && pg.Jobs[0].Version == 0 {
						t.Errorf("%s: a whole page's job lacks its item", when)
					}
					// Rows: per partition at most a slot before and a slot
					// past the page; count items: a few per 512 ordinals.
					// (Renumbered builds set their new slots' ids, so the
					// bound holds after the import that moved them too.)
					rows := parts * (2*16 + r.Limit + 1)
					counts := 8 * (16 + 2*r.Skip/512)
					if got := env.Counter.Scanned(); got > rows+counts {
						t.Errorf("%s: project %d ref %q %v skip %d: read %d items, want at most %d rows and %d count items", when, pid, l.ref, statuses, r.Skip, got, rows, counts)
					}
					// Two rounds: one Query of each count part, then one of
					// each (status, shard), in parallel. (Counted, not
					// timed: on this machine's two cores the calls of a
					// round do not always overlap.)
					if q := env.Counter.Calls()["Query"]; q > 8+parts {
						t.Errorf("%s: project %d ref %q %v skip %d: %d Queries, want at most %d", when, pid, l.ref, statuses, r.Skip, q, 8+parts)
					}
				}
				// Walking on, page after page, within PageTTL: the
				// counts read for one page place the next ones (no count
				// Query), but where they stop short (then read again).
				st.ForgetPages()
				reread := 0
				for skip := max(len(all)-190, 1); skip < len(all)+20; skip += 20 {
					env.Counter.Reset()
					pg, err := st.ProjectBuilds(ctx, p, store.Range{Statuses: statuses, Ref: l.ref, Skip: skip, Limit: 20})
					if err != nil {
						t.Fatal(err)
					}
					want := all[min(skip, len(all)):min(skip+20, len(all))]
					if got := ids(pg.Jobs); !slices.Equal(got, want) || pg.More != (skip+20 < len(all)) {
						t.Fatalf("%s: project %d ref %q %v walking, skip %d: got %v more %v, want %v", when, pid, l.ref, statuses, skip, got, pg.More, want)
					}
					if skip > len(all)-190 && env.Counter.Calls()["Query"] > parts {
						reread++
					}
				}
				if reread > 1 {
					t.Errorf("%s: project %d ref %q %v: a walk of 10 pages read the counts %d times more", when, pid, l.ref, statuses, reread)
				}
			}
		}
	}
	check(t, "imported")

	// Cancel builds of both projects, each by four containers at once:
	// each enters canceled once, counted in its transaction.
	for _, pid := range []int64{demo.ProjectBackend, demo.ProjectFrontend} {
		f, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: pid}})
		if err != nil {
			t.Fatal(err)
		}
		pg, err := st.ProjectBuilds(ctx, f.Project, store.Range{Statuses: []jobs.Status{jobs.Pending, jobs.Running, jobs.Created, jobs.Manual}, Limit: 30, Whole: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Jobs) == 0 {
			t.Fatalf("project %d has nothing to cancel", pid)
		}
		for _, j := range pg.Jobs {
			var g errgroup.Group
			for range 4 {
				g.Go(func() error {
					own := store.New(env.DynamoDB, env.Table)
					c, err := own.Apply(ctx, f.Project, j, jobs.Cancel(false, time.Now()))
					if err != nil {
						return err
					}
					_, err = own.Apply(ctx, f.Project, c, jobs.Cancel(true, time.Now()))
					return err
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check(t, "canceled")

	if _, err := im.Import(ctx, &second); err != nil {
		t.Fatal(err)
	}
	check(t, "renumbered")

	if _, err := st.Reshard(ctx, demo.ProjectBackend, 2, 0, nil); err != nil {
		t.Fatal(err)
	}
	check(t, "resharded")

	// A project stored before counts were kept: no mark, and counts that
	// hold only some of its builds (here: none for half its slots, and
	// one wrong). Its pages read as before; Recount counts it.
	for _, pid := range []int64{demo.ProjectBackend, demo.ProjectFrontend} {
		forgetCounts(t, env, pid)
	}
	st = store.New(env.DynamoDB, env.Table) // a new container: nothing cached
	for _, pid := range []int64{demo.ProjectBackend, demo.ProjectFrontend} {
		if f, err := st.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: pid}}); err != nil || f.Project.RankCounts {
			t.Fatalf("project %d still marked counted (%v)", pid, err)
		}
		if n, err := st.Recount(ctx, pid); err != nil || n == 0 {
			t.Fatal(pid, n, err)
		}
	}
	check(t, "recounted")
}

// forgetCounts makes project pid as a project stored before rank counts:
// no marks, and count items of only some slots, one of them wrong, and one
// far above its builds, of its builds and of each ref's.
func forgetCounts(t *testing.T, env *testenv.Env, pid int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(env.Table), Key: keyOf(fmt.Sprintf("P#%d", pid), "P"),
		UpdateExpression: aws.String("REMOVE tm"),
	}); err != nil {
		t.Fatal(err)
	}
	var pks []string
	for h := range 8 {
		for _, ref := range []string{"", "main", "feature/login", longRef} {
			pks = append(pks, store.RankPK(pid, ref, h))
		}
	}
	for n, pk := range pks {
		h := n / 4
		res, err := env.DynamoDB.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(env.Table), KeyConditionExpression: aws.String("PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range res.Items {
			switch {
			case h%2 == 0:
				_, err = env.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(env.Table), Key: keyOf2(it)})
			case i == 0:
				_, err = env.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: aws.String(env.Table), Key: keyOf2(it), UpdateExpression: aws.String("SET m1 = :n"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "7"}}})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		// An item far above every build, as an older layout of the
		// count items could leave: masks read from it would place pages
		// among ordinals that do not exist.
		if _, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(env.Table), Item: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: "000000000099"},
			"m1": &types.AttributeValueMemberN{Value: "7"}, "cs1": &types.AttributeValueMemberN{Value: "3"}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// longRef is a ref too long for its count items' keys: they hold its hash.
const longRef = "renovate/github.com-aws-aws-sdk-go-v2-service-dynamodb-1.x"

// renameRef makes the pipelines and jobs of ref from in w those of ref to.
func renameRef(w *world.World, from, to string) {
	old, next := []byte(`"ref":"`+from+`"`), []byte(`"ref":"`+to+`"`)
	for _, docs := range [][]json.RawMessage{w.Pipelines, w.Jobs} {
		for i, d := range docs {
			docs[i] = bytes.ReplaceAll(d, old, next)
		}
	}
}

func keyOf(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}
}

func keyOf2(it map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": it["PK"], "SK": it["SK"]}
}
