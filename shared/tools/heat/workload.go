package heat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/sync/errgroup"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// Mix is the workload the model scales the samples to.
type Mix struct {
	JobWrites float64 // status changes a second of one project's jobs
	ListReads float64 // reads a second of that project's page 1
	Creations float64 // new jobs a second over the installation
	// Pipelines is how many pipelines of the hot project the job writes
	// spread over; the creations spread over CreationPipelines pipelines
	// in each of CreationProjects projects.
	Pipelines, CreationProjects, CreationPipelines int
	// CreationRefs is how many refs a creation project's pipelines are
	// dealt over (each ref's build count is an item of its own).
	CreationRefs int
	// CreationWriters is how many containers retry in each creation
	// project at once: 1 records one creation at a time (the direct
	// path), more record a project's creations together, as a busy
	// project makes them (its combiner's queue), one sample of all their
	// calls spread over as many samples as creations.
	CreationWriters int
	// Callers is how many distinct tokens read the hot page;
	// ContainerRPS how many requests a second one warm container serves
	// (Lambda: one at a time), which makes the containers C.
	Callers      int
	ContainerRPS float64
	// Samples is how often the list reads of a cold container, a cached
	// page and a page refresh are recorded (a new caller: every caller once).
	Samples int
	// HotShards and CreationShards are the write shards of the hot
	// project's and of each creation project's build indexes (the import
	// document's "shards").
	HotShards, CreationShards int
	// Imports is the jobs a second a migration imports into one project
	// of ImportShards write shards; ImportJobs how many one recorded
	// import brings, ImportPipelineJobs of them a pipeline.
	Imports                                      float64
	ImportShards, ImportJobs, ImportPipelineJobs int
}

// DefaultMix is issue 10's: one project at 5,000 job writes/s and 20,000
// list reads/s, plus 10,000 creations/s installation-wide, here over 100
// projects (100 a second each: one project's creations compare-and-set its
// build count, in the partition P#<p>, which caps them near 500 a second,
// and their ref's, which caps one ref's likewise, see BENCHMARKS.md). The
// hot project has 32 shards: a job write puts 2 units on its build index
// row (a transaction's), so 5,000 a second need 10,000 / 800 > 12 shards
// to stay under 80% when spread evenly (as a project's recent ordinals are),
// and the model's samples (the moving jobs of 50 pipelines) fall on 16
// shards up to 1.4 times unevenly.
//
// The import is issue 10's 10,000 jobs/s on AWS, of one project's history
// (every job on one ref, a job item and its index rows written once, by
// BatchWriteItem: 1 unit a row under 1 KB), in 16 shards: 10,000 / 16 =
// 625 units a second on each build index key, 63% (8 shards: 125%).
var DefaultMix = Mix{JobWrites: 5000, ListReads: 20000, Creations: 10000, Pipelines: 50, CreationProjects: 100,
	CreationPipelines: 10, CreationRefs: 1, CreationWriters: 1, Callers: 100, ContainerRPS: 100, Samples: 3, HotShards: 32, CreationShards: 1,
	Imports: 10000, ImportShards: 16, ImportJobs: 1000, ImportPipelineJobs: 8}

// Containers is C, the warm containers serving the list reads.
func (m Mix) Containers() float64 { return math.Ceil(m.ListReads / m.ContainerRPS) }

// Report is a replay's model.
type Report struct {
	Mix   Mix
	Kinds []Kind
	Rows  []Row
	Items []ItemRow // the items transactions name, busiest first
	// WarmPage is the in-process time of a warm page-1 request served
	// from the page cache, measured here (for ContainerRPS's sake).
	WarmPage time.Duration
	// JobItem is the average size of a job item written, in bytes.
	JobItem int
	// Uncached is the hottest key of the list reads without the page
	// cache: every read its page's Query, as a page refresh reads it.
	Uncached Row
}

// Stack is where to replay: a DynamoDB endpoint's client with rec's
// middleware, one without (for the recorder's own reads), and a table
// that exists with the store's schema and is empty.
type Stack struct {
	DB, Raw *dynamodb.Client
	Table   string
	Rec     *Recorder
}

const (
	hotProject = 1
	page1      = "/api/v4/projects/1/jobs"
)

