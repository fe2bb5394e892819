package jobs

import (
	"encoding/json"
	"time"
)

// Kind tells builds from trigger jobs (bridges).
type Kind string

const (
	Build  Kind = "build"
	Bridge Kind = "bridge"
)

// Artifact is one of a job's artifact files (GitLab's JobArtifact entity).
type Artifact struct {
	FileType   string `json:"file_type" db:"t"`
	Size       *int64 `json:"size" db:"s"`
	Filename   string `json:"filename" db:"f"`
	FileFormat string `json:"file_format" db:"ff"`
}

// ArtifactsFile is the legacy archive summary (GitLab's JobArtifactFile).
type ArtifactsFile struct {
	Filename string `json:"filename" db:"f"`
	Size     int64  `json:"size" db:"s"`
}

// Variable is a job variable given when a manual job is played.
type Variable struct {
	Key   string `json:"key" db:"k"`
	Value string `json:"value" db:"v"`
}

// Job is a build or bridge as the store keeps it. The db tags name the stored
// attributes: short, because every byte of a job item is read on every page.
type Job struct {
	ID                int64           `db:"id"`
	ProjectID         int64           `db:"pr"`
	PipelineID        int64           `db:"pl"`
	Kind              Kind            `db:"k"`
	Status            Status          `db:"st"`
	Stage             string          `db:"sg"`
	Name              string          `db:"n"`
	Ref               string          `db:"rf"`
	Tag               bool            `db:"tg,omitempty"`
	Coverage          *float64        `db:"cv,omitempty"`
	AllowFailure      bool            `db:"af,omitempty"`
	CreatedAt         time.Time       `db:"ca"`
	QueuedAt          *time.Time      `db:"qa,omitempty"`
	StartedAt         *time.Time      `db:"sa,omitempty"`
	FinishedAt        *time.Time      `db:"fa,omitempty"`
	ErasedAt          *time.Time      `db:"ea,omitempty"`
	Duration          *float64        `db:"du,omitempty"` // kept as imported once finished
	QueuedDuration    *float64        `db:"qd,omitempty"` // kept as imported once started
	UserID            int64           `db:"u,omitempty"`
	RunnerID          int64           `db:"ru,omitempty"`
	RunnerManager     json.RawMessage `db:"rm,omitempty"`
	FailureReason     string          `db:"fr,omitempty"`
	Artifacts         []Artifact      `db:"ar,omitempty"`
	ArtifactsFile     *ArtifactsFile  `db:"arf,omitempty"`
	ArtifactsExpireAt *time.Time      `db:"ax,omitempty"`
	Archive           *Archive        `db:"az,omitempty"`  // the zip in S3, when one was uploaded
	ArtifactsAccess   string          `db:"aac,omitempty"` // artifacts:access: "" (all), developer, maintainer, none
	Locked            bool            `db:"lk,omitempty"`  // in the newest successful pipeline of its ref: artifacts kept
	LatestForRef      bool            `db:"lr,omitempty"`  // in the newest successful pipeline of its ref name (by-ref downloads)
	// RefPipelineID is, for a build of a successful pipeline, that pipeline's
	// root (itself, or the parent of a child pipeline): the by-ref search of
	// recent successful pipelines orders by it.
	RefPipelineID        int64           `db:"rp,omitempty"`
	Archived             bool            `db:"arc,omitempty"`
	TagList              []string        `db:"tl,omitempty"`
	DownstreamPipelineID int64           `db:"dp,omitempty"`
	Retried              bool            `db:"rt,omitempty"`
	When                 string          `db:"w,omitempty"`
	Environment          json.RawMessage `db:"env,omitempty"`
	SupportsCanceling    bool            `db:"sc,omitempty"` // the runner runs after_script on cancel
	DebugTrace           bool            `db:"dbg,omitempty"`
	HasTrace             bool            `db:"ht,omitempty"`
	TraceSize            int64           `db:"tz,omitempty"` // bytes of the stored log
	Variables            []Variable      `db:"var,omitempty"`
	Extra                json.RawMessage `db:"x,omitempty"`  // imported fields this API does not interpret, passed through
	WebURL               string          `db:"wu,omitempty"` // an imported web_url other than the project's URL + /-/jobs/<id>
	Ordinal              int64           `db:"o"`            // 1-based position among the project's builds, in id order
	RefOrdinal           int64           `db:"ro,omitempty"` // the same among the builds of its ref (0: a bridge, or no ref)
	Version              int64           `db:"v"`            // bumped by every write; conditions use it

	// FilesPending marks an erased job whose S3 files may not all be deleted
	// yet: erase marks the job first and deletes the files after.
	FilesPending bool `db:"fp,omitempty"`
	// ArchivePending marks a job whose artifacts were deleted but whose
	// archive may still be in S3: the record that drives its removal.
	ArchivePending bool `db:"apd,omitempty"`
}

// Archive is the job's artifacts zip as stored: its size in bytes. Its S3
// key follows from the job (jobfiles.ArchiveKey).
type Archive struct {
	Size int64 `db:"s"`
}

// IsBridge reports whether the job is a trigger job.
func (j *Job) IsBridge() bool { return j.Kind == Bridge }

// Durations returns duration and queued_duration as GitLab computes them at
// time now: stored values once the job is finished, live ones while it runs.
func (j *Job) Durations(now time.Time) (duration, queued *float64) {
	duration, queued = j.Duration, j.QueuedDuration
	if j.StartedAt != nil && duration == nil {
		end := now
		if j.FinishedAt != nil {
			end = *j.FinishedAt
		}
		duration = seconds(end.Sub(*j.StartedAt))
	}
	if j.QueuedAt != nil && queued == nil {
		end := now
		switch {
		case j.StartedAt != nil:
			end = *j.StartedAt
		case j.FinishedAt != nil:
			end = *j.FinishedAt
		}
		queued = seconds(end.Sub(*j.QueuedAt))
	}
	return duration, queued
}

func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}
