package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// LatestRefBuild is GitLab's latest_successful_build_for_ref: the build
// named name, with artifacts, of the newest successful pipeline of ref (a
// branch or a tag of that name alike), the parent pipeline before its
// children. One Query on GSI5 that reads one item.
//
// Errors: ErrNotFound when there is none; else the DynamoDB client's.
func (s *Store) LatestRefBuild(ctx context.Context, projectID int64, ref, name string) (*jobs.Job, error) {
	res, err := s.query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(GSIRefArtifacts),
		KeyConditionExpression:    aws.String("GSI5PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(refArtifactsPK(projectID, ref, name))},
		ScanIndexForward:          aws.Bool(true),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return nil, fmt.Errorf("latest build of %q for %q: %w", name, ref, err)
	}
	if len(res.Items) == 0 {
		return nil, ErrNotFound
	}
	return decodeJob(res.Items[0])
}

// SearchRefBuild is latest_with_artifacts_for_ref, as GitLab's docs
// describe it: the build named name, with artifacts, of the most recent
// successful pipeline of ref that has one (parent before child). One
// Query on GSI6 that reads one item. Unlike GitLab it is not bounded to the
// ref's 100 most recent successful pipelines.
//
// Errors: ErrNotFound when there is none; else the DynamoDB client's.
func (s *Store) SearchRefBuild(ctx context.Context, projectID int64, ref, name string) (*jobs.Job, error) {
	res, err := s.query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(GSIRefArtifactsSearch),
		KeyConditionExpression:    aws.String("GSI6PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(refArtifactsPK(projectID, ref, name))},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return nil, fmt.Errorf("search build of %q for %q: %w", name, ref, err)
	}
	if len(res.Items) == 0 {
		return nil, ErrNotFound
	}
	return decodeJob(res.Items[0])
}

// ExpireRequestSK is the sort key, under the project's own partition, of a
// request to expire the project's unlocked artifacts: the item whose
// stream record starts the cleanup function, and which stays until the
// cleanup has finished, so that nothing asked for is forgotten.
const ExpireRequestSK = "XR"

// PutExpireRequest records a request to expire a project's unlocked
// artifacts, at time at; a newer request replaces an older one.
//
// Errors: only the DynamoDB client's.
func (s *Store) PutExpireRequest(ctx context.Context, projectID int64, at time.Time) error {
	it := withKey(item{"at": str(at.UTC().Format(time.RFC3339Nano)), "pr": num(projectID)}, key("P#"+id(projectID), ExpireRequestSK))
	if err := s.put(ctx, it); err != nil {
		return fmt.Errorf("expire request of project %d: %w", projectID, err)
	}
	return nil
}

// DoneExpireRequest deletes the request recorded at time at, unless a
// newer one replaced it meanwhile (that one starts its own cleanup).
//
// Errors: only the DynamoDB client's.
func (s *Store) DoneExpireRequest(ctx context.Context, projectID int64, at time.Time) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table),
		Key: key("P#"+id(projectID), ExpireRequestSK), ConditionExpression: aws.String("#at = :at"),
		ExpressionAttributeNames:  map[string]string{"#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": str(at.UTC().Format(time.RFC3339Nano))}})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("expire request of project %d: %w", projectID, err)
	}
	return nil
}

// ExpireRequest reads a project's pending request's time, if any.
//
// Errors: ErrNotFound when there is none; else the DynamoDB client's.
func (s *Store) ExpireRequest(ctx context.Context, projectID int64) (time.Time, error) {
	got, err := s.batchGet(ctx, []item{key("P#"+id(projectID), ExpireRequestSK)})
	if err != nil {
		return time.Time{}, err
	}
	for _, it := range got {
		var r struct {
			At time.Time `db:"at"`
		}
		if err := unmarshal(it, &r); err != nil {
			return time.Time{}, err
		}
		return r.At, nil
	}
	return time.Time{}, ErrNotFound
}
