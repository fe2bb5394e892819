package world

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
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
	// Leased is the highest id that may have been leased unused when the
	// counter was raised: fresh jobs up to it are written only where no
	// action's job took the id meanwhile (store.NewWriter).
	Leased int64
}

// pipelinePlan is when and with what a pipeline item is written: a few
// words, not its document, as a plan holds one for every pipeline.
type pipelinePlan struct {
	First  int // the job that first embeds it; -1 for a listed pipeline
	Commit int // the first of its jobs with a commit, -1 if none
	// Listed is where the document lists it (Index -1: it does not): that
	// document wins over the copies jobs embed, and is read again there to
	// be written. Project is its listed project_id, which its jobs without
	// one take.
	Listed  position
	Project int64
	Counts  tally // the job counts of its fresh jobs, which the import adds to its counts
	// Mark names the fresh jobs of Counts (see store.ImportPipeline: a
	// resumed import adds them once): a sum of their ids' hashes, so the
	// same whatever order they were checked in.
	Mark uint64
}

func (pp *pipelinePlan) listed() bool { return pp.Listed.Index >= 0 }

// listedProject is the project of pipeline id as the document lists it.
func (pl *plan) listedProject(id int64) (int64, bool) {
	if pp := pl.Pipelines[id]; pp != nil && pp.listed() {
		return pp.Project, true
	}
	return 0, false
}

// listedPipeline reads a listed pipeline's document again.
func listedPipeline(pipes source, pp *pipelinePlan) (*jobs.Pipeline, error) {
	raw, err := element(pipes, pp.Listed)
	if err != nil {
		return nil, err
	}
	return decodePipeline(raw)
}

// tally is a pipeline's planned job counts: each count key's index in
// countKeys and its count, in the order first counted (a pipeline has few
// of the 52 keys, and a map of strings is several times the size).
type tally []keyCount

type keyCount struct {
	Key uint8
	N   uint32
}

// countKeys are the jobs.CountKey of every kind, status and try, at
// countIndex.
var countKeys = func() []string {
	var keys []string
	for _, k := range []jobs.Kind{jobs.Build, jobs.Bridge} {
		for _, st := range jobs.Statuses {
			keys = append(keys, jobs.CountKey(k, st, false), jobs.CountKey(k, st, true))
		}
	}
	return keys
}()

func countIndex(j *jobs.Job) uint8 {
	i := 2 * slices.Index(jobs.Statuses, j.Status)
	if j.IsBridge() {
		i += 2 * len(jobs.Statuses)
	}
	if j.Retried {
		i++
	}
	return uint8(i)
}

func (t *tally) add(key uint8) {
	for i := range *t {
		if (*t)[i].Key == key {
			(*t)[i].N++
			return
		}
	}
	*t = append(*t, keyCount{Key: key, N: 1})
}

// delta is the tally as store.ImportPipeline takes it.
func (t tally) delta() map[string]int64 {
	if len(t) == 0 {
		return nil
	}
	m := make(map[string]int64, len(t))
	for _, c := range t {
		m[countKeys[c.Key]] = int64(c.N)
	}
	return m
}

// at is the job whose batch writes the pipeline (once its document and
// commit are known), -1 for after the jobs.
func (pp *pipelinePlan) at() int {
	if pp.Commit >= 0 {
		return max(pp.First, pp.Commit)
	}
	return pp.First
}

// shards is the build index shards of project pid's fresh builds (1 for a
// project without: its bridges do not need them).
func (pl *plan) shards(pid int64) int {
	if o := pl.Ordinals[pid]; o != nil {
		return o.Shards
	}
	return 1
}

func (pl *plan) fresh(id int64) bool {
	_, ok := slices.BinarySearch(pl.Fresh, id)
	return ok
}

// checkBatch is how many jobs one existence check asks about.
const checkBatch = 2000

