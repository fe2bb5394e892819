package world

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/progress"
)

// splitAll is every element the splitter finds in array doc (whole, '['
// first) and the offset after each. A short doc is read a byte at a time,
// so that every element spans reads (the splitter scans an element again
// after each read: quadratic then); a long one as a file is, in reads of
// what the buffer holds.
func splitAll(doc string) (elems []string, offs []int64, err error) {
	i := strings.IndexByte(doc, '[')
	var r io.Reader = strings.NewReader(doc[i+1:])
	if len(doc) <= 512 {
		r = iotest.OneByteReader(r)
	}
	sp := &splitter{r: r, off: int64(i + 1), first: true}
	for {
		raw, err := sp.next()
		if err != nil || raw == nil {
			return elems, offs, err
		}
		elems, offs = append(elems, string(raw)), append(offs, sp.off)
	}
}

// decodeAll is the same by encoding/json's Decoder, as the passes read
// arrays before.
func decodeAll(doc string) (elems []string, offs []int64, err error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, err
		}
		elems, offs = append(elems, string(raw)), append(offs, dec.InputOffset())
	}
	_, err = dec.Token()
	return elems, offs, err
}

// The splitter finds the elements and offsets encoding/json's Decoder
// finds, in arrays valid and not.
func TestSplitterAgreesWithDecoder(t *testing.T) {
	big := `{"log":"` + strings.Repeat(`x\"]}`, 3000) + `"}`
	for _, tc := range []struct{ name, doc string }{
		{"empty", `[]`},
		{"spaced empty", " [ \n\t ] "},
		{"objects", `[{"id":1},{"id":2,"a":[1,{"b":"]"}]}]`},
		{"scalars", `[1, -2.5e3 ,"x", true,false,null,[] ,{}]`},
		{"escapes and brackets in strings", `[{"s":"a\"b]c}\\"},"\\\\",{"t":"{[,:"}]`},
		{"spacing", "[\n  {\"a\" : 1} ,\n  {\"b\":\t2}\n]\n"},
		{"an element larger than the first read", `[` + big + `,` + big + `]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotOffs, err := splitAll(tc.doc)
			want, wantOffs, werr := decodeAll(tc.doc)
			if err != nil || werr != nil {
				t.Fatalf("split: %v; decoder: %v", err, werr)
			}
			if len(got) != len(want) {
				t.Fatalf("%d elements, want %d: %q", len(got), len(want), got)
			}
			for i := range got {
				var g, w bytes.Buffer
				if json.Compact(&g, []byte(got[i])) != nil || json.Compact(&w, []byte(want[i])) != nil || g.String() != w.String() {
					t.Errorf("element %d: %.80q, want %.80q", i, got[i], want[i])
				}
				if gotOffs[i] != wantOffs[i] {
					t.Errorf("element %d ends at %d, want %d", i, gotOffs[i], wantOffs[i])
				}
			}
		})
	}
	for _, doc := range []string{`[{"a":1}`, `[{"a":1} {"b":2}]`, `[{"a":1},]`, `[,]`, `[{"a":"x`, `[1`, `[{"a":1}}`} {
		if _, _, err := splitAll(doc); err == nil {
			t.Errorf("split %q: no error", doc)
		}
	}
}

// documentFile is doc written to a file and read as the importer reads
// one (the file is open until tb ends).
func documentFile(tb testing.TB, doc string) *document {
	path := filepath.Join(tb.TempDir(), "doc.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	d, err := readDocument(f, progress.Discard())
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// A file source resumed at any element's position reads on from there,
// as the write pass does after a crash, and element reads one.
func TestFileSourceFromPositions(t *testing.T) {
	d := documentFile(t, `{"jobs": [ {"id":1}, {"id":2,"s":"],"} ,{"id":3} ], "pipelines": []}`)
	var all []string
	var at []position
	err := d.jobs.each(position{}, func(i int, raw json.RawMessage, next position) error {
		all, at = append(all, string(raw)), append(at, next)
		return nil
	})
	if err != nil || len(all) != 3 || d.jobs.len() != 3 {
		t.Fatalf("read %q (%d counted): %v", all, d.jobs.len(), err)
	}
	for from := range all {
		pos := position{}
		if from > 0 {
			pos = at[from-1]
		}
		var rest []string
		if err := d.jobs.each(pos, func(i int, raw json.RawMessage, _ position) error {
			if i != from+len(rest) {
				t.Errorf("from %d: index %d", from, i)
			}
			rest = append(rest, string(raw))
			return nil
		}); err != nil || strings.Join(rest, "|") != strings.Join(all[from:], "|") {
			t.Errorf("from %d: %q, %v; want %q", from, rest, err, all[from:])
		}
		raw, err := element(d.jobs, pos)
		if err != nil || string(raw) != all[from] {
			t.Errorf("element %d: %s, %v", from, raw, err)
		}
	}
	if _, err := element(d.jobs, at[2]); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("element past the end: %v, want no element", err)
	}
}

// On any input the splitter never panics, and where encoding/json reads
// an array it finds the same elements and offsets.
func FuzzSplitter(f *testing.F) {
	for _, s := range []string{`[]`, `[{"a":"]"},1,"x\"",[[]],null]`, `[{"a":1} {"b":2}]`, `[1,]`, "[\"\\\\\"]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if !strings.HasPrefix(doc, "[") {
			return
		}
		got, gotOffs, err := splitAll(doc)
		want, wantOffs, werr := decodeAll(doc)
		if werr != nil {
			return
		}
		if err != nil || len(got) != len(want) {
			t.Fatalf("split %q: %q, %v; decoder %q", doc, got, err, want)
		}
		for i := range got {
			var g, w bytes.Buffer
			if json.Compact(&g, []byte(got[i])) != nil || json.Compact(&w, []byte(want[i])) != nil || g.String() != w.String() || gotOffs[i] != wantOffs[i] {
				t.Fatalf("split %q: element %d %q at %d, want %q at %d", doc, i, got[i], gotOffs[i], want[i], wantOffs[i])
			}
		}
	})
}

// What the passes pay to find each element of a document file (the
// splitter; encoding/json's Decoder took 5 times as long, BENCHMARKS.md):
// 2,000 jobs of about 3 KB, a kilobyte of it their log.
func BenchmarkFileSourceEach(b *testing.B) {
	job := `{"id":%d,"status":"success","stage":"test","name":"rspec 1/4","ref":"main","tag":false,` +
		`"user":{"id":1,"username":"u","name":"U \"1\"","state":"active","web_url":"https://gitlab.example.com/u"},` +
		`"pipeline":{"id":7,"project_id":1,"ref":"main","sha":"0ff3ae19","status":"success"},"tag_list":["docker","linux"],` +
		`"trace":"` + strings.Repeat(`\u001b[32mok\u001b[0m {[\"]}]\n`, 40) + `"}`
	var doc strings.Builder
	doc.WriteString(`{"jobs":[`)
	for i := range 2000 {
		if i > 0 {
			doc.WriteString(",\n")
		}
		fmt.Fprintf(&doc, job, i+1)
	}
	doc.WriteString("]}")
	d := documentFile(b, doc.String())
	if d.jobs.len() != 2000 {
		b.Fatalf("%d jobs", d.jobs.len())
	}
	b.SetBytes(int64(doc.Len()))
	for b.Loop() {
		if err := d.jobs.each(position{}, func(int, json.RawMessage, position) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
