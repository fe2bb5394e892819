// Package files is what the handlers ask of the job files store, without
// the store itself: its interface, what a read asks and answers, and its
// errors. The S3 implementation (shared/jobfiles) links the S3 client, so
// only the bootstraps of the functions that read or delete files link it
// (the agreement test checks each bootstrap against its permissions).
package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Store reads, presigns and deletes the files of jobs: logs and artifacts.
type Store interface {
	// TraceURL is a presigned GET of a job's whole log, valid for ttl.
	TraceURL(ctx context.Context, projectID, jobID int64, ttl time.Duration) (string, error)
	// ReadTrace reads a log (or a range of it) with one GetObject.
	ReadTrace(ctx context.Context, projectID, jobID int64, rd TraceRead) (*TraceObject, error)
	// StatTrace reads a log's length and validators, none of its bytes.
	StatTrace(ctx context.Context, projectID, jobID int64, ifNoneMatch string) (*TraceObject, error)
	// ArchiveURL is a presigned GET (or HEAD) of a job's artifacts zip.
	ArchiveURL(ctx context.Context, projectID, jobID int64, d Download, head bool, ttl time.Duration) (string, error)
	// OpenArchive reads a job's zip in ranges. Errors: ErrNoObject.
	OpenArchive(ctx context.Context, projectID, jobID int64) (Archive, error)
	// TempURL copies r to an object of its own and presigns a GET of it.
	TempURL(ctx context.Context, r io.Reader, d Download, ttl time.Duration) (string, error)
	// DeleteArchive deletes a job's zip; deleting what is gone succeeds.
	DeleteArchive(ctx context.Context, projectID, jobID int64) error
	// DeleteAll deletes every file of a job; deleting what is gone succeeds.
	DeleteAll(ctx context.Context, projectID, jobID int64) error
}

// Archive is a job's zip read in ranges: what archive/zip needs, and a hint
// of how much the next read that misses should fetch (0: what it asks).
type Archive interface {
	io.ReaderAt
	Size() int64
	Hint(n int64)
}

// ErrNoObject is a job file that the store does not have.
var ErrNoObject = errors.New("no such job file")

// Download is how S3 must present a presigned object to the client.
type Download struct {
	ContentType        string
	ContentDisposition string
}

// OffsetRange is the S3 Range of GitLab's byte_offset and byte_limit (0: to
// the end); "" reads the whole object.
func OffsetRange(offset, limit int64) string {
	switch {
	case limit > 0:
		return fmt.Sprintf("bytes=%d-%d", offset, offset+limit-1)
	case offset > 0:
		return fmt.Sprintf("bytes=%d-", offset)
	}
	return ""
}

// TraceRead is one read of a log: an S3 Range ("" for the whole object) and
// the validators S3 checks first, so that an unchanged log costs no bytes.
type TraceRead struct {
	Range           string
	IfNoneMatch     string    // one entity tag, as S3 compares it
	IfModifiedSince time.Time // zero: none
}

// TraceObject is what S3 answered about a log: the bytes read (none for a
// HEAD or a 304), where they start, the object's whole length and its
// validators. Missing, NotModified and Unsatisfiable are S3's NoSuchKey, 304
// and InvalidRange.
type TraceObject struct {
	Data          []byte
	Start         int64
	Size          int64
	ETag          string
	LastModified  time.Time
	Missing       bool
	NotModified   bool
	Unsatisfiable bool
}
