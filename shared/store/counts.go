package store

import (
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// A pipeline item keeps, in its map attribute "n", how many of its jobs
// there are per kind, status and try (jobs.CountKey), so that list totals
// (X-Total) cost nothing. Every write that creates a job or changes its
// status or retried flag applies countDelta to the pipeline in the same
// transaction.

// countDelta is how the counts change when before becomes after; before is
// nil for a new job.
func countDelta(before, after *jobs.Job) map[string]int64 {
	d := map[string]int64{}
	if before != nil {
		d[jobs.CountKey(before.Kind, before.Status, before.Retried)]--
	}
	if after != nil {
		d[jobs.CountKey(after.Kind, after.Status, after.Retried)]++
	}
	for k, v := range d {
		if v == 0 {
			delete(d, k)
		}
	}
	return d
}

// countsUpdate is the Update that applies delta to a pipeline's counts, or
// nil when there is nothing to change.
func (s *Store) countsUpdate(pipelineID int64, delta map[string]int64) *types.Update {
	if len(delta) == 0 {
		return nil
	}
	keys := make([]string, 0, len(delta))
	for k := range delta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	expr := "ADD"
	names := map[string]string{"#n": "n"}
	values := map[string]types.AttributeValue{}
	for i, k := range keys {
		if i > 0 {
			expr += ","
		}
		expr += fmt.Sprintf(" #n.#k%d :d%d", i, i)
		names[fmt.Sprintf("#k%d", i)] = k
		values[fmt.Sprintf(":d%d", i)] = num(delta[k])
	}
	return &types.Update{
		TableName: aws.String(s.table), Key: pipelineKey(pipelineID),
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ConditionExpression: aws.String("attribute_exists(#n)"),
	}
}
