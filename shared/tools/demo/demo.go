// Package demo makes the demo world: three projects with thousands of jobs
// over every status, fixed tokens and ids that events/, the tests and the
// README use.
package demo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

// RoleToken is a token of the demo world with the role it stands for.
type RoleToken struct {
	Role  string
	Token string
}

// Demo tokens: fixed, so that events/ and the README can use them.
const (
	TokenAdmin      = "glpat-demo-admin-000000000001"
	TokenMaintainer = "glpat-demo-maintainer-000000002"
	TokenDeveloper  = "glpat-demo-developer-0000000003"
	TokenReporter   = "glpat-demo-reporter-00000000004"
	TokenGuest      = "glpat-demo-guest-00000000000005"
	TokenOutsider   = "glpat-demo-outsider-00000000006"
	TokenReadAPI    = "glpat-demo-readapi-000000000007"
	TokenExpired    = "glpat-demo-expired-000000000008"
	TokenRevoked    = "glpat-demo-revoked-000000000009"
	// JobTokenRunning belongs to the demo's running job (see RunningJobID).
	JobTokenRunning = "glcbt-demo-running-job-0000000001"
	// JobTokenFinished belongs to a finished job: it no longer authenticates.
	JobTokenFinished = "glcbt-demo-finished-job-000000002"
)

// Fixed ids of the demo world.
const (
	ProjectBackend  = 1  // demo/backend: private, public pipelines, main protected
	ProjectFrontend = 2  // demo/platform/frontend: private, pipelines for members only
	ProjectWebsite  = 3  // demo/website: public
	RunningJobID    = 7  // the running job whose token is JobTokenRunning
	FailedJobID     = 42 // a failed build of demo/backend with a coloured trace
)

// Tokens lists the demo tokens by role, for printing.
func Tokens() []RoleToken {
	return []RoleToken{{"admin", TokenAdmin}, {"maintainer", TokenMaintainer}, {"developer", TokenDeveloper},
		{"reporter", TokenReporter}, {"guest", TokenGuest}, {"non-member", TokenOutsider},
		{"maintainer, read_api scope", TokenReadAPI}, {"expired", TokenExpired}, {"revoked", TokenRevoked},
		{"job token of running job 7", JobTokenRunning}}
}

const instance = "https://gitlab.example.com"

var seedEpoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Seed makes a realistic, deterministic demo world with about jobsPerProject
// jobs in each of its three projects: all 13 statuses, retried and manual
// jobs, bridges with downstream pipelines, ANSI-coloured traces, artifacts.
func Seed(jobsPerProject int) *world.World {
	w := &world.World{}
	g := newSeeder(w, func(raw json.RawMessage) { w.Jobs = append(w.Jobs, raw) })
	// The backend's history starts first, so that the README's job 42 is one of its builds.
	for range 5 {
		g.counts[ProjectBackend] += g.pipeline(ProjectBackend)
	}
	g.fill(jobsPerProject, ProjectBackend, ProjectFrontend, ProjectWebsite)
	addArchives(w)
	return w
}

// Bulk writes a demo document of one project (demo/backend) with about n
// jobs to out as it generates them, without archives: memory stays flat
// whatever n, for measuring imports. Its jobs come before its pipelines,
// which the importer must handle. pipelineJobs, if above 0, caps the jobs
// of a pipeline (9 to 12 otherwise), so that a document can list many
// pipelines.
func Bulk(out io.Writer, n, pipelineJobs int) error {
	w := &world.World{}
	bw := bufio.NewWriterSize(out, 1<<20)
	first := true
	var err error
	g := newSeeder(w, func(raw json.RawMessage) {
		if err != nil {
			return
		}
		if first {
			err = writeSections(bw, w, `"jobs":[`)
			first = false
		} else {
			err = bw.WriteByte(',')
		}
		if err == nil {
			_, err = bw.Write(raw)
		}
	})
	g.pipelineJobs = pipelineJobs
	g.fill(n, ProjectBackend)
	if err != nil {
		return err
	}
	pipelines, err := json.Marshal(w.Pipelines)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(bw, "],\n\"pipelines\":%s}\n", pipelines); err != nil {
		return err
	}
	return bw.Flush()
}

