package load

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// Stack is where the API keeps its data, for Check.
type Stack struct {
	DynamoDB *dynamodb.Client
	S3       *s3.Client
	Table    string
	Bucket   string
}

// What Check reads of the items (a Scan: fine for a test tool, never on the
// request path): a job's index keys by the store's attribute names, and the
// job itself as the store decodes it.
type (
	jobItem struct {
		GSI1PK, GSI2PK, GSI4PK string
		RefPK                  string `dynamodbav:"rk"`  // the ref index's partition
		RefStatusPK            string `dynamodbav:"rsk"` // the same, per status
		*jobs.Job              `dynamodbav:"-"`
	}
	pipelineItem struct {
		ID     int64            `dynamodbav:"id"`
		Counts map[string]int64 `dynamodbav:"n"`
	}
	counterItem struct {
		N int64 `dynamodbav:"n"`
	}
	// refKey is a project's ref, whose builds are counted and numbered.
	refKey struct {
		project int64
		ref     string
	}
)

func pkPrefix(it map[string]types.AttributeValue, prefix string) bool {
	return strings.HasPrefix(stringAttr(it, "PK"), prefix)
}

// stringAttr is the string attribute name of it, or "".
func stringAttr(it map[string]types.AttributeValue, name string) string {
	v, _ := it[name].(*types.AttributeValueMemberS)
	if v == nil {
		return ""
	}
	return v.Value
}

