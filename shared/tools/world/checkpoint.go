package world

import (
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// checkpoint is where an import of a document file records its plan (the
// file) and how far its writes got (the file + ".next"), each replaced
// whole by a rename, so that a crash at any moment leaves either the old or
// the new record. Every item the import writes is a whole put of a planned
// value, so redoing the batch a crash interrupted writes the same items.
// A nil checkpoint records nothing.
type checkpoint struct {
	path string
	doc  string // the document's SHA-256, the table and planFormat: a checkpoint of another is refused
}

type savedPlan struct {
	Doc  string
	Plan *plan
}

func (im *Importer) checkpoint(doc string) *checkpoint {
	if im.Checkpoint == "" || doc == "" {
		return nil
	}
	return &checkpoint{path: im.Checkpoint, doc: doc + " " + im.Store.Table() + " " + planFormat}
}

// planFormat names the plan's encoding: a checkpoint of an importer that
// planned differently is refused, never misread.
const planFormat = "plan/7"

// load returns the recorded plan and position, or no plan when there is no
// checkpoint yet.
func (c *checkpoint) load() (*plan, position, error) {
	if c == nil {
		return nil, position{}, nil
	}
	f, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, position{}, nil
	}
	if err != nil {
		return nil, position{}, err
	}
	defer f.Close()
	var sp savedPlan
	if err := gob.NewDecoder(f).Decode(&sp); err != nil {
		return nil, position{}, fmt.Errorf("checkpoint %s: %w", c.path, err)
	}
	if sp.Doc != c.doc {
		return nil, position{}, fmt.Errorf("checkpoint %s is of another document, table or importer: remove it to start over", c.path)
	}
	var next position
	b, err := os.ReadFile(c.path + ".next")
	if err == nil {
		err = json.Unmarshal(b, &next)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, position{}, fmt.Errorf("checkpoint %s.next: %w", c.path, err)
	}
	return sp.Plan, next, nil
}

func (c *checkpoint) savePlan(pl *plan) error {
	if c == nil {
		return nil
	}
	return replace(c.path, func(f *os.File) error { return gob.NewEncoder(f).Encode(savedPlan{c.doc, pl}) })
}

func (c *checkpoint) saveNext(p position) error {
	if c == nil {
		return nil
	}
	return replace(c.path+".next", func(f *os.File) error { return json.NewEncoder(f).Encode(p) })
}

func (c *checkpoint) remove() error {
	if c == nil {
		return nil
	}
	for _, p := range []string{c.path + ".next", c.path} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// replace writes path whole: a new file, then a rename over the old one.
func replace(path string, write func(*os.File) error) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
