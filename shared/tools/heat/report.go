package heat

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// Write prints the report: the mix, what each kind of operation costs as
// recorded, the top hottest partition keys against DynamoDB's limits, and
// the model's assumptions.
func (r *Report) Write(w io.Writer, top int) {
	m := r.Mix
	fmt.Fprintf(w, "Mix: one project at %.0f job writes/s (over %d pipelines) and %.0f page-1 reads/s (%d callers), "+
		"plus %.0f creations/s (over %d projects x %d pipelines on %d refs), plus an import of %.0f jobs/s into one project "+
		"of %d shards.\n", m.JobWrites, m.Pipelines, m.ListReads, m.Callers,
		m.Creations, m.CreationProjects, m.CreationPipelines, max(m.CreationRefs, 1), m.Imports, m.ImportShards)
	fmt.Fprintf(w, "List reads: C = %.0f warm containers at %.0f requests/s each (a cached page 1 took %v in process here); "+
		"page TTL %v, identity caches %v.\n\n", m.Containers(), m.ContainerRPS, r.WarmPage.Round(time.Microsecond),
		store.PageTTL, store.WarmTTL)
	fmt.Fprintf(w, "| operation | ops/s | samples | calls per op | RCU per op | WCU per op | DynamoDB Local reported |\n|---|---:|---:|---|---:|---:|---:|\n")
	for _, k := range r.Kinds {
		calls, rcu, wcu, rep := PerOperation(k)
		fmt.Fprintf(w, "| %s | %.0f | %d | %s | %.2f | %.2f | %.2f |\n", k.Name, k.Rate, len(k.Samples), callList(calls), rcu, wcu, rep)
	}
	u := r.Uncached
	fmt.Fprintf(w, "\nWithout the page cache (every read its Query, as a refresh reads it) the list reads alone would put "+
		"%.0f RCU/s (%.0f%% of 3,000) on %s `%s`.\n", u.RCU, 100*u.RCU/ReadLimit, u.Where(), u.Key)
	over := 0
	for _, row := range r.Rows {
		if row.Over() {
			over++
		}
	}
	fmt.Fprintf(w, "\n%d partition keys touched, %d above 80%% of a limit; job items %d bytes. Hottest:\n\n", len(r.Rows), over, r.JobItem)
	Print(w, r.Rows, top)
	var under []Row
	for _, row := range r.Rows {
		if !row.Over() {
			under = append(under, row)
		}
	}
	fmt.Fprintf(w, "\nHottest of the %d keys under 80%%:\n\n", len(under))
	Print(w, under, top)
	busy := 0
	for _, it := range r.Items {
		if it.Over() {
			busy++
		}
	}
	fmt.Fprintf(w, "\n%d items named by transactions, %d above 80%% of %.0f transactions/s. Busiest:\n\n", len(r.Items), busy, TxnLimit)
	PrintItems(w, r.Items, top)
	fmt.Fprintf(w, "\nAssumptions:\n%s", Assumptions)
}

func callList(calls map[string]float64) string {
	if len(calls) == 0 {
		return "none"
	}
	var out []string
	for op, n := range calls {
		out = append(out, fmt.Sprintf("%.2g %s", n, op))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// Assumptions are the model's, printed with every report.
const Assumptions = `- Limits: 3,000 RCU/s and 1,000 WCU/s per partition key, of the table or of each GSI (partitioned by its own
  key); one item is never split; adaptive capacity and split-for-heat are not counted on.
- Keys come from the recorded calls: a Query's partition from its key condition, a BatchGetItem's from its
  keys, a write's from the item before (read back strongly consistently) and after, and each GSI's partition
  from the index key attribute that DynamoDB's DescribeTable names. Nothing of the store's key layout is copied.
- Reads: per request, 4 KB units rounded up (a BatchGetItem per item, at least 1, also for a missing item),
  half for eventually consistent reads; a Query's items summed (GSIs project ALL). Writes: 1 KB units of the
  larger of the item before and after, rounded up, x2 for a transaction's items (prepare and commit); every GSI
  the item is in before or after is written once more per its own partition (update in place, or a delete
  from the old key and a put into the new one), x2 in a transaction too (DynamoDB Local's reported figure
  agrees for job writes; for creations it reports less); ConditionChecks cost a write of the item checked.
- Each kind is recorded a few times through the real store (and for list reads the real list handler) on
  DynamoDB Local, and its average load per partition key is scaled by its rate. Recorded samples run without
  contention: lost races (transaction conflicts, failed conditions, their re-reads) would add to the hot keys.
- Job writes are status changes (created->pending->running->success in equal thirds) through store.Apply, the
  store's one write path for job changes, by a writer holding the job (its read is not counted); spread
  evenly over the project's active pipelines. Creations are retries (GitLab's retry, the one way this API
  creates a job) through store.Apply: the counter read and the creating transaction; spread evenly over the
  creation projects and their pipelines.
- List reads are page 1 of the hot project (20 jobs) through the list handler, served by C warm containers
  (ListReads / ContainerRPS, Lambda: one request at a time each). Per container: the page refreshed at most
  once per page TTL; each caller's token, user and membership at most once per identity TTL (at most the
  caller's own rate); a cold container's every read once per identity TTL. Refreshes are counted on top of
  the cached reads: an upper bound.
- The import is jobsctl import's importer (world.Importer) writing one document of new jobs into a project
  whose sections (users, project, members) an earlier import wrote: its existence checks, its plan's reads,
  its BatchWriteItems of jobs and its pipeline and count updates, all recorded; every job on one ref, the
  statuses of a history (60% success). Its rate is per job: the recorded import's load over its jobs. What
  happens once per import (the sections again, the project's counts) is counted at that rate too: an upper
  bound for a long migration, which writes them once.
- Transactions per item: every item a recorded TransactWriteItems names (ConditionChecks too), scaled as the
  units are. A transaction holds its items from their prepare to its commit and cancels any other naming one of
  them meanwhile, so an item takes transactions one at a time: at most 100 a second with a hold of 10 ms (an
  estimate; DynamoDB publishes no figure). An item compare-and-set by every writer (a project's build count)
  takes less, one per writer's read-to-commit round trip. Single writes and lost transactions are not counted.
- Not modelled: the actions' own lookups (POST: token, project read fresh, job), S3 (the import's traces).
`