// Replay imports a world for m, records every kind of operation through
// the real store (and the list handler, whose request path matters), and
// scales them to m.
func Replay(ctx context.Context, st Stack, m Mix) (*Report, error) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := store.New(st.DB, st.Table)
	w := heatWorld(m, now)
	if _, err := (&world.Importer{Store: s, Now: func() time.Time { return now }}).Import(ctx, w); err != nil {
		return nil, err
	}
	r := &Report{Mix: m}
	writes, size, err := jobWrites(ctx, st, s, m, now)
	if err != nil {
		return nil, err
	}
	creations, err := creations(ctx, st, s, m, now)
	if err != nil {
		return nil, err
	}
	reads, warm, err := listReads(ctx, st, m, now)
	if err != nil {
		return nil, err
	}
	imp, err := imports(ctx, st, s, m, now)
	if err != nil {
		return nil, err
	}
	r.Kinds = append(append([]Kind{writes, creations}, reads...), imp)
	r.Rows, r.Items, r.WarmPage, r.JobItem = Heat(r.Kinds), Serial(r.Kinds), warm, size
	if u := Heat([]Kind{{Name: "list without page cache", Rate: m.ListReads, Samples: reads[1].Samples}}); len(u) > 0 {
		r.Uncached = u[0]
	}
	return r, nil
}

// lifecycle moves a job one step along created → pending → running →
// success, as a runner's updates would; it is the writer's transition
// through the store's one write path for job changes (Apply).
func lifecycle(now time.Time) jobs.Action {
	return func(j *jobs.Job) (jobs.Transition, error) {
		c := *j
		switch j.Status {
		case jobs.Created:
			c.Status, c.QueuedAt = jobs.Pending, &now
		case jobs.Pending:
			c.Status, c.StartedAt = jobs.Running, &now
		case jobs.Running:
			c.Status, c.FinishedAt = jobs.Success, &now
		default:
			return jobs.Transition{}, nil
		}
		return jobs.Transition{Job: &c}, nil
	}
}

// jobWrites records one step of every moving job of the hot project: as
// many of each step (created→pending, pending→running, running→success) in
// every active pipeline. The job and project are read before, outside the
// sample: the writer holds them.
func jobWrites(ctx context.Context, st Stack, s *store.Store, m Mix, now time.Time) (Kind, int, error) {
	k := Kind{Name: "job write", Rate: m.JobWrites}
	size, n := 0, 0
	for pl := range m.Pipelines {
		for _, id := range movingJobs(pl) {
			f, err := s.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: hotProject}, JobID: id})
			if err != nil || f.Job == nil {
				return k, 0, fmt.Errorf("job %d: %v", id, err)
			}
			calls, err := st.Rec.Sample(func() error {
				_, err := s.Apply(ctx, f.Project, f.Job, lifecycle(now))
				return err
			})
			if err != nil {
				return k, 0, err
			}
			k.Samples = append(k.Samples, calls)
			for _, c := range calls {
				for _, t := range c.Touches {
					if t.Index == "" && t.Key == fmt.Sprintf("J#%d", id) {
						size, n = size+t.Bytes, n+1
					}
				}
			}
		}
	}
	return k, size / max(n, 1), nil
}

// creations records one retry in every pipeline but the first of every
// creation project (the first's is the project's first creation, which
// leases ids), each creating one job (GitLab's retry: the one way this API creates a
// job), the project read fresh before each (its build count exact); or,
// with m.CreationWriters > 1, a project's retries all at once by that many
// containers (each a Store of its own).
func creations(ctx context.Context, st Stack, s *store.Store, m Mix, now time.Time) (Kind, error) {
	k := Kind{Name: "creation", Rate: m.Creations}
	for p := range m.CreationProjects {
		pid := creationProject(p)
		var together []*store.Found
		for pl := range m.CreationPipelines {
			id := finishedJob(pid, pl)
			f, err := s.Lookup(ctx, store.Lookup{Project: store.ProjectRef{ID: pid}, JobID: id})
			if err != nil || f.Job == nil || f.Project == nil {
				return k, fmt.Errorf("job %d: %v", id, err)
			}
			retry := func() error {
				_, err := s.Apply(ctx, f.Project, f.Job, jobs.Retry(1, now))
				return err
			}
			switch {
			case pl == 0:
				// The import left the project no leased ids: its first
				// creation leases a block, as one in idBlock does later.
				// Unrecorded, so that the samples lease at the steady rate.
				if err := retry(); err != nil {
					return k, err
				}
			case m.CreationWriters > 1:
				together = append(together, f)
			default:
				calls, err := st.Rec.Sample(retry)
				if err != nil {
					return k, err
				}
				k.Samples = append(k.Samples, calls)
			}
		}
		if len(together) == 0 {
			continue
		}
		calls, err := st.Rec.Sample(func() error { return retryAtOnce(ctx, st, m.CreationWriters, together, now) })
		if err != nil {
			return k, err
		}
		k.Samples = append(k.Samples, calls)
		for range len(together) - 1 {
			k.Samples = append(k.Samples, nil)
		}
	}
	return k, nil
}

