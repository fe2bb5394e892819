package jobs

import (
	"errors"
	"slices"
	"time"
)

// Artifact access settings (artifacts:access in .gitlab-ci.yml, stored on
// the archive): who below the project's read_build may download.
const (
	AccessAll        = "" // artifacts:public true, access: all, or nothing set
	AccessDeveloper  = "developer"
	AccessMaintainer = "maintainer"
	AccessNone       = "none"
)

// ValidAccess reports whether a is one of the access settings.
func ValidAccess(a string) bool {
	return slices.Contains([]string{AccessAll, AccessDeveloper, AccessMaintainer, AccessNone}, a)
}

// ErrNoArtifacts is keep on a job without current artifacts.
var ErrNoArtifacts = errors.New("job has no current artifacts")

// HasArchiveRow reports whether GitLab would have an archive artifact row
// for j: the Job entity shows an artifacts_file. The zip itself may still be
// missing from storage (Archive nil), as on GitLab when a file is lost.
func (j *Job) HasArchiveRow() bool { return j.ArtifactsFile != nil }

// expired reports whether the artifacts' expiry has passed at now.
func (j *Job) expired(now time.Time) bool {
	return j.ArtifactsExpireAt != nil && !now.Before(*j.ArtifactsExpireAt)
}

// ArtifactsAvailable is GitLab's available_artifacts?: an archive row
// whose expiry has not passed, or that a locked pipeline keeps.
func (j *Job) ArtifactsAvailable(now time.Time) bool {
	return j.HasArchiveRow() && (!j.expired(now) || j.Locked)
}

// ArchiveName is the archive's file name: what the runner uploaded, as the
// Job entity shows it under artifacts_file.filename.
func (j *Job) ArchiveName() string {
	if j.ArtifactsFile != nil && j.ArtifactsFile.Filename != "" {
		return j.ArtifactsFile.Filename
	}
	return "artifacts.zip"
}

// Downloadable reports whether the by-ref lookup may choose j: it has an
// archive or a report, any artifact but its log and the archive's metadata.
func (j *Job) Downloadable() bool {
	if j.HasArchiveRow() {
		return true
	}
	for _, a := range j.Artifacts {
		if a.FileType != "trace" && a.FileType != "metadata" {
			return true
		}
	}
	return false
}

// CanReadArtifacts is GitLab's read_job_artifacts: read_build on the
// project, narrowed by the archive's access setting; nobody reads "none".
func (c Caller) CanReadArtifacts(p *Project, j *Job) bool {
	if !c.CanReadBuilds(p) {
		return false
	}
	switch j.ArtifactsAccess {
	case AccessAll:
		return true
	case AccessDeveloper:
		return c.AtLeast(Developer)
	case AccessMaintainer:
		return c.AtLeast(Maintainer)
	}
	return false
}

// CanKeepArtifacts is GitLab's keep_job_artifacts: update_build on the
// job, never on an archived one.
func (c Caller) CanKeepArtifacts(p *Project, j *Job) bool {
	return !j.Archived && c.CanUpdateJob(p, j)
}

// CanDestroyArtifacts is GitLab's destroy_artifacts: Maintainer and up.
func (c Caller) CanDestroyArtifacts() bool { return c.AtLeast(Maintainer) }

// KeepArtifacts is keep: the artifacts no longer expire. It needs current
// artifacts, an archive row not past its expiry (a lock does not count).
func KeepArtifacts(now time.Time) Action {
	return func(j *Job) (Transition, error) {
		if !j.HasArchiveRow() || j.expired(now) {
			return Transition{}, ErrNoArtifacts
		}
		if j.ArtifactsExpireAt == nil {
			return Transition{}, nil
		}
		c := *j
		c.ArtifactsExpireAt = nil
		return Transition{Job: &c}, nil
	}
}

// DeleteArtifacts is GitLab's Ci::JobArtifacts::DeleteService: every
// artifact but the log goes, whatever its expiry or lock; the expiry date
// stays. The job is written first, with ArchivePending while a zip is in
// S3, and the zip deleted after (see ArchiveDeleted): the job never lists a
// file S3 no longer has, and a zip never outlives the record of its removal.
func DeleteArtifacts(j *Job) (Transition, error) {
	c := *j
	c.Artifacts = slices.DeleteFunc(slices.Clone(j.Artifacts), func(a Artifact) bool { return a.FileType != "trace" })
	if len(c.Artifacts) == 0 {
		c.Artifacts = nil
	}
	c.ArtifactsFile, c.Archive = nil, nil
	c.ArchivePending = j.ArchivePending || j.Archive != nil
	if len(c.Artifacts) == len(j.Artifacts) && j.ArtifactsFile == nil && j.Archive == nil {
		return Transition{}, nil
	}
	return Transition{Job: &c}, nil
}

// ArchiveDeleted records that a deleted job's zip is gone from S3.
func ArchiveDeleted(j *Job) (Transition, error) {
	if !j.ArchivePending {
		return Transition{}, nil
	}
	c := *j
	c.ArchivePending = false
	return Transition{Job: &c}, nil
}
