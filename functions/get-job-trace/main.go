// Command get-job-trace is the Lambda function behind its route in template.yaml.
package main

import (
	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config/s3config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/lambdafn"
)

func main() { lambdafn.Start(api.GetJobTrace, s3config.Files) }
