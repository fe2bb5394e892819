package world

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// plan is what the first pass over the jobs decides for the second: every
// value of an item that depends on more than the job itself. It is what a
// checkpoint keeps (fields exported for encoding/gob), so that a resumed
// import writes exactly the items the interrupted one would have.
type plan struct {
	Fresh     []int64                   // the jobs to write (not stored yet), ascending
	Ordinals  map[int64]*store.Ordinals // by project, for the fresh builds
	Pipelines map[int64]*pipelinePlan   // every pipeline of the document
	Locks     *locks
	MaxID     int64 // the highest fresh id, for the job id counter
}

// pipelinePlan is when and with what a pipeline item is written.
type pipelinePlan struct {
	First        int              // the job that first embeds it; -1 for a listed pipeline
	Commit       int              // the first of its jobs with a commit, -1 if none
	Counts       map[string]int64 // its job counts once imported: as stored, plus the fresh jobs
	StoredCommit json.RawMessage  // a stored pipeline's commit, kept when no job gives one
}

// at is the job whose batch writes the pipeline (once its document and
// commit are known), -1 for after the jobs.
func (pp *pipelinePlan) at() int {
	if pp.Commit >= 0 {
		return max(pp.First, pp.Commit)
	}
	return pp.First
}

// item is the pipeline to write, p being its document.
func (pp *pipelinePlan) item(p *jobs.Pipeline) *jobs.Pipeline {
	out := *p
	out.Counts = maps.Clone(pp.Counts)
	if out.Commit == nil {
		out.Commit = pp.StoredCommit
	}
	return &out
}

func (pl *plan) fresh(id int64) bool {
	_, ok := slices.BinarySearch(pl.Fresh, id)
	return ok
}

// checkBatch is how many jobs one existence check asks about.
const checkBatch = 2000

// survey is the first pass: it decodes and checks every job, writes the
// users and runners jobs embed, and plans the second pass.
func (im *Importer) survey(ctx context.Context, src jobSource, dir fs.FS, d *sections) (*plan, error) {
	pl := &plan{Ordinals: map[int64]*store.Ordinals{}, Pipelines: map[int64]*pipelinePlan{}, Locks: newLocks()}
	for id, p := range d.listed {
		pl.Pipelines[id] = &pipelinePlan{First: -1, Commit: -1}
		if err := pl.Locks.pipeline(p); err != nil {
			return nil, err
		}
	}
	type seen struct {
		id, project, pipeline int64
		count                 string
		build                 bool
	}
	var (
		mu     sync.Mutex
		builds = map[int64][]int64{} // fresh builds by project
		deltas = map[int64]map[string]int64{}
	)
	checks, cctx := errgroup.WithContext(ctx)
	checks.SetLimit(2)
	check := func(batch []seen) {
		checks.Go(func() error {
			ids := make([]int64, len(batch))
			for i, s := range batch {
				ids[i] = s.id
			}
			stored, err := im.Store.ExistingJobs(cctx, ids)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range batch {
				if stored[s.id] {
					continue
				}
				pl.Fresh = append(pl.Fresh, s.id)
				pl.MaxID = max(pl.MaxID, s.id)
				if s.build {
					builds[s.project] = append(builds[s.project], s.id)
				}
				if deltas[s.pipeline] == nil {
					deltas[s.pipeline] = map[string]int64{}
				}
				deltas[s.pipeline][s.count]++
			}
			return nil
		})
	}
	phase := im.meter().Phase("check", "jobs", int64(src.len()))
	runners := map[int64]bool{}
	now := im.Now()
	var batch []seen
	err := src.each(position{}, func(i int, raw json.RawMessage, _ position) error {
		ij, e, err := decodeJob(raw, now, d.projects, d.listed)
		if err != nil {
			return err
		}
		j := ij.job
		for _, p := range []*jobs.Pipeline{e.pipeline, e.downstream} {
			if p != nil && pl.Pipelines[p.ID] == nil {
				pl.Pipelines[p.ID] = &pipelinePlan{First: i, Commit: -1}
				if err := pl.Locks.pipeline(p); err != nil {
					return err
				}
			}
		}
		if pp := pl.Pipelines[j.PipelineID]; e.commit != nil && pp.Commit < 0 {
			pp.Commit = i
		}
		if u := e.user; u != nil && !d.users[u.ID] {
			d.users[u.ID] = true
			if err := im.Store.PutUser(ctx, u); err != nil {
				return err
			}
		}
		if e.runner != nil && !runners[j.RunnerID] {
			runners[j.RunnerID] = true
			if _, err := im.putRunner(ctx, e.runner); err != nil {
				return err
			}
		}
		if ij.archive != "" {
			if dir == nil {
				return fmt.Errorf("job %d: artifacts_archive %q, but the document has no directory", j.ID, ij.archive)
			}
			if _, err := fs.Stat(dir, ij.archive); err != nil {
				return fmt.Errorf("job %d: artifacts_archive: %w", j.ID, err)
			}
		}
		pl.Locks.see(j)
		batch = append(batch, seen{j.ID, j.ProjectID, j.PipelineID, jobs.CountKey(j.Kind, j.Status, j.Retried), !j.IsBridge()})
		if len(batch) == checkBatch {
			check(batch)
			batch = nil
		}
		phase.Add(1)
		return nil
	})
	check(batch)
	if werr := checks.Wait(); err == nil {
		err = werr
	}
	phase.Done()
	if err != nil {
		return nil, err
	}
	slices.Sort(pl.Fresh)
	stored, err := im.Store.StoredPipelines(ctx, slices.Collect(maps.Keys(pl.Pipelines)))
	if err != nil {
		return nil, err
	}
	for id, pp := range pl.Pipelines {
		pp.Counts = map[string]int64{}
		if s := stored[id]; s != nil {
			maps.Copy(pp.Counts, s.Counts)
			pp.StoredCommit = s.Commit
		}
		for k, n := range deltas[id] {
			pp.Counts[k] += n
		}
	}
	place := im.meter().Phase("place", "projects", int64(len(builds)))
	defer place.Done()
	for pid, ids := range builds {
		if pl.Ordinals[pid], err = im.Store.PlanOrdinals(ctx, pid, ids); err != nil {
			return nil, err
		}
		place.Add(1)
	}
	return pl, nil
}

