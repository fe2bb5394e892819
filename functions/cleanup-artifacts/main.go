// Command cleanup-artifacts is the Lambda function the table's stream starts with each
// request to expire a project's artifacts (see template.yaml).
package main

import (
	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
)

func main() { lambdafn.Start(api.CleanupArtifacts, s3config.Files) }
