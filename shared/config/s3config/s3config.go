// Package s3config is the S3 half of shared/config: the job files store
// from the environment (the SDK's AWS_ENDPOINT_URL_S3, ARTIFACTS_BUCKET,
// S3_FORCE_PATH_STYLE), for the functions that read or delete job files.
// A package of its own so that the other bootstraps link no S3 client.
package s3config

import (
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
)

// Files is the config.Option of the functions that use job files.
func Files(cfg aws.Config, d *api.Deps) error {
	s, err := Store(cfg)
	if err != nil {
		return err
	}
	d.Files = s
	return nil
}

// Store is the job files store of the environment.
func Store(cfg aws.Config) (*jobfiles.Store, error) {
	bucket := os.Getenv("ARTIFACTS_BUCKET")
	if bucket == "" {
		return nil, fmt.Errorf("ARTIFACTS_BUCKET must be set")
	}
	return jobfiles.New(Client(cfg), bucket), nil
}

// Client is the S3 client of cfg, with config's retry and time policy.
func Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, Options, func(o *s3.Options) {
		o.UsePathStyle = os.Getenv("S3_FORCE_PATH_STYLE") == "true"
	})
}

// Options applies config's retry and time policy to an S3 client.
func Options(o *s3.Options) {
	o.Retryer, o.HTTPClient = config.Policy()
}
