// Package world imports a "world" document (users, tokens, groups, projects,
// pipelines, agents and jobs, each job exactly as GitLab's API returns it)
// into the store and the job files bucket.
package world

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobfiles"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/progress"
)

// World is the import document.
type World struct {
	InstanceURL string            `json:"instance_url"`
	Users       []json.RawMessage `json:"users"`
	Tokens      []Token           `json:"tokens"`
	Groups      []Group           `json:"groups"`
	Projects    []Project         `json:"projects"`
	Pipelines   []json.RawMessage `json:"pipelines"`
	Runners     []json.RawMessage `json:"runners,omitempty"`
	Agents      []jobs.Agent      `json:"agents"`
	Jobs        []json.RawMessage `json:"jobs"`
	// Dir is where the document's relative paths (artifacts_archive) are
	// read: the document's own directory, or the demo's generated files.
	Dir fs.FS `json:"-"`
}

// Token is an access token of the import document.
type Token struct {
	Token     string   `json:"token"`
	UserID    int64    `json:"user_id"`
	Scopes    []string `json:"scopes"`
	ExpiresAt *string  `json:"expires_at"`
	Revoked   bool     `json:"revoked"`
}

// Group is a group of the import document.
type Group struct {
	ID       int64  `json:"id"`
	FullPath string `json:"full_path"`
	ParentID *int64 `json:"parent_id"`
}

// Member is a project membership.
type Member struct {
	UserID      int64 `json:"user_id"`
	AccessLevel int   `json:"access_level"`
}

// Project is a project of the import document; the ProjectIdentity fields
// (name, description, ...) are kept as given.
type Project struct {
	ID                   int64    `json:"id"`
	PathWithNamespace    string   `json:"path_with_namespace"`
	GroupID              *int64   `json:"group_id"`
	Visibility           string   `json:"visibility"`
	PublicBuilds         bool     `json:"public_builds"`
	JobTokenScopeEnabled bool     `json:"ci_job_token_scope_enabled"`
	ProtectedRefs        []string `json:"protected_refs"`
	Members              []Member `json:"members"`
	WebURL               string   `json:"web_url,omitempty"`
	Description          *string  `json:"description,omitempty"`
	Name                 string   `json:"name,omitempty"`
	NameWithNamespace    string   `json:"name_with_namespace,omitempty"`
	Path                 string   `json:"path,omitempty"`
	CreatedAt            *string  `json:"created_at,omitempty"`
	// Shards is the write shards of the project's build indexes (import
	// only; absent: as stored, else 1). Set it before the project has
	// builds, or use jobsctl reshard.
	Shards int `json:"shards,omitempty"`
}

// Summary counts what an import wrote (a resumed import: since it resumed).
type Summary struct {
	Users, Tokens, Projects, Pipelines, Jobs, NewJobs, Traces, Archives int
}

// Importer writes worlds into a store and a bucket.
type Importer struct {
	Store *store.Store
	Files *jobfiles.Store
	Now   func() time.Time
	Meter *progress.Meter // shows each phase; nil shows nothing
	// Checkpoint, if set, is the file where ImportFile records how far it
	// got (and Checkpoint+".next"), so that a run after a crash continues
	// there; it is removed once the import is done.
	Checkpoint string
}

// HashToken is how token secrets are stored: SHA-256, hex.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Import writes w, held in memory. Importing the same document twice
// changes nothing: jobs that exist are left as they are, everything else
// is rewritten as it was.
func (im *Importer) Import(ctx context.Context, w *World) (*Summary, error) {
	return im.run(ctx, w, sliceSource(w.Jobs), sliceSource(w.Pipelines), w.Dir, "")
}

// ImportFile imports the document in f, reading its jobs and pipelines one
// at a time (they are not held: memory stays flat whatever their size), its
// sections in any order; dir is where its artifacts_archive paths are.
func (im *Importer) ImportFile(ctx context.Context, f *os.File, dir fs.FS) (*Summary, error) {
	d, err := readDocument(f, im.meter())
	if err != nil {
		return nil, err
	}
	return im.run(ctx, d.world, d.jobs, d.pipelines, dir, d.sum)
}

