package world

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/progress"
)

// A document's jobs and pipelines are arrays read one element at a time
// (see Importer.run), from a source: the World's own slice, or the
// document's file.
type source interface {
	// each calls fn with every element from position from on, and the
	// position after it.
	each(from position, fn func(i int, raw json.RawMessage, next position) error) error
	len() int
}

// position is where an element starts in its source: its index and, in a
// file, the byte offset just after the element before it.
type position struct {
	Index  int
	Offset int64
}

// errFound ends an each that looks for one element.
var errFound = errors.New("found")

// element reads the one element of src at position at.
func element(src source, at position) (json.RawMessage, error) {
	var out json.RawMessage
	err := src.each(at, func(_ int, raw json.RawMessage, _ position) error {
		out = raw
		return errFound
	})
	if err == nil {
		return nil, fmt.Errorf("no element %d", at.Index)
	}
	if !errors.Is(err, errFound) {
		return nil, err
	}
	return out, nil
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

// fileSource is an array (of what: "job", "pipeline") of a document file,
// which starts at byte start (its '['); it is read from there, or from a
// position, with a decoder of its own, flat in memory whatever the
// document's size. The raw element fn is given is reused once fn returns.
type fileSource struct {
	what  string
	f     *os.File
	size  int64
	start int64
	n     int
}

func (s *fileSource) len() int { return s.n }

func (s *fileSource) each(from position, fn func(int, json.RawMessage, position) error) error {
	if s.start < 0 {
		return nil
	}
	// From the start, the first element follows the '['; mid-array, a ','
	// (or the ']') follows the offset after the element before.
	sp := &splitter{off: s.start + 1, first: true}
	if from.Index > 0 {
		sp.off, sp.first = from.Offset, false
	}
	sp.r = io.NewSectionReader(s.f, sp.off, s.size-sp.off)
	for i := from.Index; ; i++ {
		raw, err := sp.next()
		if err != nil {
			return fmt.Errorf("%s %d of the document: %w", s.what, i, err)
		}
		if raw == nil {
			return nil
		}
		if err := fn(i, raw, position{Index: i + 1, Offset: sp.off}); err != nil {
			return err
		}
	}
}

// splitter reads the elements of a JSON array one at a time by their byte
// spans (valueEnd), from just inside the array or just after an element.
// readDocument checked the whole document with encoding/json first, so
// the passes need only where each element ends; encoding/json's scanner,
// run again on every element of both passes, was a sixth of the
// importer's CPU. What it does not check, the decoding of each element
// does: a file changed since it was read gives errors, never a panic.
type splitter struct {
	r     io.Reader
	buf   []byte // read, not yet handed out: buf[at:]
	at    int
	off   int64 // the file offset of buf[at]
	eof   bool
	first bool // no element handed out yet
}

// splitterRead is how much the splitter reads at first: a listed
// pipeline read at its position needs about a kilobyte.
const splitterRead = 4 << 10

// next is the next element's bytes, valid until the call after, or nil
// after the array's ']'.
func (sp *splitter) next() (json.RawMessage, error) {
	c, err := sp.peek()
	if err != nil {
		return nil, err
	}
	if c == ']' {
		return nil, nil
	}
	if !sp.first {
		if c != ',' {
			return nil, fmt.Errorf("want ',' or ']' between elements, got %q", c)
		}
		sp.advance(1)
		if _, err := sp.peek(); err != nil {
			return nil, err
		}
	}
	sp.first = false
	for {
		// A value that runs to the end of what was read may go on.
		end := valueEnd(sp.buf, sp.at)
		if end == sp.at {
			return nil, fmt.Errorf("want a value, got %q", sp.buf[sp.at])
		}
		if end > sp.at && (end < len(sp.buf) || sp.eof) {
			raw := sp.buf[sp.at:end]
			sp.advance(end - sp.at)
			return raw, nil
		}
		if sp.eof {
			return nil, io.ErrUnexpectedEOF
		}
		if err := sp.fill(); err != nil {
			return nil, err
		}
	}
}

// peek skips white space and returns the byte after it.
func (sp *splitter) peek() (byte, error) {
	for {
		if i := skipSpace(sp.buf, sp.at); i < len(sp.buf) {
			sp.advance(i - sp.at)
			return sp.buf[sp.at], nil
		}
		sp.advance(len(sp.buf) - sp.at)
		if sp.eof {
			return 0, io.ErrUnexpectedEOF
		}
		if err := sp.fill(); err != nil {
			return 0, err
		}
	}
}

func (sp *splitter) advance(n int) { sp.at, sp.off = sp.at+n, sp.off+int64(n) }

// fill reads more after what is unread, which it first moves to the
// front; the buffer doubles when the unread part fills half of it.
func (sp *splitter) fill() error {
	unread := copy(sp.buf, sp.buf[sp.at:])
	sp.buf, sp.at = sp.buf[:unread], 0
	switch {
	case cap(sp.buf) == 0:
		sp.buf = make([]byte, 0, splitterRead)
	case unread > cap(sp.buf)/2:
		sp.buf = append(make([]byte, 0, 2*cap(sp.buf)), sp.buf...)
	}
	n, err := sp.r.Read(sp.buf[unread:cap(sp.buf)])
	sp.buf = sp.buf[:unread+n]
	if errors.Is(err, io.EOF) {
		sp.eof, err = true, nil
	}
	return err
}

// document is a document file's small sections, read whole into a World
// without jobs and pipelines, and its jobs and pipelines arrays, found and
// read through without keeping them; sum is its SHA-256, which names it in
// a checkpoint.
type document struct {
	world           *World
	jobs, pipelines *fileSource
	sum             string
}

// readDocument reads a document file, its sections in any order.
func readDocument(f *os.File, meter *progress.Meter) (*document, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	phase := meter.Phase("read", "bytes", st.Size())
	defer phase.Done()
	sum := sha256.New()
	in := io.TeeReader(&counting{r: f, phase: phase}, sum)
	dec := json.NewDecoder(in)
	d := &document{world: &World{}}
	arrays := map[string]**fileSource{"jobs": &d.jobs, "pipelines": &d.pipelines}
	for k, a := range arrays {
		*a = &fileSource{what: strings.TrimSuffix(k, "s"), f: f, size: st.Size(), start: -1}
	}
	w := d.world
	sections := map[string]any{"instance_url": &w.InstanceURL, "users": &w.Users, "tokens": &w.Tokens,
		"groups": &w.Groups, "projects": &w.Projects, "runners": &w.Runners, "agents": &w.Agents}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("read world: want a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read world: %w", err)
		}
		k, _ := t.(string)
		if a, ok := arrays[k]; ok {
			if err := (*a).scan(dec); err != nil {
				return nil, err
			}
			continue
		}
		v, ok := sections[k]
		if !ok {
			v = new(json.RawMessage) // unknown keys are skipped, as before
		}
		if err := dec.Decode(v); err != nil {
			return nil, fmt.Errorf("read world: %s: %w", k, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("read world: %w", err)
	}
	if _, err := io.Copy(io.Discard, in); err != nil { // the rest, for the sum
		return nil, err
	}
	d.sum = hex.EncodeToString(sum.Sum(nil))
	return d, nil
}

// scan notes where the array starts and counts its elements.
func (s *fileSource) scan(dec *json.Decoder) error {
	t, err := dec.Token()
	if t == nil && err == nil { // "jobs": null
		s.start, s.n = -1, 0
		return nil
	}
	if err != nil || t != json.Delim('[') {
		return fmt.Errorf("read world: %ss: want an array", s.what)
	}
	s.start = dec.InputOffset() - 1
	var raw json.RawMessage
	for s.n = 0; dec.More(); s.n++ {
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("read world: %s %d: %w", s.what, s.n, err)
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
