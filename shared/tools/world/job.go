package world

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
)

// decodedKeys are the keys of an imported job that the importer decodes
// into its own attributes: those of GitLab's Job and Bridge entities and the
// import-only ones, read off jobDoc so that they cannot drift from what is
// rendered. Every other key is passed through to responses as it came.
var decodedKeys = jsonKeys(reflect.TypeFor[jobDoc]())

// jsonKeys lists the JSON keys of a struct type, embedded structs' included.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if f.Anonymous {
			keys = append(keys, jsonKeys(f.Type)...)
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// jobDoc is an imported job: GitLab's entity (as we render it, so that a
// round trip is exact) plus a bridge's downstream pipeline and the
// import-only keys.
type jobDoc struct {
	render.Job
	DownstreamPipeline json.RawMessage `json:"downstream_pipeline"`
	ProjectID          int64           `json:"project_id"`
	Type               string          `json:"type"`
	Retried            bool            `json:"retried"`
	When               string          `json:"when"`
	Trace              *string         `json:"trace"`
	Token              string          `json:"token"`
	Environment        json.RawMessage `json:"environment"`
	DebugTrace         bool            `json:"debug_trace_enabled"`
	SupportsCanceling  bool            `json:"supports_canceling"`
	QueuedAt           *string         `json:"queued_at"`
	ArtifactsArchive   string          `json:"artifacts_archive"` // the zip, relative to the document
	ArtifactsAccess    string          `json:"artifacts_access"`
}

type importedJob struct {
	job     *jobs.Job
	trace   *string
	token   string
	archive string // artifacts_archive, a path in World.Dir
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// embedded is what an imported job carries besides itself, stored once and
// shared: its pipeline (with the commit), a bridge's downstream pipeline,
// its user and runner.
type embedded struct {
	pipeline, downstream *jobs.Pipeline
	commit               json.RawMessage
	user                 *jobs.User
	runner               json.RawMessage
}

// jobDecoder turns imported jobs into domain jobs, checking them against
// the document's projects; listed is the project of a pipeline the
// document lists (ok false if it does not), which wins over the copies
// jobs embed. One pass uses one decoder, from one goroutine.
type jobDecoder struct {
	now      time.Time
	projects map[int64]*jobs.Project
	listed   func(pipeline int64) (project int64, ok bool)
	// extra keeps the keys it does not decode in Job.Extra: the pass that
	// writes jobs needs them, the one that checks them does not.
	extra bool
	// users are the users decoded so far by their bytes: the jobs of a
	// document embed copies of a few users, and decoding one was a third of
	// decoding a job.
	users map[string]*jobs.User
}

// maxDecodedUsers bounds jobDecoder.users, for documents of many users.
const maxDecodedUsers = 1024

func (jd *jobDecoder) user(raw json.RawMessage) (*jobs.User, error) {
	if u, ok := jd.users[string(raw)]; ok {
		return u, nil
	}
	u, err := decodeUser(raw)
	if err != nil {
		return nil, err
	}
	if jd.users == nil || len(jd.users) == maxDecodedUsers {
		jd.users = map[string]*jobs.User{}
	}
	jd.users[string(raw)] = u
	return u, nil
}

func (jd *jobDecoder) decode(raw json.RawMessage) (*importedJob, *embedded, error) {
	var d jobDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, nil, fmt.Errorf("job: %w", err)
	}
	j, err := d.toJob(jd.now)
	if err != nil {
		return nil, nil, fmt.Errorf("job %d: %w", d.ID, err)
	}
	if jd.extra {
		if j.Extra, err = withoutKeys(raw, decodedKeys...); err != nil {
			return nil, nil, err
		}
		if string(j.Extra) == "{}" {
			j.Extra = nil
		}
	}
	e := &embedded{}
	if !isNull(d.Pipeline) {
		if e.pipeline, err = decodePipeline(d.Pipeline); err != nil {
			return nil, nil, fmt.Errorf("job %d: %w", d.ID, err)
		}
		j.PipelineID = e.pipeline.ID
		if !isNull(d.Commit) {
			e.commit = compact(d.Commit)
		}
		if j.ProjectID == 0 {
			j.ProjectID = e.pipeline.ProjectID
			if pid, ok := jd.listed(e.pipeline.ID); ok {
				j.ProjectID = pid
			}
		}
	}
	if !isNull(d.DownstreamPipeline) {
		if e.downstream, err = decodePipeline(d.DownstreamPipeline); err != nil {
			return nil, nil, fmt.Errorf("job %d: downstream %w", d.ID, err)
		}
		j.DownstreamPipelineID = e.downstream.ID
	}
	if j.ProjectID == 0 || j.PipelineID == 0 {
		return nil, nil, fmt.Errorf("job %d: needs a project_id and a pipeline", d.ID)
	}
	project, ok := jd.projects[j.ProjectID]
	if !ok {
		return nil, nil, fmt.Errorf("job %d: project %d is not in the document", d.ID, j.ProjectID)
	}
	// web_url is kept as given; only the one GitLab would show is left to rendering.
	if d.WebURL != "" && d.WebURL != render.JobWebURL(project, j) {
		j.WebURL = d.WebURL
	}
	if !isNull(d.User) {
		if e.user, err = jd.user(d.User); err != nil {
			return nil, nil, fmt.Errorf("job %d: %w", d.ID, err)
		}
		j.UserID = e.user.ID
	}
	if !isNull(d.Runner) {
		var r struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(d.Runner, &r); err != nil {
			return nil, nil, fmt.Errorf("job %d: runner: %w", d.ID, err)
		}
		j.RunnerID, e.runner = r.ID, d.Runner
	}
	if d.ArtifactsArchive != "" && j.ArtifactsFile == nil {
		return nil, nil, fmt.Errorf("job %d: an artifacts_archive needs the artifacts_file it is", d.ID)
	}
	return &importedJob{job: j, trace: d.Trace, token: d.Token, archive: d.ArtifactsArchive}, e, nil
}

