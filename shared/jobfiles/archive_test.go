package jobfiles_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/files"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// largeArchive is a runner-like upload: many small files and some big
// incompressible ones, over 65,535 entries (so zip64 end records).
func largeArchive(t testing.TB, files, bigFiles, bigSize int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, bigSize)
	for i := range bigFiles {
		for j := range big {
			big[j] = byte(r.Uint32())
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("big/%03d.bin", i), Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(big)
	}
	for i := range files {
		w, err := zw.Create(fmt.Sprintf("src/pkg%03d/file%05d.go", i%500, i))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "package pkg%03d\n\n// File %d of the build output.\nconst N%d = %d\n", i%500, i, i, i)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func putArchive(t testing.TB, env *testenv.Env, data []byte) {
	t.Helper()
	if _, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(env.Bucket),
		Key: aws.String(jobfiles.ArchiveKey(1, 1)), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
}

// readOne reads one entry through ranged GETs, as the single-file routes do.
func readOne(t testing.TB, files files.Store, name string) ([]byte, jobfiles.Reads) {
	t.Helper()
	ra, err := files.OpenArchive(context.Background(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(ra, ra.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		ra.Hint(int64(30+len(f.Name)+len(f.Extra)+256) + int64(f.CompressedSize64))
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		return data, ra.(*jobfiles.Ranged).Reads
	}
	t.Fatalf("no entry %s", name)
	return nil, jobfiles.Reads{}
}

// One file of a large zip64 archive costs three ranged GETs (the tail, the
// directory, the entry) and about the directory's size in bytes.
func TestRangedReadOfLargeArchive(t *testing.T) {
	env := testenv.New(t)
	data := largeArchive(t, 70000, 4, 4<<20)
	putArchive(t, env, data)
	got, reads := readOne(t, env.Files, "src/pkg123/file12623.go")
	if want := "package pkg123\n\n// File 12623 of the build output.\nconst N12623 = 12623\n"; string(got) != want {
		t.Fatalf("entry %q", got)
	}
	if reads.Gets > 3 || reads.Bytes > int64(len(data))/2 {
		t.Errorf("%+v for one file of %d bytes", reads, len(data))
	}
}

// BenchmarkSingleFile compares one file out of a large archive read with
// ranged GETs against reading the whole archive (what a function without
// ranged reads would do): GETs and bytes per file, as BENCHMARKS.md reports.
func BenchmarkSingleFile(b *testing.B) {
	env := testenv.New(b)
	data := largeArchive(b, 70000, 16, 4<<20)
	putArchive(b, env, data)
	const name = "src/pkg123/file12623.go"
	b.Run("ranged", func(b *testing.B) {
		var reads jobfiles.Reads
		for b.Loop() {
			_, reads = readOne(b, env.Files, name)
		}
		b.ReportMetric(float64(reads.Gets), "GETs/op")
		b.ReportMetric(float64(reads.Bytes), "S3-bytes/op")
		b.ReportMetric(float64(len(data)), "archive-bytes")
	})
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			res, err := env.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket),
				Key: aws.String(jobfiles.ArchiveKey(1, 1))})
			if err != nil {
				b.Fatal(err)
			}
			all, _ := io.ReadAll(res.Body)
			res.Body.Close()
			zr, err := zip.NewReader(bytes.NewReader(all), int64(len(all)))
			if err != nil {
				b.Fatal(err)
			}
			f, err := zr.Open(name)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.ReadAll(f)
			f.Close()
		}
		b.ReportMetric(1, "GETs/op")
		b.ReportMetric(float64(len(data)), "S3-bytes/op")
	})
}