// writeSections writes the document's opening and its small sections,
// then open.
func writeSections(bw *bufio.Writer, w *world.World, open string) error {
	head := *w
	head.Pipelines, head.Jobs = nil, nil
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	// The empty pipelines and jobs go: jobs follow, pipelines come last.
	b = bytes.Replace(b, []byte(`"pipelines":null,`), nil, 1)
	b, ok := bytes.CutSuffix(b, []byte(`,"jobs":null}`))
	if !ok {
		return fmt.Errorf("demo: document ends unexpectedly: %.80s", b[max(0, len(b)-80):])
	}
	_, err = fmt.Fprintf(bw, "%s,\n%s", b, open)
	return err
}

func newSeeder(w *world.World, emit func(json.RawMessage)) *seeder {
	r := rand.New(rand.NewPCG(1, 2))
	w.InstanceURL = instance
	type person struct {
		id                    int64
		username, name, token string
		level                 int
	}
	people := []person{
		{1, "root", "Administrator", TokenAdmin, 0},
		{2, "maria", "Maria Maintainer", TokenMaintainer, jobs.Maintainer},
		{3, "devi", "Devi Developer", TokenDeveloper, jobs.Developer},
		{4, "rita", "Rita Reporter", TokenReporter, jobs.Reporter},
		{5, "gus", "Gus Guest", TokenGuest, jobs.Guest},
		{6, "olga", "Olga Outsider", TokenOutsider, 0},
	}
	var members []world.Member
	docs := map[int64]json.RawMessage{}
	for _, p := range people {
		doc := map[string]any{
			"id": p.id, "username": p.username, "name": p.name, "state": "active", "locked": false,
			"avatar_url": "https://www.gravatar.com/avatar/" + p.username + "?s=80&d=identicon",
			"web_url":    instance + "/" + p.username, "created_at": "2025-03-01T10:00:00.000Z",
			"bio": "", "location": "", "public_email": nil, "linkedin": "", "twitter": "", "discord": "",
			"website_url": "", "organization": "", "job_title": "", "pronouns": nil, "bot": false,
			"work_information": nil, "local_time": nil,
		}
		docs[p.id] = mustJSON(doc)
		doc["admin"] = p.id == 1
		w.Users = append(w.Users, mustJSON(doc))
		w.Tokens = append(w.Tokens, world.Token{Token: p.token, UserID: p.id, Scopes: []string{"api"}})
		if p.level > 0 {
			members = append(members, world.Member{UserID: p.id, AccessLevel: p.level})
		}
	}
	exp := "2025-12-31"
	w.Tokens = append(w.Tokens,
		world.Token{Token: TokenReadAPI, UserID: 2, Scopes: []string{"read_api"}},
		world.Token{Token: TokenExpired, UserID: 2, Scopes: []string{"api"}, ExpiresAt: &exp},
		world.Token{Token: TokenRevoked, UserID: 2, Scopes: []string{"api"}, Revoked: true})
	w.Groups = []world.Group{{ID: 3, FullPath: "demo"}, {ID: 4, FullPath: "demo/platform", ParentID: ptr(int64(3))}}
	w.Projects = []world.Project{
		{ID: ProjectBackend, PathWithNamespace: "demo/backend", GroupID: ptr(int64(3)), Visibility: jobs.Private,
			PublicBuilds: true, ProtectedRefs: []string{"main"}, Members: members, Name: "backend",
			Description: ptr("The demo backend"), CreatedAt: ptr("2025-03-01T10:00:00.000Z")},
		{ID: ProjectFrontend, PathWithNamespace: "demo/platform/frontend", GroupID: ptr(int64(4)),
			Visibility: jobs.Private, ProtectedRefs: []string{"main"}, Members: members, Name: "frontend",
			JobTokenScopeEnabled: true, CreatedAt: ptr("2025-03-02T10:00:00.000Z")},
		{ID: ProjectWebsite, PathWithNamespace: "demo/website", GroupID: ptr(int64(3)), Visibility: jobs.Public,
			PublicBuilds: true, Members: []world.Member{{UserID: 2, AccessLevel: jobs.Maintainer}}, Name: "website",
			CreatedAt: ptr("2025-03-03T10:00:00.000Z")},
	}
	w.Agents = []jobs.Agent{
		{ID: 1, Name: "production-cluster", ConfigProjectID: ProjectBackend, AuthorizedProjectIDs: []int64{ProjectBackend}},
		{ID: 2, Name: "shared-cluster", ConfigProjectID: ProjectFrontend, AuthorizedGroupIDs: []int64{3}},
	}
	runners := []json.RawMessage{
		mustJSON(map[string]any{"id": 1, "description": "shared-runner-1", "ip_address": nil, "active": true,
			"paused": false, "is_shared": true, "runner_type": "instance_type", "name": "gitlab-runner",
			"online": true, "created_at": "2025-02-01T10:00:00.000Z", "status": "online", "job_execution_status": "idle"}),
		mustJSON(map[string]any{"id": 2, "description": "docker-arm64", "ip_address": nil, "active": true,
			"paused": false, "is_shared": false, "runner_type": "project_type", "name": "gitlab-runner",
			"online": true, "created_at": "2025-02-02T10:00:00.000Z", "status": "online", "job_execution_status": "active"}),
	}
	return &seeder{r: r, w: w, runners: runners, people: []int64{1, 2, 3}, users: docs, emit: emit,
		next: 1, nextPipeline: 1000, counts: map[int64]int{}}
}