// survey is the first pass: it decodes and checks every listed pipeline
// and every job, writes the users and runners jobs embed, and plans the
// second pass.
func (im *Importer) survey(ctx context.Context, src, pipes source, dir fs.FS, d *sections) (*plan, error) {
	pl := &plan{Ordinals: map[int64]*store.Ordinals{}, Pipelines: map[int64]*pipelinePlan{}, Locks: newLocks()}
	if err := im.list(pl, pipes); err != nil {
		return nil, err
	}
	type seen struct {
		id, project, pipeline int64
		ref                   string
		status                jobs.Status
		count                 uint8
		build                 bool
	}
	var (
		// mu guards pl.Pipelines' entries and additions (the checks count
		// into them); the pass reads the map, which only it adds to, freely.
		mu     sync.Mutex
		builds = map[int64][]store.Build{} // fresh builds by project
		refs   = map[string]string{}       // each ref once, however many builds name it
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
					builds[s.project] = append(builds[s.project], store.Build{ID: s.id, Ref: s.ref, Status: s.status})
				}
				pp := pl.Pipelines[s.pipeline]
				pp.Counts.add(s.count)
				pp.Mark += mix(uint64(s.id))
			}
			return nil
		})
	}
	phase := im.meter().Phase("check", "jobs", int64(src.len()))
	runners := map[int64]bool{}
	jd := &jobDecoder{now: im.Now(), projects: d.projects, listed: pl.listedProject}
	var batch []seen
	err := src.each(position{}, func(i int, raw json.RawMessage, _ position) error {
		ij, e, err := jd.decode(raw)
		if err != nil {
			return err
		}
		j := ij.job
		for _, p := range []*jobs.Pipeline{e.pipeline, e.downstream} {
			if p != nil && pl.Pipelines[p.ID] == nil {
				mu.Lock()
				pl.Pipelines[p.ID] = &pipelinePlan{First: i, Commit: -1, Listed: position{Index: -1}}
				mu.Unlock()
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
		ref, ok := refs[j.Ref]
		if !ok {
			ref, refs[j.Ref] = j.Ref, j.Ref
		}
		batch = append(batch, seen{j.ID, j.ProjectID, j.PipelineID, ref, j.Status, countIndex(j), !j.IsBridge()})
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
	place := im.meter().Phase("place", "projects", int64(len(builds)))
	defer place.Done()
	for pid, bs := range builds {
		if pl.Ordinals[pid], err = im.Store.PlanOrdinals(ctx, pid, bs); err != nil {
			return nil, err
		}
		place.Add(1)
	}
	return pl, nil
}

// list plans the pipelines the document lists, before any job (their
// documents win over the copies jobs embed): where each is, not what.
func (im *Importer) list(pl *plan, pipes source) error {
	phase := im.meter().Phase("list", "pipelines", int64(pipes.len()))
	defer phase.Done()
	var at position
	return pipes.each(at, func(_ int, raw json.RawMessage, next position) error {
		p, err := decodePipeline(raw)
		if err != nil {
			return err
		}
		pl.Pipelines[p.ID] = &pipelinePlan{First: -1, Commit: -1, Listed: at, Project: p.ProjectID}
		at = next
		phase.Add(1)
		return pl.Locks.pipeline(p)
	})
}

// mix is splitmix64's finalizer: a hash of x with its bits spread, so
// that sums of different sets of ids differ.
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// writeBatch is how many jobs the second pass decodes into one batch, and
// batchesAhead how many batches it writes at a time while it decodes the
// next: one batch's log uploads overlap another's item writes, and within
// a batch a job's item is queued as soon as its files are up.
const (
	writeBatch   = 250
	batchesAhead = 2
	filesInBatch = 8 // S3 puts of one batch in flight: the puts of a batch outpace its writes
)

// batch is what one round of the second pass writes.
type batch struct {
	jobs      []*importedJob
	pipelines []*jobs.Pipeline
	tokens    []*jobs.Token
	read      int      // jobs of the document it covers
	next      position // where the round after it starts
	done      chan error
	traces    int // logs uploaded
	archives  int // archives uploaded
}

// write is the second pass: from position from on, it decodes each job
// again and writes the fresh ones, the pipelines as the plan says, and the
// job tokens, in batches, batchesAhead at a time; the checkpoint records a
// batch once it and every batch before it are written.
func (im *Importer) write(ctx context.Context, src, pipes source, from position, dir fs.FS, d *sections, pl *plan,
	cp *checkpoint, sum *Summary) error {
	phase := im.meter().Phase("write", "jobs", int64(src.len()))
	defer phase.Done()
	phase.Add(int64(from.Index))
	g, gctx := errgroup.WithContext(ctx)
	ahead := make(chan *batch, batchesAhead-1) // the batches in flight, in order; one more waits in the recorder
	g.Go(func() error {
		for b := range ahead {
			if err := <-b.done; err != nil {
				return err
			}
			if err := cp.saveNext(b.next); err != nil {
				return err
			}
			sum.Traces += b.traces
			sum.Archives += b.archives
			sum.Pipelines += len(b.pipelines)
			sum.Tokens += len(b.tokens)
			phase.Add(int64(b.read))
		}
		return nil
	})
	docs := map[int64]*jobs.Pipeline{} // embedded pipelines not written yet
	jd := &jobDecoder{now: im.Now(), projects: d.projects, listed: pl.listedProject, extra: true}
	cur := &batch{}
	flush := func() error {
		b := cur
		cur = &batch{}
		b.done = make(chan error, 1)
		select {
		case ahead <- b:
		case <-gctx.Done():
			return gctx.Err()
		}
		go func() { b.done <- im.writeBatch(gctx, dir, b, pl) }()
		return nil
	}
	err := src.each(from, func(i int, raw json.RawMessage, next position) error {
		ij, e, err := jd.decode(raw)
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
			if pp.listed() {
				if p, err = listedPipeline(pipes, pp); err != nil {
					return err
				}
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
			cur.pipelines = append(cur.pipelines, p)
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
				j.Ordinal, j.RefOrdinal = pl.Ordinals[j.ProjectID].Of(j.ID)
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
	if err == nil && cur.read > 0 {
		err = flush()
	}
	close(ahead)
	if werr := g.Wait(); err == nil {
		err = werr
	}
	return err
}

// writeBatch writes a batch: each job's item once its log and archive are
// uploaded (a job never lists a file that is not there), its pipelines and
// its job tokens.
func (im *Importer) writeBatch(ctx context.Context, dir fs.FS, b *batch, pl *plan) error {
	w := im.Store.NewWriter(ctx, pl.Leased)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(filesInBatch)
	for _, ij := range b.jobs {
		if ij.trace != nil {
			b.traces++
		}
		if ij.archive != "" {
			b.archives++
		}
		shards := pl.shards(ij.job.ProjectID)
		if ij.trace == nil && ij.archive == "" {
			if err := w.PutJob(ij.job, shards); err != nil {
				return err
			}
			continue
		}
		g.Go(func() error {
			if err := im.putFiles(gctx, dir, ij); err != nil {
				return err
			}
			return w.PutJob(ij.job, shards)
		})
	}
	for _, p := range b.pipelines {
		g.Go(func() error {
			pp := pl.Pipelines[p.ID]
			return im.Store.ImportPipeline(gctx, p, pp.Counts.delta(), pp.Mark)
		})
	}
	for _, t := range b.tokens {
		if err := w.PutToken(t); err != nil {
			return err
		}
	}
	err := g.Wait()
	if werr := w.Wait(); err == nil {
		err = werr
	}
	return err
}