// writeBatch is how many jobs the second pass decodes before it writes
// them; one batch is written while the next is decoded.
const writeBatch = 1000

// batch is what one round of the second pass writes.
type batch struct {
	jobs      []*importedJob
	pipelines []*jobs.Pipeline
	tokens    []*jobs.Token
	read      int      // jobs of the document it covers
	next      position // where the round after it starts
}

// write is the second pass: from position from on, it decodes each job
// again and writes the fresh ones, the pipelines as the plan says, and the
// job tokens, one batch at a time, recording each batch in the checkpoint.
func (im *Importer) write(ctx context.Context, src jobSource, from position, dir fs.FS, d *sections, pl *plan,
	cp *checkpoint, sum *Summary) error {
	phase := im.meter().Phase("write", "jobs", int64(src.len()))
	defer phase.Done()
	phase.Add(int64(from.Index))
	docs := map[int64]*jobs.Pipeline{} // embedded pipelines not written yet
	now := im.Now()
	var (
		cur      = &batch{}
		inFlight chan error
	)
	flush := func() error {
		if inFlight != nil {
			if err := <-inFlight; err != nil {
				return err
			}
		}
		b := cur
		cur = &batch{}
		inFlight = make(chan error, 1)
		go func() {
			err := im.writeBatch(ctx, dir, b, sum)
			if err == nil {
				err = cp.saveNext(b.next)
			}
			phase.Add(int64(b.read))
			inFlight <- err
		}()
		return nil
	}
	err := src.each(from, func(i int, raw json.RawMessage, next position) error {
		ij, e, err := decodeJob(raw, now, d.projects, d.listed)
		if err != nil {
			return err
		}
		j := ij.job
		for _, p := range []*jobs.Pipeline{e.pipeline, e.downstream} {
			if p != nil && pl.Pipelines[p.ID].First == i {
				docs[p.ID] = p
			}
		}
		for _, id := range []int64{j.PipelineID, j.DownstreamPipelineID} {
			pp := pl.Pipelines[id]
			if pp == nil || pp.at() != i {
				continue
			}
			p := docs[id]
			if l := d.listed[id]; l != nil {
				p = l
			}
			if p == nil { // embedded by a job before a resumed import's start
				p = e.pipeline
				if id != j.PipelineID {
					p = e.downstream
				}
			}
			if pp.Commit == i && id == j.PipelineID {
				p.Commit = e.commit
			}
			cur.pipelines = append(cur.pipelines, pp.item(p))
			delete(docs, id)
		}
		if ij.token != "" {
			tok := &jobs.Token{Hash: HashToken(ij.token), UserID: j.UserID, JobID: j.ID, ProjectID: j.ProjectID}
			if p := d.projects[j.ProjectID]; p != nil {
				tok.ProjectPath = p.Path
			}
			cur.tokens = append(cur.tokens, tok)
		}
		if pl.fresh(j.ID) {
			if !j.IsBridge() {
				j.Ordinal = pl.Ordinals[j.ProjectID].Of(j.ID)
			}
			pl.Locks.mark(j)
			cur.jobs = append(cur.jobs, ij)
		}
		cur.read++
		cur.next = next
		if cur.read == writeBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if inFlight != nil {
		if werr := <-inFlight; err == nil {
			err = werr
		}
	}
	return err
}

// writeBatch uploads the batch's logs and archives, then writes its items:
// a job never lists a file that is not there.
func (im *Importer) writeBatch(ctx context.Context, dir fs.FS, b *batch, sum *Summary) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, ij := range b.jobs {
		if ij.trace != nil {
			sum.Traces++
		}
		if ij.archive != "" {
			sum.Archives++
		}
		g.Go(func() error { return im.putFiles(gctx, dir, ij) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	w := im.Store.NewWriter(ctx)
	for _, ij := range b.jobs {
		if err := w.PutJobs(ij.job); err != nil {
			return err
		}
	}
	if err := w.PutPipelines(b.pipelines...); err != nil {
		return err
	}
	if err := w.Wait(); err != nil {
		return err
	}
	sum.Pipelines += len(b.pipelines)
	for _, t := range b.tokens {
		if err := im.Store.PutToken(ctx, t); err != nil {
			return err
		}
		sum.Tokens++
	}
	return nil
}
