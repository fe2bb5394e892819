package store

import (
	"context"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// ProjectRef names a project by numeric id or by full path.
type ProjectRef struct {
	ID   int64
	Path string
}

// IsZero reports whether the ref names no project.
func (r ProjectRef) IsZero() bool { return r.ID == 0 && r.Path == "" }

// Lookup says what a request needs before it can authorize.
type Lookup struct {
	TokenHash string     // "" for anonymous requests
	Project   ProjectRef // zero when the route has no project
	JobID     int64      // a job to read in the same round trips, or 0
	Related   bool       // also read what that job refers to (see Related)
	// PipelineID is a pipeline to read in the first round trip, or 0.
	PipelineID int64
	// TokenProject makes a job token's own project the request's project,
	// for routes without one (GET /job).
	TokenProject bool
	// Once is an action's Idempotency-Key record to read (OnceKey), or "".
	Once string
}

// Found is what a Lookup found. Missing things are nil, but Related, which
// is empty unless Lookup.Related asked for the job's.
type Found struct {
	jobs.Identity // the credentials' token, user, access in Project and job
	Project       *jobs.Project
	Job           *jobs.Job      // the job asked for by Lookup.JobID
	Related       *jobs.Related  // what Job refers to, with Lookup.Related
	Pipeline      *jobs.Pipeline // the pipeline asked for by Lookup.PipelineID
	Once          *Done          // the record Lookup.Once names, if any (expired or not)
}

type pathAlias struct {
	ID int64 `db:"id"`
}

// Lookup resolves credentials, project, membership and an optional job in at
// most two sequential BatchGetItem round trips: first the token, the project
// (or its path alias) and the job; then the user, the membership, the project
// behind an alias and the job behind a job token.
//
// Errors: only the DynamoDB client's; a missing item is a nil field.
func (s *Store) Lookup(ctx context.Context, l Lookup) (*Found, error) {
	f := &Found{Related: jobs.NewRelated()}
	var first []item
	if l.TokenHash != "" {
		first = append(first, tokenKey(l.TokenHash))
	}
	switch {
	case l.Project.ID != 0:
		first = append(first, projectKey(l.Project.ID))
	case l.Project.Path != "":
		first = append(first, projectPathKey(l.Project.Path))
	}
	if l.JobID != 0 {
		first = append(first, jobKey(l.JobID))
	}
	if l.PipelineID != 0 {
		first = append(first, pipelineKey(l.PipelineID))
	}
	if l.Once != "" {
		first = append(first, onceKey(l.Once))
	}
	got, err := s.batchGet(ctx, first)
	if err != nil {
		return nil, err
	}
	projectID := l.Project.ID
	if l.TokenHash != "" {
		if it, ok := got[keyString(tokenKey(l.TokenHash))]; ok {
			f.Token = &jobs.Token{}
			if err := unmarshal(it, f.Token); err != nil {
				return nil, err
			}
		}
	}
	if l.Project.ID != 0 {
		if it, ok := got[keyString(projectKey(l.Project.ID))]; ok {
			f.Project = &jobs.Project{}
			if err := unmarshal(it, f.Project); err != nil {
				return nil, err
			}
		}
	} else if l.Project.Path != "" {
		if it, ok := got[keyString(projectPathKey(l.Project.Path))]; ok {
			var a pathAlias
			if err := unmarshal(it, &a); err != nil {
				return nil, err
			}
			projectID = a.ID
		}
	}
	if l.JobID != 0 {
		if it, ok := got[keyString(jobKey(l.JobID))]; ok {
			if f.Job, err = decodeJob(it); err != nil {
				return nil, err
			}
		}
	}
	if it, ok := got[keyString(pipelineKey(l.PipelineID))]; ok && l.PipelineID != 0 {
		f.Pipeline = &jobs.Pipeline{}
		if err := unmarshal(it, f.Pipeline); err != nil {
			return nil, err
		}
	}
	if it, ok := got[keyString(onceKey(l.Once))]; ok && l.Once != "" {
		if f.Once, err = decodeDone(it); err != nil {
			return nil, err
		}
	}
	if l.TokenProject && projectID == 0 && f.Token != nil && f.Token.IsJobToken() {
		projectID = f.Token.ProjectID
	}

	var second []item
	if f.Token != nil {
		second = append(second, userKey(f.Token.UserID))
		if projectID != 0 {
			second = append(second, memberKey(projectID, f.Token.UserID))
		}
		if f.Token.IsJobToken() {
			second = append(second, jobKey(f.Token.JobID))
		}
	}
	if f.Project == nil && projectID != 0 {
		second = append(second, projectKey(projectID))
	}
	if l.Related && f.Job != nil {
		second = append(second, relatedKeys([]*jobs.Job{f.Job})...)
	}
	if len(second) == 0 {
		return f, nil
	}
	if got, err = s.batchGet(ctx, second); err != nil {
		return nil, err
	}
	if l.Related && f.Job != nil {
		if f.Related, err = decodeRelated(got); err != nil {
			return nil, err
		}
	}
	if f.Project == nil && projectID != 0 {
		if it, ok := got[keyString(projectKey(projectID))]; ok {
			f.Project = &jobs.Project{}
			if err := unmarshal(it, f.Project); err != nil {
				return nil, err
			}
		}
	}
	if f.Token == nil {
		return f, nil
	}
	if it, ok := got[keyString(userKey(f.Token.UserID))]; ok {
		f.User = &jobs.User{}
		if err := unmarshal(it, f.User); err != nil {
			return nil, err
		}
	}
	if it, ok := got[keyString(memberKey(projectID, f.Token.UserID))]; ok && projectID != 0 {
		var m member
		if err := unmarshal(it, &m); err != nil {
			return nil, err
		}
		f.Access = m.Access
	}
	if f.Token.IsJobToken() {
		if it, ok := got[keyString(jobKey(f.Token.JobID))]; ok {
			if f.TokenJob, err = decodeJob(it); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

type member struct {
	UserID int64 `db:"u"`
	Access int   `db:"lvl"`
}