// toJob converts the scalar fields. Durations are kept as given once they
// are final (finished, or started for the queue time); live ones are
// computed at read time as GitLab does.
func (d *jobDoc) toJob(now time.Time) (*jobs.Job, error) {
	st, ok := jobs.ParseStatus(string(d.Status))
	if !ok || d.ID <= 0 {
		return nil, fmt.Errorf("needs an id and a valid status, got %q", d.Status)
	}
	j := &jobs.Job{ID: d.ID, ProjectID: d.ProjectID, Status: st, Stage: d.Stage, Name: d.Name, Ref: d.Ref,
		Tag: d.Tag, Coverage: d.Coverage, AllowFailure: d.AllowFailure,
		Artifacts: d.Artifacts, ArtifactsFile: d.ArtifactsFile, Archived: d.Archived, TagList: d.TagList,
		Retried: d.Retried, When: d.When, DebugTrace: d.DebugTrace, SupportsCanceling: d.SupportsCanceling,
		HasTrace: d.Trace != nil && *d.Trace != "", Kind: jobs.Build, Version: 1, ArtifactsAccess: d.ArtifactsAccess}
	if !jobs.ValidAccess(d.ArtifactsAccess) {
		return nil, fmt.Errorf("artifacts_access %q: want developer, maintainer or none (absent: all)", d.ArtifactsAccess)
	}
	if j.HasTrace {
		j.TraceSize = int64(len(*d.Trace))
	}
	// A downstream_pipeline key, even null, is what marks a bridge in GitLab's JSON.
	if d.Type == string(jobs.Bridge) || (d.Type == "" && d.DownstreamPipeline != nil) {
		j.Kind = jobs.Bridge
	}
	if !isNull(d.RunnerManager) {
		j.RunnerManager = compact(d.RunnerManager)
	}
	if !isNull(d.Environment) {
		j.Environment = compact(d.Environment)
	}
	if j.TagList != nil {
		slices.Sort(j.TagList)
	}
	times := []struct {
		in  *string
		out **time.Time
	}{{d.StartedAt, &j.StartedAt}, {d.FinishedAt, &j.FinishedAt}, {d.ErasedAt, &j.ErasedAt},
		{d.ArtifactsExpireAt, &j.ArtifactsExpireAt}, {d.QueuedAt, &j.QueuedAt}}
	for _, t := range times {
		if t.in == nil {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, *t.in)
		if err != nil {
			return nil, err
		}
		v = v.UTC()
		*t.out = &v
	}
	if d.CreatedAt == nil {
		return nil, fmt.Errorf("needs created_at")
	}
	created, err := time.Parse(time.RFC3339Nano, *d.CreatedAt)
	if err != nil {
		return nil, err
	}
	j.CreatedAt = created.UTC()
	if j.FinishedAt != nil {
		j.Duration = d.Duration
	}
	if j.StartedAt != nil || j.FinishedAt != nil {
		j.QueuedDuration = d.QueuedDuration
	} else if j.QueuedAt == nil && d.QueuedDuration != nil {
		q := now.Add(-time.Duration(*d.QueuedDuration * float64(time.Second)))
		j.QueuedAt = &q
	}
	if j.Status == jobs.Failed && d.FailureReason != nil {
		j.FailureReason = *d.FailureReason
	}
	return j, nil
}
