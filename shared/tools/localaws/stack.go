package localaws

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	bolt "go.etcd.io/bbolt"
)

// Stack is the local stand-in for the AWS side of a deployment: DynamoDB
// Local persisted on disk and an S3 server on a bolt file, both on loopback.
type Stack struct {
	Dynamo  *Process
	s3      *http.Server
	closeS3 func() error
	// Env is the environment the functions and tools need to reach the
	// stack: the SDK's standard variables plus JOBS_TABLE and ARTIFACTS_BUCKET.
	Env map[string]string
}

// StackOptions chooses ports and where data lives.
type StackOptions struct {
	DataDir string // DynamoDB Local's files and the S3 bolt file
	// InMemory keeps the tables and objects in memory (lost when the stack
	// stops), so that write rates are not the disk's.
	InMemory   bool
	DynamoPort int
	S3Port     int
	Table      string
	Bucket     string
}

// StartStack starts DynamoDB Local and the S3 server.
func StartStack(root string, o StackOptions) (*Stack, error) {
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(o.DataDir, "dynamodb")
	if o.InMemory {
		dbPath = ""
	}
	ddb, err := StartDynamoDB(root, dbPath, o.DynamoPort)
	if err != nil {
		return nil, err
	}
	var backend gofakes3.Backend
	closeS3 := func() error { return nil }
	if o.InMemory {
		backend = s3mem.New()
	} else {
		db, err := bolt.Open(filepath.Join(o.DataDir, "s3.bolt"), 0o644, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			ddb.Stop()
			return nil, fmt.Errorf("open S3 data: %w", err)
		}
		backend, closeS3 = s3bolt.New(db), db.Close
	}
	h, err := NewS3(backend, o.Bucket)
	if err != nil {
		ddb.Stop()
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(o.S3Port))
	if err != nil {
		ddb.Stop()
		return nil, err
	}
	srv := &http.Server{Handler: h}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "local S3:", err)
		}
	}()
	s := &Stack{Dynamo: ddb, s3: srv, closeS3: closeS3, Env: LocalEnv(ddb.Endpoint, "http://"+l.Addr().String(), o.Table, o.Bucket)}
	return s, nil
}

// LocalEnv is the environment that points the SDK at local endpoints.
func LocalEnv(dynamoEndpoint, s3Endpoint, table, bucket string) map[string]string {
	return map[string]string{
		"AWS_REGION":                       "us-east-1",
		"AWS_ACCESS_KEY_ID":                "local",
		"AWS_SECRET_ACCESS_KEY":            "local",
		"AWS_ENDPOINT_URL_DYNAMODB":        dynamoEndpoint,
		"AWS_ENDPOINT_URL_S3":              s3Endpoint,
		"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
		"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
		"S3_FORCE_PATH_STYLE":              "true",
		"JOBS_TABLE":                       table,
		"ARTIFACTS_BUCKET":                 bucket,
	}
}

// Setenv puts the stack's environment into this process's.
func (s *Stack) Setenv() {
	for k, v := range s.Env {
		os.Setenv(k, v)
	}
}

// Stop stops both servers.
func (s *Stack) Stop() {
	_ = s.s3.Close()
	_ = s.closeS3()
	s.Dynamo.Stop()
}
