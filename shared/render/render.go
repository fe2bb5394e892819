// Package render turns jobs into GitLab's JSON entities (Job, Bridge), field
// for field and in GitLab's exposure order.
package render

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// TimeFormat is GitLab's timestamp format: ISO 8601, milliseconds, UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z"

var null = json.RawMessage("null")

// Time renders t as GitLab does; nil renders as null.
func Time(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(TimeFormat)
	return &s
}

type projectRef struct {
	CIJobTokenScopeEnabled bool `json:"ci_job_token_scope_enabled"`
}

// JobBasic is GitLab's JobBasic entity.
type JobBasic struct {
	ID             int64           `json:"id"`
	Status         jobs.Status     `json:"status"`
	Stage          string          `json:"stage"`
	Name           string          `json:"name"`
	Ref            string          `json:"ref"`
	Tag            bool            `json:"tag"`
	Coverage       *float64        `json:"coverage"`
	AllowFailure   bool            `json:"allow_failure"`
	CreatedAt      *string         `json:"created_at"`
	StartedAt      *string         `json:"started_at"`
	FinishedAt     *string         `json:"finished_at"`
	ErasedAt       *string         `json:"erased_at"`
	Duration       *float64        `json:"duration"`
	QueuedDuration *float64        `json:"queued_duration"`
	User           json.RawMessage `json:"user"`
	Commit         json.RawMessage `json:"commit"`
	Pipeline       json.RawMessage `json:"pipeline"`
	FailureReason  *string         `json:"failure_reason,omitempty"`
	WebURL         string          `json:"web_url"`
	Project        projectRef      `json:"project"`
}

// Job is GitLab's Job entity.
type Job struct {
	JobBasic
	ArtifactsFile     *jobs.ArtifactsFile `json:"artifacts_file,omitempty"`
	Artifacts         []jobs.Artifact     `json:"artifacts"`
	Runner            json.RawMessage     `json:"runner"`
	RunnerManager     json.RawMessage     `json:"runner_manager,omitempty"`
	ArtifactsExpireAt *string             `json:"artifacts_expire_at"`
	Archived          bool                `json:"archived"`
	TagList           []string            `json:"tag_list"`
}

// Bridge is GitLab's Bridge entity.
type Bridge struct {
	JobBasic
	DownstreamPipeline json.RawMessage `json:"downstream_pipeline"`
}

func raw(doc json.RawMessage) json.RawMessage {
	if len(doc) == 0 {
		return null
	}
	return doc
}

// JobWebURL is a job's page: as imported, or the project's URL and the job's path.
func JobWebURL(p *jobs.Project, j *jobs.Job) string {
	if j.WebURL != "" {
		return j.WebURL
	}
	return p.WebURL + "/-/jobs/" + strconv.FormatInt(j.ID, 10)
}

func basic(j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) JobBasic {
	b := JobBasic{
		ID: j.ID, Status: j.Status, Stage: j.Stage, Name: j.Name, Ref: j.Ref, Tag: j.Tag,
		Coverage: j.Coverage, AllowFailure: j.AllowFailure,
		CreatedAt: Time(&j.CreatedAt), StartedAt: Time(j.StartedAt), FinishedAt: Time(j.FinishedAt),
		ErasedAt: Time(j.ErasedAt),
		User:     null, Commit: null, Pipeline: null,
		WebURL:  JobWebURL(p, j),
		Project: projectRef{CIJobTokenScopeEnabled: p.JobTokenScopeEnabled},
	}
	b.Duration, b.QueuedDuration = j.Durations(now)
	if u := rel.Users[j.UserID]; u != nil {
		b.User = raw(u.Doc)
	}
	if pl := rel.Pipelines[j.PipelineID]; pl != nil {
		b.Pipeline, b.Commit = raw(pl.Doc), raw(pl.Commit)
	}
	if j.Status == jobs.Failed {
		reason := j.FailureReason
		if reason == "" {
			reason = "unknown_failure"
		}
		b.FailureReason = &reason
	}
	return b
}

// NewJob builds the Job entity of j. GitLab presents bridges with it too
// (after a retry), without runner_manager.
func NewJob(j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) *Job {
	out := &Job{
		JobBasic:          basic(j, p, rel, now),
		ArtifactsFile:     j.ArtifactsFile,
		Artifacts:         j.Artifacts,
		Runner:            null,
		ArtifactsExpireAt: Time(j.ArtifactsExpireAt),
		Archived:          j.Archived,
		TagList:           j.TagList,
	}
	if out.Artifacts == nil {
		out.Artifacts = []jobs.Artifact{}
	}
	if out.TagList == nil {
		out.TagList = []string{}
	}
	if r := rel.Runners[j.RunnerID]; r != nil {
		out.Runner = raw(r.Doc)
	}
	if !j.IsBridge() {
		out.RunnerManager = raw(j.RunnerManager)
	}
	return out
}

// NewBridge builds the Bridge entity of j.
func NewBridge(j *jobs.Job, p *jobs.Project, rel *jobs.Related, now time.Time) *Bridge {
	out := &Bridge{JobBasic: basic(j, p, rel, now), DownstreamPipeline: null}
	if d := rel.Pipelines[j.DownstreamPipelineID]; d != nil {
		out.DownstreamPipeline = raw(d.Doc)
	}
	return out
}

// Marshal writes an entity as JSON and appends the job's pass-through
// fields (imported keys this API does not interpret) to the object.
func Marshal(entity any, extra json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(entity)
	if err != nil || len(extra) <= 2 {
		return b, err
	}
	extra = bytes.TrimSpace(extra)
	out := make([]byte, 0, len(b)+len(extra))
	out = append(out, b[:len(b)-1]...)
	out = append(out, ',')
	return append(out, extra[1:]...), nil
}
