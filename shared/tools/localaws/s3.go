package localaws

import (
	"fmt"
	"net/http"

	"github.com/johannesboyne/gofakes3"
)

// NewS3 serves the S3 protocol from backend, with bucket created. Clients
// must use path-style addressing and the when_required checksum settings:
// gofakes3 sends whole-object checksums on ranged reads.
func NewS3(backend gofakes3.Backend, bucket string) (http.Handler, error) {
	if ok, err := backend.BucketExists(bucket); err != nil {
		return nil, err
	} else if !ok {
		if err := backend.CreateBucket(bucket); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}
	return gofakes3.New(backend).Server(), nil
}