// Check lists every violation of what must hold after any interleaving of
// actions:
//   - a job's index keys name its current status (so no job is in two
//     statuses' lists, and none is missing from its own), and a build's
//     its project's shard count, or while a reshard moves its builds the
//     other count lists read too (so no list misses it);
//   - each job of a pipeline (by kind and name) has exactly one latest try:
//     every retried job has exactly one successor;
//   - the job id counter is at or above every job's id;
//   - a project's build ordinals are 1..n, and its build ids grow with them;
//   - a ref's builds are numbered 1..n, n its count, held in one place: the
//     one its project keeps counts in;
//   - a pipeline's job counts are the counts of its jobs;
//   - an erased job whose deletion is done (no fp mark) has no files left in S3.
func Check(ctx context.Context, st Stack) ([]string, error) {
	var all []jobItem
	pipelines := map[int64]map[string]int64{}
	var counter counterItem
	// Each ref's count as its entry and its count item hold it, and where
	// each project keeps them (jobs.Project.RefCounts: 0 together in the
	// entries, 1 moving, 2 apart in the count items).
	entryCounts, itemCounts := map[refKey]int64{}, map[refKey]int64{}
	refModes, shards, moving := map[int64]int{}, map[int64]int{}, map[int64]int{}
	p := dynamodb.NewScanPaginator(st.DynamoDB, &dynamodb.ScanInput{TableName: aws.String(st.Table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, raw := range page.Items {
			var err error
			switch {
			case pkPrefix(raw, "J#"):
				var j jobItem
				if err = attributevalue.UnmarshalMap(raw, &j); err == nil {
					j.Job, err = store.DecodeJob(raw)
				}
				all = append(all, j)
			case pkPrefix(raw, "PL#"):
				var pl pipelineItem
				err = attributevalue.UnmarshalMap(raw, &pl)
				pipelines[pl.ID] = pl.Counts
			case pkPrefix(raw, "COUNTER"):
				err = attributevalue.UnmarshalMap(raw, &counter)
			case pkPrefix(raw, "P#") && stringAttr(raw, "SK") == "P":
				var p struct {
					ID        int64 `dynamodbav:"id"`
					RefCounts int   `dynamodbav:"ra"`
					Shards    int   `dynamodbav:"sh"`
					ShardsToo int   `dynamodbav:"so"`
				}
				err = attributevalue.UnmarshalMap(raw, &p)
				refModes[p.ID], shards[p.ID] = p.RefCounts, max(p.Shards, 1)
				if p.ShardsToo > 0 {
					moving[p.ID] = p.ShardsToo
				}
			case pkPrefix(raw, "P#") && strings.HasPrefix(stringAttr(raw, "SK"), "RF#"),
				pkPrefix(raw, "P#") && stringAttr(raw, "SK") == "RF":
				// A ref's entry, or its count item.
				var c counterItem
				err = attributevalue.UnmarshalMap(raw, &c)
				var pid int64
				fmt.Sscanf(stringAttr(raw, "PK"), "P#%d", &pid)
				ref, counts := strings.TrimPrefix(stringAttr(raw, "SK"), "RF#"), entryCounts
				if _, apart, ok := strings.Cut(stringAttr(raw, "PK"), "#RF#"); ok {
					ref, counts = apart, itemCounts
				}
				if c.N > 0 {
					counts[refKey{pid, ref}] = c.N
				}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	var bad []string
	byRef := map[refKey][]jobItem{}
	builds := map[int64][]jobItem{}
	latest := map[string]int{}
	counted := map[int64]map[string]int64{}
	for _, j := range all {
		kind := j.Kind
		try := "L"
		if j.Retried {
			try = "R"
		}
		if kind == jobs.Build {
			builds[j.ProjectID] = append(builds[j.ProjectID], j)
		}
		if kind == jobs.Build {
			n := max(shards[j.ProjectID], 1) // 1 for a build of no stored project
			keys := map[string]string{"GSI1PK": j.GSI1PK, "GSI2PK": j.GSI2PK, "rk": j.RefPK, "rsk": j.RefStatusPK}
			want, err := store.IndexKeys(j.Job, n)
			if err != nil {
				return nil, err
			}
			// While a reshard moves builds, one not moved yet is whole
			// under the other count's keys, which lists read too.
			if other := moving[j.ProjectID]; other > 0 && !maps.Equal(keysOf(want), keys) {
				if under, err := store.IndexKeys(j.Job, other); err == nil && maps.Equal(keysOf(under), keys) {
					want = under
				}
			}
			for name, got := range keys {
				if got != want[name] {
					bad = append(bad, fmt.Sprintf("job %d (%s, ordinal %d, ref ordinal %d, %d shards) is listed under %s %q, want %q",
						j.ID, j.Status, j.Ordinal, j.RefOrdinal, n, name, got, want[name]))
				}
			}
		}
		if kind == jobs.Build && j.Ref != "" {
			byRef[refKey{j.ProjectID, j.Ref}] = append(byRef[refKey{j.ProjectID, j.Ref}], j)
		}
		if !strings.HasSuffix(j.GSI4PK, "#"+string(j.Status)+"#"+try) {
			bad = append(bad, fmt.Sprintf("job %d is %s (%s) but its pipeline lists it under %s", j.ID, j.Status, try, j.GSI4PK))
		}
		if j.ID > counter.N {
			bad = append(bad, fmt.Sprintf("job %d is above the id counter %d", j.ID, counter.N))
		}
		group := fmt.Sprintf("pipeline %d %s %q", j.PipelineID, kind, j.Name)
		latest[group] += 0 // every group, so that one without a latest try shows
		if !j.Retried {
			latest[group]++
		}
		if counted[j.PipelineID] == nil {
			counted[j.PipelineID] = map[string]int64{}
		}
		counted[j.PipelineID][jobs.CountKey(kind, j.Status, j.Retried)]++
		// A deletion still pending (fp: erase's S3 delete failed, say timed
		// out under load) is the cleanup function's, which the table's
		// stream starts; this stack has no stream.
		if j.ErasedAt != nil && !j.FilesPending {
			out, err := st.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket),
				Prefix: aws.String(jobfiles.Prefix(j.ProjectID, j.ID))})
			if err != nil {
				return nil, err
			}
			if n := len(out.Contents); n > 0 {
				bad = append(bad, fmt.Sprintf("job %d is erased but has %d files in S3", j.ID, n))
			}
		}
	}
	// A ref's builds are numbered 1..n in id order, n its count item.
	for k, builds := range byRef {
		sort.Slice(builds, func(a, b int) bool { return builds[a].ID < builds[b].ID })
		for i, j := range builds {
			if j.RefOrdinal != int64(i+1) {
				bad = append(bad, fmt.Sprintf("job %d is build %d of ref %q in project %d but has ref ordinal %d",
					j.ID, i+1, k.ref, k.project, j.RefOrdinal))
			}
		}
		if n := max(entryCounts[k], itemCounts[k]); n != int64(len(builds)) {
			bad = append(bad, fmt.Sprintf("ref %q of project %d counts %d builds, has %d", k.ref, k.project, n, len(builds)))
		}
	}
	// A ref's count is in one place, the one its project keeps it in.
	for k := range entryCounts {
		if _, both := itemCounts[k]; both || refModes[k.project] == 2 {
			bad = append(bad, fmt.Sprintf("ref %q of project %d has a count in its entry, and %d in its count item (project keeps counts as %d)",
				k.ref, k.project, itemCounts[k], refModes[k.project]))
		}
	}
	for k := range itemCounts {
		if refModes[k.project] == 0 {
			bad = append(bad, fmt.Sprintf("ref %q of project %d has a count item, but its project keeps counts in its entries", k.ref, k.project))
		}
	}
	for k, n := range latest {
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%s has %d latest tries", k, n))
		}
	}
	for pl, want := range counted {
		for k, n := range want {
			if got := pipelines[pl][k]; got != n {
				bad = append(bad, fmt.Sprintf("pipeline %d counts %d %s, has %d", pl, got, k, n))
			}
		}
		for k, got := range pipelines[pl] {
			if _, ok := want[k]; !ok && got != 0 {
				bad = append(bad, fmt.Sprintf("pipeline %d counts %d %s, has none", pl, got, k))
			}
		}
	}
	for p, bs := range builds {
		slices.SortFunc(bs, func(a, b jobItem) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
		for i, j := range bs {
			if j.Ordinal != int64(i+1) || (i > 0 && j.ID <= bs[i-1].ID) {
				bad = append(bad, fmt.Sprintf("project %d: build %d has ordinal %d at position %d", p, j.ID, j.Ordinal, i+1))
				break
			}
		}
	}
	sort.Strings(bad)
	return bad, nil
}

// keysOf is the list index keys of IndexKeys' answer that Check compares.
func keysOf(k map[string]string) map[string]string {
	return map[string]string{"GSI1PK": k["GSI1PK"], "GSI2PK": k["GSI2PK"], "rk": k["rk"], "rsk": k["rsk"]}
}