// retryAtOnce retries the jobs found, writers containers at once.
func retryAtOnce(ctx context.Context, st Stack, writers int, found []*store.Found, now time.Time) error {
	work := make(chan *store.Found, len(found))
	for _, f := range found {
		work <- f
	}
	close(work)
	g, ctx := errgroup.WithContext(ctx)
	for range writers {
		s := store.New(st.DB, st.Table)
		g.Go(func() error {
			for f := range work {
				if _, err := s.Apply(ctx, f.Project, f.Job, jobs.Retry(1, now)); err != nil {
					return fmt.Errorf("retry %d: %w", f.Job.ID, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// imports records one import of m.ImportJobs new jobs into the import
// project, whose sections an unrecorded import wrote before (a migration
// of many documents, or one long one: its jobs are what its rate is),
// through the importer that jobsctl import runs. An operation is the
// whole import: its rate is m.Imports over the jobs it brings.
func imports(ctx context.Context, st Stack, s *store.Store, m Mix, now time.Time) (Kind, error) {
	k := Kind{Name: fmt.Sprintf("import of %d jobs", m.ImportJobs), Rate: m.Imports / float64(max(m.ImportJobs, 1))}
	im := &world.Importer{Store: s, Now: func() time.Time { return now }}
	w := importWorld(m, now)
	jobs, pipelines := w.Jobs, w.Pipelines
	w.Jobs, w.Pipelines = nil, nil
	if _, err := im.Import(ctx, w); err != nil {
		return k, err
	}
	w.Jobs, w.Pipelines = jobs, pipelines
	calls, err := st.Rec.Sample(func() error {
		sum, err := im.Import(ctx, w)
		if err == nil && sum.NewJobs != m.ImportJobs {
			err = fmt.Errorf("the import wrote %d new jobs, want %d", sum.NewJobs, m.ImportJobs)
		}
		return err
	})
	k.Samples = append(k.Samples, calls)
	return k, err
}

// listReads records the hot page as the list function serves it, in the
// states a container can be in, each at the rate the mix puts it in:
//
//   - page cached: the rest of the reads (no call at all);
//   - page past store.PageTTL: at most once per container and PageTTL;
//   - a caller new to the container (token, user and membership past
//     store.WarmTTL): at most once per container, caller and WarmTTL;
//   - a cold container (every cache empty): once per container and WarmTTL.
//
// Refreshes are counted as operations of their own on top of the cached
// reads: an upper bound.
func listReads(ctx context.Context, st Stack, m Mix, now time.Time) ([]Kind, time.Duration, error) {
	c := m.Containers()
	kinds := []Kind{
		{Name: "list: page cached"},
		{Name: "list: page refresh", Rate: c / store.PageTTL.Seconds()},
		{Name: "list: new caller", Rate: min(m.ListReads, float64(m.Callers)*c/store.WarmTTL.Seconds())},
		{Name: "list: cold container", Rate: c / store.WarmTTL.Seconds()},
	}
	kinds[0].Rate = max(0, m.ListReads-kinds[1].Rate-kinds[2].Rate-kinds[3].Rate)
	deps := &api.Deps{Now: func() time.Time { return now }, Log: logging.New(io.Discard)}
	list := api.ListProjectJobs.Handler(deps)
	get := func(caller int) error {
		req := httptest.NewRequest(http.MethodGet, page1, nil)
		req.Header.Set("PRIVATE-TOKEN", callerToken(caller))
		rw := httptest.NewRecorder()
		list.ServeHTTP(rw, req.WithContext(ctx))
		if rw.Code != http.StatusOK {
			return fmt.Errorf("page 1 for caller %d: %d %.200s", caller, rw.Code, rw.Body)
		}
		return nil
	}
	sample := func(k *Kind, before func() error, caller int) error {
		if err := before(); err != nil {
			return err
		}
		calls, err := st.Rec.Sample(func() error { return get(caller) })
		k.Samples = append(k.Samples, calls)
		return err
	}
	// Callers from 2 on: user 1 is the pages' jobs' user, whom the page's
	// related reads cache for every caller.
	callers := max(m.Callers-1, 1)
	none := func() error { return nil }
	for i := range m.Samples {
		caller := 2 + i%callers
		deps.Store = store.New(st.DB, st.Table)
		if err := sample(&kinds[3], none, caller); err != nil {
			return nil, 0, err
		}
		if err := sample(&kinds[0], none, caller); err != nil {
			return nil, 0, err
		}
		if err := sample(&kinds[1], func() error { deps.Store.ForgetPages(); return nil }, caller); err != nil {
			return nil, 0, err
		}
	}
	// Every caller once, new to a warm container whose page is cached:
	// each caller's own keys get their share of the rate, as in the mix.
	for caller := 2; caller <= max(m.Callers, 2); caller++ {
		if err := sample(&kinds[2], func() error { return get(1) }, caller); err != nil {
			return nil, 0, err
		}
	}
	const repeats = 200
	start := time.Now()
	for range repeats {
		if err := get(1); err != nil {
			return nil, 0, err
		}
	}
	return kinds, time.Since(start) / repeats, nil
}

// The world: the hot project's active pipelines, each with a job of every
// moving status and one finished, and the creation projects' pipelines,
// each with a finished job to retry. Job ids are laid out by pipeline.
const (
	perPipeline = 4 // created, pending, running, success
)

func hotJob(pl, i int) int64                   { return int64(1 + pl*perPipeline + i) }
func movingJobs(pl int) []int64                { return []int64{hotJob(pl, 0), hotJob(pl, 1), hotJob(pl, 2)} }
func creationProject(p int) int64              { return int64(100 + p) }
func finishedJob(pid int64, pl int) int64      { return 1_000_000 + pid*1000 + int64(pl) }
func creationPipeline(pid int64, pl int) int64 { return 100_000 + pid*1000 + int64(pl) }
func callerToken(u int) string                 { return fmt.Sprintf("glpat-heat-caller-%011d", u) }

// creationRef is the ref of a creation project's pipelines dealt to i:
// main first, as the one ref of the default mix.
func creationRef(i int) string {
	if i == 0 {
		return "main"
	}
	return fmt.Sprintf("feature/%d", i)
}

const importProject = 3

// importStatuses are the imported jobs' statuses, in turn: a history's
// (mostly finished, so terminal status keys take most rows).
var importStatuses = []string{"success", "success", "success", "success", "success", "success", "failed", "canceled",
	"skipped", "manual"}

func heatWorld(m Mix, now time.Time) *world.World {
	w := &world.World{InstanceURL: instance}
	users := map[int]json.RawMessage{}
	members := []world.Member{{UserID: 1, AccessLevel: jobs.Maintainer}}
	for u := 1; u <= max(m.Callers, 2); u++ {
		users[u] = userDoc(u)
		w.Users = append(w.Users, users[u])
		w.Tokens = append(w.Tokens, world.Token{Token: callerToken(u), UserID: int64(u), Scopes: []string{"api"}})
		if u > 1 {
			members = append(members, world.Member{UserID: int64(u), AccessLevel: jobs.Reporter})
		}
	}
	w.Projects = append(w.Projects, world.Project{ID: hotProject, PathWithNamespace: "heat/hot", Visibility: jobs.Private,
		ProtectedRefs: []string{"main"}, Members: members, Name: "hot", Shards: m.HotShards})
	for p := range m.CreationProjects {
		w.Projects = append(w.Projects, world.Project{ID: creationProject(p), PathWithNamespace: fmt.Sprintf("heat/p%d", p),
			Visibility: jobs.Private, Members: members[:1], Name: fmt.Sprintf("p%d", p), Shards: m.CreationShards})
	}
	created := now.Add(-time.Hour).Format(docTime)
	pipeline := func(pid, id int64, ref string) map[string]any {
		pl := pipelineDoc(pid, id, ref, "running", created)
		w.Pipelines = append(w.Pipelines, mustJSON(pl))
		return pl
	}
	for pl := range m.Pipelines {
		id := int64(1000 + pl)
		p := pipeline(hotProject, id, "main")
		for i, st := range []string{"created", "pending", "running", "success"} {
			jid := hotJob(pl, i)
			w.Jobs = append(w.Jobs, jobDoc(jid, fmt.Sprintf("rspec %d/4", jid%4+1), st, created, users[1], p))
		}
	}
	for p := range m.CreationProjects {
		pid := creationProject(p)
		for i := range m.CreationPipelines {
			jid := finishedJob(pid, i)
			w.Jobs = append(w.Jobs, jobDoc(jid, fmt.Sprintf("rspec %d/4", jid%4+1), "success", created, users[1],
				pipeline(pid, creationPipeline(pid, i), creationRef(i%max(m.CreationRefs, 1)))))
		}
	}
	return w
}

// importWorld is the import project (user 1 its maintainer) with
// m.ImportJobs jobs on ref main, m.ImportPipelineJobs a pipeline.
func importWorld(m Mix, now time.Time) *world.World {
	user := userDoc(1)
	w := &world.World{InstanceURL: instance, Users: []json.RawMessage{user}}
	w.Projects = []world.Project{{ID: importProject, PathWithNamespace: "heat/import", Visibility: jobs.Private,
		Members: []world.Member{{UserID: 1, AccessLevel: jobs.Maintainer}}, Name: "import", Shards: m.ImportShards}}
	per := max(m.ImportPipelineJobs, 1)
	created := now.AddDate(-1, 0, 0).Format(docTime)
	var pl map[string]any
	for i := range m.ImportJobs {
		if i%per == 0 {
			pl = pipelineDoc(importProject, int64(5_000_000+i/per), "main", "success", created)
			w.Pipelines = append(w.Pipelines, mustJSON(pl))
		}
		w.Jobs = append(w.Jobs, jobDoc(int64(50_000_000+i), fmt.Sprintf("rspec %d/%d", i%per+1, per),
			importStatuses[i%len(importStatuses)], created, user, pl))
	}
	return w
}

const (
	instance = "https://gitlab.example.com"
	docTime  = "2006-01-02T15:04:05.000Z"
)

func userDoc(u int) json.RawMessage {
	return mustJSON(map[string]any{"id": u, "username": fmt.Sprintf("user%d", u), "name": fmt.Sprintf("User %d", u),
		"state": "active", "locked": false, "avatar_url": "https://www.gravatar.com/avatar/u?s=80&d=identicon",
		"web_url": fmt.Sprintf("%s/user%d", instance, u), "created_at": "2025-03-01T10:00:00.000Z", "bio": "",
		"location": "", "public_email": nil, "bot": false, "job_title": "", "pronouns": nil})
}

// pipelineDoc is pipeline id of project pid on ref, as GitLab's API shows
// it.
func pipelineDoc(pid, id int64, ref, status, created string) map[string]any {
	return map[string]any{"id": id, "iid": id, "project_id": pid, "sha": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd",
		"ref": ref, "status": status, "source": "push", "created_at": created, "updated_at": created,
		"web_url": fmt.Sprintf("%s/heat/-/pipelines/%d", instance, id)}
}

// jobDoc is job id of pipeline pl, as GitLab's API shows it: started once
// it ran, finished once it ended (at its creation time: the model needs
// no durations).
func jobDoc(id int64, name, status, created string, user json.RawMessage, pl map[string]any) json.RawMessage {
	var started, finished any
	switch status {
	case "running":
		started = created
	case "success", "failed", "canceled":
		started, finished = created, created
	}
	return mustJSON(map[string]any{"id": id, "status": status, "stage": "test", "name": name, "ref": pl["ref"], "tag": false,
		"coverage": nil, "allow_failure": false, "created_at": created, "started_at": started, "finished_at": finished,
		"erased_at": nil, "duration": nil, "queued_duration": nil, "user": user, "pipeline": pl, "project_id": pl["project_id"],
		"tag_list": []string{"docker", "linux"}, "web_url": fmt.Sprintf("%s/heat/-/jobs/%d", instance, id),
		"artifacts": []any{}, "runner": nil, "artifacts_expire_at": nil, "archived": false, "failure_reason": nil})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