func (im *Importer) meter() *progress.Meter {
	if im.Meter == nil {
		return progress.Discard()
	}
	return im.Meter
}

// run imports a document: its sections, then its pipelines and jobs in two
// passes. The first (check) decodes every listed pipeline and every job to
// check them, writes the users and runners jobs embed, asks which jobs are
// stored already and plans every value that depends on the whole document:
// which jobs are new, their ordinals, what they add to their pipelines'
// counts, and locks. The second (write) decodes the jobs again and writes
// each new job whole and each pipeline's document (a listed one read again
// where the plan says it is) and counts (one update, see
// store.ImportPipeline), in batches; a checkpoint keeps the plan and how
// far the writes got.
func (im *Importer) run(ctx context.Context, w *World, src, pipes source, dir fs.FS, doc string) (*Summary, error) {
	sum := &Summary{Jobs: src.len()}
	d, err := im.putSections(ctx, w, sum)
	if err != nil {
		return nil, err
	}
	cp := im.checkpoint(doc)
	pl, from, err := cp.load()
	if err != nil {
		return nil, err
	}
	if pl == nil {
		if pl, err = im.survey(ctx, src, pipes, dir, d); err != nil {
			return nil, err
		}
		// Ids leased from here on lie above every imported one, before any
		// is written; a resumed import keeps what was leased before this.
		if pl.Leased, err = im.Store.RaiseJobCounter(ctx, pl.MaxID); err != nil {
			return nil, err
		}
		if err := cp.savePlan(pl); err != nil {
			return nil, err
		}
	}
	sum.NewJobs = len(pl.Fresh)
	defer im.Store.ForgetPages()
	for _, o := range pl.Ordinals {
		if err := im.Store.RenumberBuilds(ctx, o); err != nil {
			return nil, err
		}
	}
	if err := im.write(ctx, src, pipes, from, dir, d, pl, cp, sum); err != nil {
		return nil, err
	}
	phase := im.meter().Phase("finish", "items", 0)
	defer phase.Done()
	for _, pp := range pl.Pipelines {
		if pp.at() < 0 { // listed, and no job embeds it with its commit
			p, err := listedPipeline(pipes, pp)
			if err != nil {
				return nil, err
			}
			if err := im.Store.ImportPipeline(ctx, p, pp.Counts.delta(), pp.Mark); err != nil {
				return nil, err
			}
			sum.Pipelines++
			phase.Add(1)
		}
	}
	for pid, o := range pl.Ordinals {
		if err := im.Store.CountBuilds(ctx, pid, o); err != nil {
			return nil, err
		}
		phase.Add(1)
	}
	return sum, cp.remove()
}

// sections are the document's small parts, held during the import.
type sections struct {
	projects map[int64]*jobs.Project
	users    map[int64]bool // users written; jobs' embedded copies must not overwrite them
}

