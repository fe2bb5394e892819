package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

// SetImportCalls bounds the batch calls an import keeps going: its
// Writer's BatchWriteItems and its existence checks' BatchGetItems.
func TestImportCallsAreBounded(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			env := testenv.New(t)
			st, ctx := env.Deps.Store, context.Background()
			st.SetImportCalls(n)
			w := st.NewWriter(ctx, 0)
			for i := range 300 { // 12 calls of 25
				if err := w.PutToken(&jobs.Token{Hash: fmt.Sprintf("h%03d", i), UserID: 1}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Wait(); err != nil {
				t.Fatal(err)
			}
			if got := env.Counter.Calls()["BatchWriteItem"]; got < 12 {
				t.Fatalf("%d BatchWriteItems, want 12 or more", got)
			}
			if got := env.Counter.Concurrent(); got > n {
				t.Errorf("writer: %d calls at once, want at most %d", got, n)
			}
			env.Counter.Reset()
			ids := make([]int64, 1000) // 10 calls of 100
			for i := range ids {
				ids[i] = int64(i + 1)
			}
			if _, err := st.ExistingJobs(ctx, ids); err != nil {
				t.Fatal(err)
			}
			if got := env.Counter.Calls()["BatchGetItem"]; got < 10 {
				t.Fatalf("%d BatchGetItems, want 10 or more", got)
			}
			if got := env.Counter.Concurrent(); got > n {
				t.Errorf("existence check: %d calls at once, want at most %d", got, n)
			}
		})
	}
}
