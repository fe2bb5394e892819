// Package auth finds a request's credentials and decides, from what the store
// found for them, who the caller is.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Source says where a credential came from.
type Source int

const (
	None         Source = iota
	PrivateToken        // PRIVATE-TOKEN header or private_token parameter
	Bearer              // Authorization: Bearer; a PAT or, where allowed, a job token
	JobToken            // JOB-TOKEN header, job_token or token parameter
)

// Credentials are the secret a request carries and where it came from.
type Credentials struct {
	Secret string
	Source Source
}

// Hash is the SHA-256 (hex) under which a token's secret is stored.
func (c Credentials) Hash() string {
	if c.Secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(c.Secret))
	return hex.EncodeToString(sum[:])
}

// maxTokenSize is GitLab's limit on job tokens; longer secrets are refused
// before any lookup.
const maxTokenSize = 8192

// FromRequest finds the credential of r, in GitLab's order. Job token
// headers and parameters count only where the route accepts job tokens.
func FromRequest(r *http.Request, jobTokens bool) Credentials {
	q := r.URL.Query()
	if v := r.Header.Get("Authorization"); v != "" {
		if s, ok := strings.CutPrefix(v, "Bearer "); ok {
			return Credentials{Secret: strings.TrimSpace(s), Source: Bearer}
		}
	}
	if jobTokens {
		for _, v := range []string{r.Header.Get("Job-Token"), q.Get("job_token"), q.Get("token")} {
			if v != "" {
				return Credentials{Secret: v, Source: JobToken}
			}
		}
	}
	for _, v := range []string{r.Header.Get("Private-Token"), q.Get("private_token")} {
		if v != "" {
			return Credentials{Secret: v, Source: PrivateToken}
		}
	}
	return Credentials{}
}

// Errors of authentication; the API maps each to GitLab's status and body.
var (
	ErrUnauthorized      = errors.New("401 Unauthorized")
	ErrTokenExpired      = errors.New("Token is expired. You can either do re-authorization or token refresh.")
	ErrTokenRevoked      = errors.New("Token was revoked. You have to re-authorize from the user.")
	ErrInsufficientScope = errors.New("insufficient_scope")
)

// Rule says what a route accepts.
type Rule struct {
	JobTokens bool // CI job tokens authenticate here
	Write     bool // the route changes data: needs the api scope
}

// Authenticate decides who the caller is from the credentials and what the
// store found for them. Anonymous requests (no credentials) give a zero
// Caller; whether that is enough is the route's call.
func Authenticate(c Credentials, f jobs.Identity, rule Rule, now time.Time) (jobs.Caller, error) {
	if c.Source == None {
		return jobs.Caller{}, nil
	}
	t := f.Token
	if len(c.Secret) > maxTokenSize || t == nil {
		return jobs.Caller{}, ErrUnauthorized
	}
	if t.IsJobToken() {
		// A job token is good only where the route allows it, never as a
		// PRIVATE-TOKEN, and only while its job runs.
		j := f.TokenJob
		if !rule.JobTokens || c.Source == PrivateToken || j == nil || !j.Status.Executing() || j.ErasedAt != nil {
			return jobs.Caller{}, ErrUnauthorized
		}
	} else {
		switch {
		case c.Source == JobToken:
			return jobs.Caller{}, ErrUnauthorized
		case t.Revoked:
			return jobs.Caller{}, ErrTokenRevoked
		case t.Expired(now):
			return jobs.Caller{}, ErrTokenExpired
		}
	}
	if f.User == nil || !f.User.Active() {
		return jobs.Caller{}, ErrUnauthorized
	}
	if !t.IsJobToken() && !t.HasScope("api") && (rule.Write || !t.HasScope("read_api")) {
		return jobs.Caller{}, ErrInsufficientScope
	}
	return jobs.Caller{User: f.User, Token: t, Access: f.Access}, nil
}
