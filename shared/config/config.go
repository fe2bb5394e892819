// Package config builds the handlers' dependencies from the environment,
// once per cold start: the SDK's standard chain (AWS_REGION, credentials,
// AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, checksum settings) plus
// JOBS_TABLE, ARTIFACTS_BUCKET and S3_FORCE_PATH_STYLE.
package config

import (
	"context"
	"fmt"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// Clients are the AWS clients built from the environment.
type Clients struct {
	DynamoDB *dynamodb.Client
	S3       *s3.Client
	Table    string
	Bucket   string
}

// LoadClients reads the environment and builds the clients.
func LoadClients(ctx context.Context) (*Clients, error) {
	table, bucket := os.Getenv("JOBS_TABLE"), os.Getenv("ARTIFACTS_BUCKET")
	if table == "" || bucket == "" {
		return nil, fmt.Errorf("JOBS_TABLE and ARTIFACTS_BUCKET must be set")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return &Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			// TLS already guards integrity; DynamoDB Local sends no CRC on
			// errors, which would log a warning per conditional failure.
			o.DisableValidateResponseChecksum = true
		}),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.UsePathStyle = os.Getenv("S3_FORCE_PATH_STYLE") == "true"
		}),
		Table:  table,
		Bucket: bucket,
	}, nil
}

// Load builds the handlers' dependencies from the environment.
func Load(ctx context.Context) (*api.Deps, error) {
	c, err := LoadClients(ctx)
	if err != nil {
		return nil, err
	}
	now, err := clock()
	if err != nil {
		return nil, err
	}
	return &api.Deps{
		Store: store.New(c.DynamoDB, c.Table),
		Files: jobfiles.New(c.S3, c.Bucket),
		Now:   now,
		Log:   logging.New(os.Stdout),
	}, nil
}

// FixedTimeEnv, when set (RFC 3339), stops the handlers' clock there, so that
// a bootstrap under the emulator renders durations and expiries as the
// golden responses do. Never set on AWS (the agreement test checks the template).
const FixedTimeEnv = "JOBS_API_FIXED_TIME"

func clock() (func() time.Time, error) {
	v := os.Getenv(FixedTimeEnv)
	if v == "" {
		return time.Now, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FixedTimeEnv, err)
	}
	return func() time.Time { return t }, nil
}
