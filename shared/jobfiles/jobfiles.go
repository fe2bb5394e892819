// Package jobfiles keeps the files of jobs in S3: traces and artifacts, all
// under one prefix per job so that erasing a job is one listing and one
// batch delete.
package jobfiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/files"
)

// Store reads and writes job files in one bucket.
type Store struct {
	s3      *s3.Client
	presign *s3.PresignClient
	bucket  string
}

// The handlers see a Store as files.Store.
var _ files.Store = (*Store)(nil)

// New returns a Store on bucket.
func New(c *s3.Client, bucket string) *Store {
	return &Store{s3: c, presign: s3.NewPresignClient(c), bucket: bucket}
}

// TraceURL is a presigned GET of a job's whole log, valid for ttl, that
// S3 serves as text/plain with GitLab's Content-Disposition: the way out for
// logs too big for a Lambda response. Signing makes no request.
func (s *Store) TraceURL(ctx context.Context, projectID, jobID int64, ttl time.Duration) (string, error) {
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(TraceKey(projectID, jobID)),
		ResponseContentType:        aws.String("text/plain"),
		ResponseContentDisposition: aws.String(fmt.Sprintf(`infile; filename="%d.log"`, jobID)),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign trace: %w", err)
	}
	return req.URL, nil
}

// Prefix is where every file of a job lives.
func Prefix(projectID, jobID int64) string {
	return fmt.Sprintf("projects/%d/jobs/%d/", projectID, jobID)
}

// TraceKey is the object key of a job's log.
func TraceKey(projectID, jobID int64) string { return Prefix(projectID, jobID) + "trace.log" }

// ArchiveKey is the object key of a job's artifacts zip; the name the
// client sees (artifacts.zip, <artifacts:name>.zip) is the job's, not the key's.
func ArchiveKey(projectID, jobID int64) string { return ArtifactKey(projectID, jobID, "archive.zip") }

// ArtifactKey is the object key of one of a job's artifact files.
func ArtifactKey(projectID, jobID int64, filename string) string {
	return Prefix(projectID, jobID) + "artifacts/" + filename
}

// Put stores data under key.
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	_, err := s.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
		Body: bytes.NewReader(data), ContentType: aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Trace reads a job's log from byte offset, at most limit bytes (0: to the
// end), with one ranged GetObject. A missing log or an offset past its end
// reads as empty, as GitLab answers.
func (s *Store) Trace(ctx context.Context, projectID, jobID, offset, limit int64) ([]byte, error) {
	o, err := s.ReadTrace(ctx, projectID, jobID, files.TraceRead{Range: files.OffsetRange(offset, limit)})
	if err != nil {
		return nil, err
	}
	return o.Data, nil
}

// ReadTrace reads a log with one GetObject.
func (s *Store) ReadTrace(ctx context.Context, projectID, jobID int64, rd files.TraceRead) (*files.TraceObject, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(TraceKey(projectID, jobID))}
	if rd.Range != "" {
		in.Range = aws.String(rd.Range)
	}
	if rd.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(rd.IfNoneMatch)
	}
	if !rd.IfModifiedSince.IsZero() {
		in.IfModifiedSince = aws.Time(rd.IfModifiedSince)
	}
	res, err := s.s3.GetObject(ctx, in)
	if o, handled := traceAnswer(err); handled {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get trace: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	o := &files.TraceObject{Data: data, Size: int64(len(data)), ETag: aws.ToString(res.ETag), LastModified: aws.ToTime(res.LastModified)}
	if start, size, ok := parseContentRange(aws.ToString(res.ContentRange)); ok {
		o.Start, o.Size = start, size
	}
	return o, nil
}

// StatTrace reads a log's length and validators with one HeadObject: no
// byte of the log is read.
func (s *Store) StatTrace(ctx context.Context, projectID, jobID int64, ifNoneMatch string) (*files.TraceObject, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(TraceKey(projectID, jobID))}
	if ifNoneMatch != "" {
		in.IfNoneMatch = aws.String(ifNoneMatch)
	}
	res, err := s.s3.HeadObject(ctx, in)
	if o, handled := traceAnswer(err); handled {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("head trace: %w", err)
	}
	return &files.TraceObject{Size: aws.ToInt64(res.ContentLength), ETag: aws.ToString(res.ETag),
		LastModified: aws.ToTime(res.LastModified)}, nil
}

// traceAnswer turns S3's answers that are not failures (no such key, not
// modified, a range past the end) into a TraceObject. HEAD answers carry no
// error code, only the status.
func traceAnswer(err error) (*files.TraceObject, bool) {
	if err == nil {
		return nil, false
	}
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	if errors.As(err, &noKey) || errors.As(err, &notFound) {
		return &files.TraceObject{Missing: true}, true
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidRange" {
		return &files.TraceObject{Unsatisfiable: true}, true
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		switch resp.HTTPStatusCode() {
		case http.StatusNotModified:
			return &files.TraceObject{NotModified: true}, true
		case http.StatusRequestedRangeNotSatisfiable:
			return &files.TraceObject{Unsatisfiable: true}, true
		}
	}
	return nil, false
}

// parseContentRange reads S3's "bytes first-last/size".
func parseContentRange(v string) (start, size int64, ok bool) {
	var last int64
	if _, err := fmt.Sscanf(v, "bytes %d-%d/%d", &start, &last, &size); err != nil {
		return 0, 0, false
	}
	return start, size, true
}

// DeleteAll deletes every file of a job: one ListObjectsV2 and one
// DeleteObjects per thousand files. Deleting what is already gone succeeds,
// so a failed erase is finished by running it again.
func (s *Store) DeleteAll(ctx context.Context, projectID, jobID int64) error {
	pages := s3.NewListObjectsV2Paginator(s.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(Prefix(projectID, jobID)),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list files of job %d: %w", jobID, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		res, err := s.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete files of job %d: %w", jobID, err)
		}
		if len(res.Errors) > 0 {
			e := res.Errors[0]
			return fmt.Errorf("delete %s: %s %s (and %d more)", aws.ToString(e.Key), aws.ToString(e.Code),
				aws.ToString(e.Message), len(res.Errors)-1)
		}
	}
	return nil
}
