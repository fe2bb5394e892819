package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// AgentAccess is what a project's jobs may reach of the GitLab agents for
// Kubernetes: the project's group and its ancestors, nearest first, and the
// agents authorized for the project or one of those groups, each once
// (project authorizations first, then the nearest group's), with their
// configuration projects.
type AgentAccess struct {
	Groups         []*jobs.Group
	Agents         []*jobs.Agent
	ConfigProjects map[int64]*jobs.Project
}

// maxGroupDepth bounds the walk up the group tree (GitLab allows 20 levels).
const maxGroupDepth = 20

// AgentAccess reads p's agent authorizations: one Query of the project's
// authorizations, in parallel with one Query per group level (a group's
// partition holds the group and its authorizations, and the parent is known
// only once the group is read), then one BatchGetItem of the configuration
// projects.
//
// Errors: only the DynamoDB client's.
func (s *Store) AgentAccess(ctx context.Context, p *jobs.Project) (*AgentAccess, error) {
	var (
		wg           sync.WaitGroup
		projectItems []item
		projectErr   error
	)
	wg.Go(func() {
		projectItems, projectErr = s.partition(ctx, "P#"+id(p.ID), "A#")
	})
	out := &AgentAccess{ConfigProjects: map[int64]*jobs.Project{}}
	var groupAgents []item
	var walkErr error
	seen := map[int64]bool{}
	for g := p.GroupID; g != 0 && !seen[g] && len(seen) < maxGroupDepth; {
		seen[g] = true
		items, err := s.partition(ctx, "G#"+id(g), "")
		if err != nil {
			walkErr = err
			break
		}
		var grp *jobs.Group
		for _, it := range items {
			if keyString(it) == keyString(groupKey(g)) {
				grp = &jobs.Group{}
				if walkErr = unmarshal(it, grp); walkErr != nil {
					break
				}
			} else {
				groupAgents = append(groupAgents, it)
			}
		}
		if grp == nil || walkErr != nil {
			break
		}
		out.Groups = append(out.Groups, grp)
		g = grp.ParentID
	}
	wg.Wait()
	if projectErr != nil {
		return nil, projectErr
	}
	if walkErr != nil {
		return nil, walkErr
	}
	var configKeys []item
	agents := map[int64]bool{}
	for _, it := range append(projectItems, groupAgents...) {
		a := &jobs.Agent{}
		if err := unmarshal(it, a); err != nil {
			return nil, err
		}
		if agents[a.ID] {
			continue
		}
		agents[a.ID] = true
		out.Agents = append(out.Agents, a)
		configKeys = append(configKeys, projectKey(a.ConfigProjectID))
	}
	if len(configKeys) == 0 {
		return out, nil
	}
	got, err := s.batchGet(ctx, configKeys)
	if err != nil {
		return nil, err
	}
	for _, it := range got {
		cp := &jobs.Project{}
		if err := unmarshal(it, cp); err != nil {
			return nil, err
		}
		out.ConfigProjects[cp.ID] = cp
	}
	return out, nil
}

// partition reads every item of a table partition whose sort key starts
// with prefix ("" for all), in sort key order.
func (s *Store) partition(ctx context.Context, pk, prefix string) ([]item, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
		ConsistentRead:            aws.Bool(true),
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("PK = :pk AND begins_with(SK, :sk)")
		in.ExpressionAttributeValues[":sk"] = str(prefix)
	}
	var out []item
	for {
		res, err := s.query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", pk, err)
		}
		out = append(out, res.Items...)
		if res.LastEvaluatedKey == nil {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}