// putSections writes everything but the jobs and pipelines.
func (im *Importer) putSections(ctx context.Context, w *World, sum *Summary) (*sections, error) {
	d := &sections{projects: map[int64]*jobs.Project{}, users: map[int64]bool{}}
	instance := strings.TrimSuffix(w.InstanceURL, "/")
	for _, raw := range w.Users {
		u, err := decodeUser(raw)
		if err != nil {
			return nil, err
		}
		if err := im.Store.PutUser(ctx, u); err != nil {
			return nil, err
		}
		d.users[u.ID] = true
		sum.Users++
	}
	for _, g := range w.Groups {
		grp := &jobs.Group{ID: g.ID, FullPath: g.FullPath}
		if g.ParentID != nil {
			grp.ParentID = *g.ParentID
		}
		if err := im.Store.PutGroup(ctx, grp); err != nil {
			return nil, err
		}
	}
	for i := range w.Projects {
		p, members, err := decodeProject(&w.Projects[i], instance)
		if err != nil {
			return nil, err
		}
		if err := im.Store.PutProject(ctx, p, members); err != nil {
			return nil, err
		}
		d.projects[p.ID] = p
		sum.Projects++
	}
	for _, t := range w.Tokens {
		tok := &jobs.Token{Hash: HashToken(t.Token), UserID: t.UserID, Scopes: t.Scopes, Revoked: t.Revoked}
		if t.ExpiresAt != nil {
			exp, err := parseDate(*t.ExpiresAt)
			if err != nil {
				return nil, fmt.Errorf("token of user %d: %w", t.UserID, err)
			}
			tok.ExpiresAt = &exp
		}
		if err := im.Store.PutToken(ctx, tok); err != nil {
			return nil, err
		}
		sum.Tokens++
	}
	for i := range w.Agents {
		if err := im.Store.PutAgent(ctx, &w.Agents[i]); err != nil {
			return nil, err
		}
	}
	for _, raw := range w.Runners {
		if _, err := im.putRunner(ctx, raw); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func decodeUser(raw json.RawMessage) (*jobs.User, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	var u struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
		State    string `json:"state"`
		Admin    bool   `json:"admin"`
	}
	if err := json.Unmarshal(raw, &u); err != nil || u.ID == 0 {
		return nil, fmt.Errorf("user: needs an id: %s", raw)
	}
	// admin is the import's own key: GitLab's User entity does not show it.
	doc, err := withoutKeys(raw, "admin")
	if err != nil {
		return nil, err
	}
	return &jobs.User{ID: u.ID, Username: u.Username, State: u.State, Admin: u.Admin, Doc: doc}, nil
}

func decodeProject(p *Project, instance string) (*jobs.Project, map[int64]int, error) {
	if p.ID == 0 || !strings.Contains(p.PathWithNamespace, "/") {
		return nil, nil, fmt.Errorf("project %d: needs an id and a path_with_namespace with a namespace", p.ID)
	}
	out := &jobs.Project{ID: p.ID, Path: p.PathWithNamespace, Visibility: p.Visibility,
		PublicBuilds: p.PublicBuilds, JobTokenScopeEnabled: p.JobTokenScopeEnabled, ProtectedRefs: p.ProtectedRefs,
		WebURL: p.WebURL, Shards: p.Shards}
	if p.Shards < 0 || p.Shards > store.MaxShards {
		return nil, nil, fmt.Errorf("project %d: shards %d, want 1 to %d", p.ID, p.Shards, store.MaxShards)
	}
	if out.Visibility == "" {
		out.Visibility = jobs.Private
	}
	if out.WebURL == "" {
		out.WebURL = instance + "/" + p.PathWithNamespace
	}
	if p.GroupID != nil {
		out.GroupID = *p.GroupID
	}
	name := p.Name
	if name == "" {
		name = p.PathWithNamespace[strings.LastIndex(p.PathWithNamespace, "/")+1:]
	}
	path := p.Path
	if path == "" {
		path = name
	}
	nwn := p.NameWithNamespace
	if nwn == "" {
		nwn = strings.ReplaceAll(p.PathWithNamespace, "/", " / ")
	}
	identity, err := json.Marshal(struct {
		ID                int64   `json:"id"`
		Description       *string `json:"description"`
		Name              string  `json:"name"`
		NameWithNamespace string  `json:"name_with_namespace"`
		Path              string  `json:"path"`
		PathWithNamespace string  `json:"path_with_namespace"`
		CreatedAt         *string `json:"created_at"`
	}{p.ID, p.Description, name, nwn, path, p.PathWithNamespace, p.CreatedAt})
	if err != nil {
		return nil, nil, err
	}
	out.Identity = identity
	members := map[int64]int{}
	for _, m := range p.Members {
		members[m.UserID] = m.AccessLevel
	}
	return out, members, nil
}

func decodePipeline(raw json.RawMessage) (*jobs.Pipeline, error) {
	var p struct {
		ID        int64 `json:"id"`
		ProjectID int64 `json:"project_id"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.ID == 0 {
		return nil, fmt.Errorf("pipeline needs an id: %s", raw)
	}
	return &jobs.Pipeline{ID: p.ID, ProjectID: p.ProjectID, Doc: compact(raw)}, nil
}

func (im *Importer) putRunner(ctx context.Context, raw json.RawMessage) (int64, error) {
	var r struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == 0 {
		return 0, fmt.Errorf("runner needs an id: %s", raw)
	}
	return r.ID, im.Store.PutRunner(ctx, &jobs.Runner{ID: r.ID, Doc: compact(raw)})
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	return t.UTC(), err
}
