package world

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/progress"
)

// A document's jobs are read one at a time, twice (see Importer.run), from
// a jobSource: the World's own slice, or the document's file.
type jobSource interface {
	// each calls fn with every job from position from on, and the position
	// after it.
	each(from position, fn func(i int, raw json.RawMessage, next position) error) error
	len() int
}

// position is where a job starts in its source: its index and, in a file,
// the byte offset just after the job before it.
type position struct {
	Index  int
	Offset int64
}

type sliceSource []json.RawMessage

func (s sliceSource) len() int { return len(s) }

func (s sliceSource) each(from position, fn func(int, json.RawMessage, position) error) error {
	for i := from.Index; i < len(s); i++ {
		if err := fn(i, s[i], position{Index: i + 1}); err != nil {
			return err
		}
	}
	return nil
}

// fileSource is the jobs array of a document file, which starts at byte
// start (its '['); it is read from there, or from a position, with a
// decoder of its own, flat in memory whatever the document's size.
type fileSource struct {
	f     *os.File
	size  int64
	start int64
	n     int
}

func (s *fileSource) len() int { return s.n }

func (s *fileSource) each(from position, fn func(int, json.RawMessage, position) error) error {
	// Mid-array, the decoder is handed "[null" before the rest (",{...}...]"),
	// so that it reads the rest as the array's further elements.
	if s.start < 0 {
		return nil
	}
	prefix, off := "[", s.start+1
	if from.Index > 0 {
		prefix, off = "[null", from.Offset
	}
	dec := json.NewDecoder(io.MultiReader(strings.NewReader(prefix), io.NewSectionReader(s.f, off, s.size-off)))
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	var raw json.RawMessage
	if from.Index > 0 {
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
	}
	for i := from.Index; dec.More(); i++ {
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("job %d of the document: %w", i, err)
		}
		next := position{Index: i + 1, Offset: off + dec.InputOffset() - int64(len(prefix))}
		if err := fn(i, raw, next); err != nil {
			return err
		}
	}
	return nil
}

// readDocument reads a document's sections, whatever their order, into a
// World without jobs, and finds its jobs array, which it reads through
// without keeping it. It also returns the document's SHA-256, which names
// it in a checkpoint.
func readDocument(f *os.File, meter *progress.Meter) (*World, *fileSource, string, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, nil, "", err
	}
	phase := meter.Phase("read", "bytes", st.Size())
	defer phase.Done()
	sum := sha256.New()
	in := io.TeeReader(&counting{r: f, phase: phase}, sum)
	dec := json.NewDecoder(in)
	w := &World{}
	src := &fileSource{f: f, size: st.Size(), start: -1}
	sections := map[string]any{"instance_url": &w.InstanceURL, "users": &w.Users, "tokens": &w.Tokens,
		"groups": &w.Groups, "projects": &w.Projects, "pipelines": &w.Pipelines, "runners": &w.Runners,
		"agents": &w.Agents}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, "", fmt.Errorf("read world: want a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, "", fmt.Errorf("read world: %w", err)
		}
		k, _ := t.(string)
		if k == "jobs" {
			if err := src.scan(dec); err != nil {
				return nil, nil, "", err
			}
			continue
		}
		v, ok := sections[k]
		if !ok {
			v = new(json.RawMessage) // unknown keys are skipped, as before
		}
		if err := dec.Decode(v); err != nil {
			return nil, nil, "", fmt.Errorf("read world: %s: %w", k, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, "", fmt.Errorf("read world: %w", err)
	}
	if _, err := io.Copy(io.Discard, in); err != nil { // the rest, for the sum
		return nil, nil, "", err
	}
	return w, src, hex.EncodeToString(sum.Sum(nil)), nil
}

// scan notes where the jobs array starts and counts its jobs.
func (s *fileSource) scan(dec *json.Decoder) error {
	t, err := dec.Token()
	if t == nil && err == nil { // "jobs": null
		return nil
	}
	if err != nil || t != json.Delim('[') {
		return fmt.Errorf("read world: jobs: want an array")
	}
	s.start = dec.InputOffset() - 1
	var raw json.RawMessage
	for s.n = 0; dec.More(); s.n++ {
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("read world: job %d: %w", s.n, err)
		}
	}
	_, err = dec.Token()
	return err
}

type counting struct {
	r     io.Reader
	phase *progress.Phase
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.phase.Add(int64(n))
	return n, err
}
