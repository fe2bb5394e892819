package jobs

import (
	"encoding/json"
	"slices"
	"time"
)

// Access levels of project members, as GitLab numbers them.
const (
	NoAccess   = 0
	Guest      = 10
	Planner    = 15
	Reporter   = 20
	Developer  = 30
	Maintainer = 40
	Owner      = 50
)

// Visibility levels of a project.
const (
	Private  = "private"
	Internal = "internal"
	Public   = "public"
)

// Project holds what the Jobs API needs of a GitLab project.
type Project struct {
	ID                   int64           `db:"id"`
	Path                 string          `db:"path"` // path_with_namespace
	GroupID              int64           `db:"g,omitempty"`
	Visibility           string          `db:"vis"`
	PublicBuilds         bool            `db:"pb,omitempty"`
	JobTokenScopeEnabled bool            `db:"jts,omitempty"`
	ProtectedRefs        []string        `db:"prot,omitempty"`
	WebURL               string          `db:"url"`
	Builds               int64           `db:"nb"`            // builds created so far: the highest build ordinal
	Identity             json.RawMessage `db:"doc,omitempty"` // GitLab's ProjectIdentity, as imported
	// The store's bookkeeping of build ids and index keys (see store):
	MaxBuildID int64 `db:"mx,omitempty"` // the highest build id: a new build's id is above it
	IDsEnd     int64 `db:"ie,omitempty"` // ids MaxBuildID+1..IDsEnd are leased for the next builds
	Shards     int   `db:"sh,omitempty"` // write shards of the build indexes; 0 is 1
	// ShardsToo is another shard count whose index keys lists read as well
	// while jobsctl reshard moves builds between the two (0: none).
	ShardsToo int `db:"so,omitempty"`
	// RankCounts: the project's completed builds, and each ref's, have been
	// counted since it had none, so deep offset pages of them may read the
	// counts. (tm: the counts are masks of ordinals; tc and tr marked
	// counts of builds, which no page reads any more.)
	RankCounts bool `db:"tm,omitempty"`
	// RefCounts is where the count of each ref's builds is kept: 0 in the
	// project's own partition, 2 in an item of the ref's own (so that
	// creations in several refs do not all write one partition), 1 while
	// jobsctl reshard moves them from the one to the other.
	RefCounts int `db:"ra,omitempty"`
	// Combiner is the token of the container that places the project's
	// queued creations, until CombinerUntil (Unix milliseconds): while it
	// is live, creations queue instead of racing for Builds.
	Combiner      string `db:"cl,omitempty"`
	CombinerUntil int64  `db:"ce,omitempty"`
}

// Protected reports whether ref is one of the project's protected refs: the
// stand-in for GitLab's protected branch and tag rules.
func (p *Project) Protected(ref string) bool { return slices.Contains(p.ProtectedRefs, ref) }

// User is a GitLab user; Doc is its User entity as imported, rendered as is.
type User struct {
	ID       int64           `db:"id"`
	Username string          `db:"un"`
	State    string          `db:"s"`
	Admin    bool            `db:"adm,omitempty"`
	Doc      json.RawMessage `db:"doc"`
}

// Active reports whether the user may authenticate.
func (u *User) Active() bool { return u.State == "" || u.State == "active" }

// Token is a personal access token or a CI job token. Only its SHA-256 hash
// is ever stored.
type Token struct {
	Hash        string     `db:"h"`
	UserID      int64      `db:"u"`
	Scopes      []string   `db:"sc,omitempty"`
	ExpiresAt   *time.Time `db:"exp,omitempty"`
	Revoked     bool       `db:"rev,omitempty"`
	JobID       int64      `db:"job,omitempty"` // set on job tokens
	ProjectID   int64      `db:"pr,omitempty"`  // the job's project, on job tokens
	ProjectPath string     `db:"pp,omitempty"`  // and its full path, for error messages
}

// IsJobToken reports whether t is a CI job token.
func (t *Token) IsJobToken() bool { return t.JobID != 0 }

// Expired reports whether the token is past its expiry date at now.
func (t *Token) Expired(now time.Time) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) }

// HasScope reports whether the token carries scope s.
func (t *Token) HasScope(s string) bool { return slices.Contains(t.Scopes, s) }

// Pipeline is a CI pipeline; Doc is its PipelineBasic entity and Commit the
// Commit entity of its sha, both as imported.
type Pipeline struct {
	ID        int64            `db:"id"`
	ProjectID int64            `db:"pr"`
	Doc       json.RawMessage  `db:"doc"`
	Commit    json.RawMessage  `db:"c,omitempty"`
	Counts    map[string]int64 `db:"n"` // jobs per CountKey, kept by every write
}

// CountKey names one of a pipeline's job counts: builds (B) or bridges (X)
// in one status, latest try (L) or retried (R).
func CountKey(k Kind, st Status, retried bool) string {
	kind, try := "B", "L"
	if k == Bridge {
		kind = "X"
	}
	if retried {
		try = "R"
	}
	return kind + "_" + string(st) + "_" + try
}

// Count is how many of the pipeline's jobs of kind k are in one of statuses
// (all when empty), retried ones included or not.
func (p *Pipeline) Count(k Kind, statuses []Status, includeRetried bool) int64 {
	if len(statuses) == 0 {
		statuses = Statuses
	}
	var n int64
	for _, st := range statuses {
		n += p.Counts[CountKey(k, st, false)]
		if includeRetried {
			n += p.Counts[CountKey(k, st, true)]
		}
	}
	return n
}

// Runner is a CI runner; Doc is its Runner entity as imported.
type Runner struct {
	ID  int64           `db:"id"`
	Doc json.RawMessage `db:"doc"`
}

// Group is a namespace group.
type Group struct {
	ID       int64  `db:"id"`
	FullPath string `db:"path"`
	ParentID int64  `db:"parent,omitempty"`
}

// Agent is a GitLab agent for Kubernetes and where it is authorized; the
// import document spells it with the json names.
type Agent struct {
	ID                   int64           `db:"id" json:"id"`
	Name                 string          `db:"n" json:"name"`
	ConfigProjectID      int64           `db:"cp" json:"config_project_id"`
	AuthorizedProjectIDs []int64         `db:"ap,omitempty" json:"authorized_project_ids"`
	AuthorizedGroupIDs   []int64         `db:"ag,omitempty" json:"authorized_group_ids"`
	Configuration        json.RawMessage `db:"cfg,omitempty" json:"configuration,omitempty"`
}

// Related holds what a page of jobs refers to and shares: users, pipelines
// (with their commits; downstream pipelines too) and runners.
type Related struct {
	Users     map[int64]*User
	Pipelines map[int64]*Pipeline
	Runners   map[int64]*Runner
}

// NewRelated is an empty Related, ready to be filled.
func NewRelated() *Related {
	return &Related{Users: map[int64]*User{}, Pipelines: map[int64]*Pipeline{}, Runners: map[int64]*Runner{}}
}

// Covers reports whether r holds everything j refers to.
func (r *Related) Covers(j *Job) bool {
	return (j.UserID == 0 || r.Users[j.UserID] != nil) &&
		(j.RunnerID == 0 || r.Runners[j.RunnerID] != nil) &&
		r.Pipelines[j.PipelineID] != nil &&
		(j.DownstreamPipelineID == 0 || r.Pipelines[j.DownstreamPipelineID] != nil)
}