var paths = map[int64]string{ProjectBackend: "demo/backend", ProjectFrontend: "demo/platform/frontend", ProjectWebsite: "demo/website"}

// fill adds pipelines to the projects, interleaved so that job ids are
// spread over them as on a real instance, until each has n jobs.
func (g *seeder) fill(n int, projects ...int64) {
	for {
		more := false
		for _, pid := range projects {
			if g.counts[pid] < n || g.counts[pid] == 0 {
				g.counts[pid] += g.pipeline(pid)
				more = true
			}
		}
		if !more {
			return
		}
	}
}

type seeder struct {
	r            *rand.Rand
	w            *world.World
	runners      []json.RawMessage
	people       []int64
	users        map[int64]json.RawMessage // User entities, as jobs embed them
	emit         func(json.RawMessage)     // takes each job as it is made
	next         int64                     // next job id
	nextPipeline int64
	iid          map[int64]int
	counts       map[int64]int // jobs made per project
	pipelineJobs int           // jobs of a pipeline at most; 0: all its stages'
}

var stages = []struct {
	stage string
	names []string
}{
	{"build", []string{"compile", "docker-image"}},
	{"test", []string{"unit", "integration", "lint", "rspec 1/2", "rspec 2/2"}},
	{"deploy", []string{"deploy-staging", "deploy-production"}},
}

