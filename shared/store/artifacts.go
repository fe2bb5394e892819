package store

import (
	"context"
	"fmt"

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
	res, err := s.db.Query(ctx, &dynamodb.QueryInput{
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
