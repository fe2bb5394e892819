package jobfiles

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/files"
)

// ArchiveURL is a presigned GET (or, for head, HEAD) of one job's
// artifacts zip, valid for ttl: the one object, the one method, with the
// headers GitLab sends. Signing makes no request.
func (s *Store) ArchiveURL(ctx context.Context, projectID, jobID int64, d files.Download, head bool, ttl time.Duration) (string, error) {
	return s.presignObject(ctx, ArchiveKey(projectID, jobID), d, head, ttl)
}

func (s *Store) presignObject(ctx context.Context, key string, d files.Download, head bool, ttl time.Duration) (string, error) {
	bucket, k := aws.String(s.bucket), aws.String(key)
	ct, cd := aws.String(d.ContentType), aws.String(d.ContentDisposition)
	var req *v4.PresignedHTTPRequest
	var err error
	if head {
		req, err = s.presign.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: k,
			ResponseContentType: ct, ResponseContentDisposition: cd}, s3.WithPresignExpires(ttl))
	} else {
		req, err = s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: k,
			ResponseContentType: ct, ResponseContentDisposition: cd}, s3.WithPresignExpires(ttl))
	}
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", key, err)
	}
	return req.URL, nil
}

// Reads counts the ranged GETs of an object and the bytes they returned.
type Reads struct {
	Gets  int
	Bytes int64
}

// Ranged is an io.ReaderAt over one S3 object, by ranged GETs: what
// archive/zip needs to read a zip's directory and one entry without the
// rest of the archive. A read that misses what was fetched fetches from its
// offset up to readahead bytes (never past the next fetched segment, so
// the directory read after the tail costs one GET), or what Hint asked.
// Nothing outlives the request that made it.
type Ranged struct {
	s    *Store
	key  string
	size int64
	ctx  context.Context

	mu    sync.Mutex
	segs  []segment // fetched, oldest first; at most maxSegments
	hint  int64     // bytes the next miss fetches at least
	Reads Reads
}

type segment struct {
	off  int64
	data []byte
}

const (
	// tailBytes is the first GET: the end-of-central-directory record (with
	// its comment of up to 64 KiB, and the zip64 locator and record), and
	// with it the whole directory of most archives.
	tailBytes = 128 << 10
	// readahead bounds a miss's GET: the directory of a large archive in
	// one read, or an entry streamed in steps of this size.
	readahead   = 8 << 20
	maxSegments = 4
)

// OpenArchive is a Ranged reader of a job's zip, having fetched its tail.
// Errors: files.ErrNoObject when S3 has no archive.
func (s *Store) OpenArchive(ctx context.Context, projectID, jobID int64) (files.Archive, error) {
	r := &Ranged{s: s, key: ArchiveKey(projectID, jobID), ctx: ctx}
	// The tail's GET names the object's size too (Content-Range).
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(r.key),
		Range: aws.String(fmt.Sprintf("bytes=-%d", tailBytes))}
	res, err := s.s3.GetObject(ctx, in)
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidRange" {
		// S3 answers a suffix longer than the object with all of it; some
		// S3 emulators refuse it instead: read the whole (small) object.
		in.Range = nil
		res, err = s.s3.GetObject(ctx, in)
	}
	if err != nil {
		return nil, objectError(r.key, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.key, err)
	}
	r.size = int64(len(data))
	if cr := aws.ToString(res.ContentRange); cr != "" {
		var a, b, total int64
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &a, &b, &total); err == nil {
			r.size = total
		}
	}
	r.Reads = Reads{Gets: 1, Bytes: int64(len(data))}
	r.segs = []segment{{off: r.size - int64(len(data)), data: data}}
	return r, nil
}

func objectError(key string, err error) error {
	var noKey *types.NoSuchKey
	var api smithy.APIError
	if errors.As(err, &noKey) || (errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound")) {
		return fmt.Errorf("%s: %w", key, files.ErrNoObject)
	}
	return fmt.Errorf("get %s: %w", key, err)
}

// Size is the object's size.
func (r *Ranged) Size() int64 { return r.size }

// Hint makes the next miss fetch at least n bytes: an entry whose size the
// directory told, in one GET with its local header.
func (r *Ranged) Hint(n int64) {
	r.mu.Lock()
	r.hint = n
	r.mu.Unlock()
}

// ReadAt reads from what was fetched, fetching only the gaps: a read
// across the end of the directory and the start of the tail costs nothing.
func (r *Ranged) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	want := int(min(int64(len(p)), r.size-off))
	for n := 0; n < want; {
		pos := off + int64(n)
		if s := r.covering(pos); s != nil {
			n += copy(p[n:want], s.data[pos-s.off:])
			continue
		}
		if err := r.fetch(pos, int64(want-n)); err != nil {
			return n, err
		}
	}
	return r.short(want, len(p))
}

// covering is the fetched segment holding byte pos, if any.
func (r *Ranged) covering(pos int64) *segment {
	for i := range r.segs {
		if s := &r.segs[i]; pos >= s.off && pos < s.off+int64(len(s.data)) {
			return s
		}
	}
	return nil
}

// fetch GETs from pos at least n bytes, or what Hint asked, or readahead,
// but never into a segment fetched already.
func (r *Ranged) fetch(pos, n int64) error {
	span := r.hint
	if span == 0 {
		span = readahead
	}
	r.hint = 0
	end := min(r.size, pos+max(n, span))
	for _, s := range r.segs {
		if s.off > pos && s.off < end {
			end = s.off
		}
	}
	res, err := r.s.s3.GetObject(r.ctx, &s3.GetObjectInput{Bucket: aws.String(r.s.bucket), Key: aws.String(r.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", pos, end-1))})
	if err != nil {
		return objectError(r.key, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("read %s: %w", r.key, err)
	}
	if len(data) == 0 {
		return io.ErrUnexpectedEOF
	}
	r.Reads.Gets++
	r.Reads.Bytes += int64(len(data))
	r.segs = append(r.segs, segment{off: pos, data: data})
	if len(r.segs) > maxSegments {
		r.segs = r.segs[1:]
	}
	return nil
}

// short is io.ReaderAt's rule: fewer bytes than asked come with an error.
func (r *Ranged) short(n, asked int) (int, error) {
	if n < asked {
		return n, io.EOF
	}
	return n, nil
}

// TempPrefix holds copies made for one download (an archive entry too big
// for a Lambda response); the bucket's lifecycle rule deletes them a day
// after, so nothing here needs a record of its own.
const TempPrefix = "tmp/"

// TempURL copies r (through a file in the function's /tmp, as PutObject
// needs a body it can sign) to a fresh object under TempPrefix and presigns
// a GET of it. The copy is this request's own: nothing is shared between
// callers.
func (s *Store) TempURL(ctx context.Context, r io.Reader, d files.Download, ttl time.Duration) (string, error) {
	f, err := os.CreateTemp("", "entry-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return "", fmt.Errorf("copy entry: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	key := TempPrefix + rand.Text()
	if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
		Body: f, ContentType: aws.String(d.ContentType), ContentDisposition: aws.String(d.ContentDisposition)}); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	return s.presignObject(ctx, key, d, false, ttl)
}

// DeleteArchive deletes a job's zip; deleting what is gone succeeds.
func (s *Store) DeleteArchive(ctx context.Context, projectID, jobID int64) error {
	key := ArchiveKey(projectID, jobID)
	if _, err := s.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}