// pipeline adds one pipeline of a project with its jobs and returns how
// many jobs it added.
func (g *seeder) pipeline(pid int64) int {
	path := paths[pid]
	if g.iid == nil {
		g.iid = map[int64]int{}
	}
	g.iid[pid]++
	g.nextPipeline++
	plID := g.nextPipeline
	created := seedEpoch.Add(time.Duration(g.next) * 7 * time.Minute)
	ref := []string{"main", "main", "feature/login", "fix/cache"}[g.r.IntN(4)]
	sha := fmt.Sprintf("%040x", g.r.Uint64())
	user := g.people[g.r.IntN(len(g.people))]
	pipeline := map[string]any{"id": plID, "iid": g.iid[pid], "project_id": pid, "sha": sha, "ref": ref,
		"status": "success", "source": "push", "created_at": ts(created), "updated_at": ts(created.Add(20 * time.Minute)),
		"web_url": fmt.Sprintf("%s/%s/-/pipelines/%d", instance, path, plID)}
	commit := map[string]any{"id": sha, "short_id": sha[:8], "created_at": "2026-01-05T09:00:00.000+01:00",
		"parent_ids": []string{fmt.Sprintf("%040x", g.r.Uint64())}, "title": "Update the demo " + ref,
		"message": "Update the demo " + ref + "\n", "author_name": "Devi Developer", "author_email": "devi@example.com",
		"authored_date": "2026-01-05T09:00:00.000+01:00", "committer_name": "Devi Developer",
		"committer_email": "devi@example.com", "committed_date": "2026-01-05T09:00:00.000+01:00",
		"trailers": map[string]any{}, "extended_trailers": map[string]any{},
		"web_url": fmt.Sprintf("%s/%s/-/commit/%s", instance, path, sha)}
	n := 0
	room := func(k int) bool { return g.pipelineJobs == 0 || n+k <= g.pipelineJobs } // for k more jobs
	for _, st := range stages {
		for _, name := range st.names {
			if !room(1) {
				break
			}
			status := g.status(g.next)
			retried := false
			if status == jobs.Failed && g.r.IntN(3) == 0 && room(2) {
				// A failed try that was retried: the retry follows it.
				g.job(pid, path, plID, pipeline, commit, st.stage, name, ref, jobs.Failed, true, user, created)
				n++
			}
			g.job(pid, path, plID, pipeline, commit, st.stage, name, ref, status, retried, user, created)
			n++
		}
	}
	if g.r.IntN(4) == 0 && room(1) {
		g.bridge(pid, path, plID, pipeline, commit, ref, user, created)
		n++
	}
	g.w.Pipelines = append(g.w.Pipelines, mustJSON(pipeline))
	return n
}

// status spreads the 13 statuses, most jobs succeeding as in real life;
// job RunningJobID runs.
func (g *seeder) status(id int64) jobs.Status {
	switch id {
	case RunningJobID:
		return jobs.Running
	case FailedJobID:
		return jobs.Failed
	}
	if g.r.IntN(10) < 6 {
		return jobs.Success
	}
	return jobs.Statuses[g.r.IntN(len(jobs.Statuses))]
}

func (g *seeder) job(pid int64, path string, plID int64, pipeline, commit map[string]any, stage, name, ref string,
	status jobs.Status, retried bool, user int64, created time.Time) {
	id := g.next
	g.next++
	created = created.Add(time.Duration(id%5) * time.Second)
	j := map[string]any{"id": id, "status": status, "stage": stage, "name": name, "ref": ref, "tag": false,
		"coverage": nil, "allow_failure": name == "lint", "created_at": ts(created), "started_at": nil,
		"finished_at": nil, "erased_at": nil, "duration": nil, "queued_duration": nil,
		"user": g.users[user], "commit": commit, "pipeline": pipeline,
		"web_url": fmt.Sprintf("%s/%s/-/jobs/%d", instance, path, id), "project": map[string]any{"ci_job_token_scope_enabled": pid == ProjectFrontend},
		"artifacts": []any{}, "runner": nil, "runner_manager": nil, "artifacts_expire_at": nil,
		"archived": false, "tag_list": []string{"docker", "linux"}, "project_id": pid}
	started := created.Add(time.Duration(2+id%9) * time.Second)
	finished := started.Add(time.Duration(30+g.r.IntN(600)) * time.Second)
	switch status {
	case jobs.Running, jobs.Canceling:
		j["started_at"], j["runner"] = ts(started), g.runners[id%2]
		j["trace"] = trace(name, id, false)
		j["supports_canceling"] = true
	case jobs.Success, jobs.Failed, jobs.Canceled:
		j["started_at"], j["finished_at"], j["runner"] = ts(started), ts(finished), g.runners[id%2]
		j["duration"] = finished.Sub(started).Seconds()
		j["queued_duration"] = started.Sub(created).Seconds()
		j["trace"] = trace(name, id, status == jobs.Failed)
		if status != jobs.Canceled {
			j["artifacts"] = []any{
				map[string]any{"file_type": "archive", "size": 1000 + id, "filename": "artifacts.zip", "file_format": "zip"},
				map[string]any{"file_type": "metadata", "size": 186, "filename": "metadata.gz", "file_format": "gzip"},
				map[string]any{"file_type": "trace", "size": len(trace(name, id, status == jobs.Failed)), "filename": "job.log", "file_format": "raw"},
			}
			j["artifacts_file"] = map[string]any{"filename": "artifacts.zip", "size": 1000 + id}
			j["artifacts_expire_at"] = ts(finished.Add(30 * 24 * time.Hour))
		}
		if status == jobs.Failed {
			j["failure_reason"] = []string{"script_failure", "runner_system_failure", "stuck_or_timeout_failure"}[id%3]
		}
	case jobs.Manual:
		j["when"] = "manual"
	case jobs.Pending:
		j["queued_duration"] = 12.5
	}
	if stage == "deploy" && status != jobs.Manual && g.r.IntN(3) == 0 {
		j["when"] = "manual"
	}
	if retried {
		j["retried"] = true
	}
	if id == RunningJobID {
		j["token"] = JobTokenRunning
		j["environment"] = map[string]any{"name": "staging", "slug": "staging", "tier": "staging"}
	}
	if id == RunningJobID+1 && status.Completed() {
		j["token"] = JobTokenFinished
	}
	g.emit(mustJSON(j))
}

func (g *seeder) bridge(pid int64, path string, plID int64, pipeline, commit map[string]any, ref string, user int64, created time.Time) {
	id := g.next
	g.next++
	g.nextPipeline++
	down := g.nextPipeline
	downstream := map[string]any{"id": down, "iid": 1, "project_id": ProjectFrontend, "sha": pipeline["sha"],
		"ref": "main", "status": "success", "source": "pipeline", "created_at": ts(created.Add(5 * time.Minute)),
		"updated_at": ts(created.Add(9 * time.Minute)),
		"web_url":    fmt.Sprintf("%s/demo/platform/frontend/-/pipelines/%d", instance, down)}
	started, finished := created.Add(5*time.Minute), created.Add(9*time.Minute)
	g.emit(mustJSON(map[string]any{"id": id, "status": "success", "stage": "deploy",
		"name": "trigger-frontend", "ref": ref, "tag": false, "coverage": nil, "allow_failure": false,
		"created_at": ts(created), "started_at": ts(started), "finished_at": ts(finished), "erased_at": nil,
		"duration": finished.Sub(started).Seconds(), "queued_duration": nil, "user": g.users[user],
		"commit": commit, "pipeline": pipeline, "web_url": fmt.Sprintf("%s/%s/-/jobs/%d", instance, path, id),
		"project":             map[string]any{"ci_job_token_scope_enabled": pid == ProjectFrontend},
		"downstream_pipeline": downstream, "project_id": pid}))
}

// trace is a job log with GitLab Runner's ANSI colours and section markers.
func trace(name string, id int64, failed bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\x1b[0KRunning with gitlab-runner 17.5.0 (on shared-runner-1)\n")
	fmt.Fprintf(&b, "section_start:1736067600:prepare_script\r\x1b[0K\x1b[0K\x1b[36;1mPreparing environment\x1b[0;m\n")
	fmt.Fprintf(&b, "Running on runner-%d via gitlab-runner...\n", id)
	fmt.Fprintf(&b, "section_end:1736067601:prepare_script\r\x1b[0K\n")
	fmt.Fprintf(&b, "\x1b[32;1m$ make %s\x1b[0;m\n", strings.ReplaceAll(name, " ", "-"))
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "step %02d of %s: ok\n", i, name)
	}
	if failed {
		fmt.Fprintf(&b, "\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m\n")
	} else {
		fmt.Fprintf(&b, "\x1b[32;1mJob succeeded\x1b[0;m\n")
	}
	return b.String()
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
