// Package auth finds a request's credentials and decides, from what the store
// found for them, who the caller is.
package auth

import (
	"cmp"
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

// FromRequest finds the credential of r in the order of GitLab's
// find_user_from_sources (lib/api/api_guard.rb, lib/gitlab/auth/auth_finders.rb),
// the first source present deciding even when its token is bad (401):
//  1. a Bearer job token, where job tokens are allowed (job tokens carry
//     the glcbt- prefix);
//  2. a Bearer token without the glpat- prefix (GitLab's OAuth lookup,
//     which comes before personal access tokens);
//  3. a personal access token: the private_token parameter, then the
//     PRIVATE-TOKEN header, then a glpat- Bearer token;
//  4. where job tokens are allowed: the job_token parameter, then the token
//     parameter, then the JOB-TOKEN header.
//
// A header's value is taken whole: "a, b" (or two headers, which the
// gateway joins) is one token that matches nothing.
func FromRequest(r *http.Request, jobTokens bool) Credentials {
	q := r.URL.Query()
	bearer := ""
	if s, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		bearer = strings.TrimSpace(s)
	}
	if bearer != "" && ((jobTokens && strings.HasPrefix(bearer, jobTokenPrefix)) || !strings.HasPrefix(bearer, patPrefix)) {
		return Credentials{Secret: bearer, Source: Bearer}
	}
	if v := cmp.Or(q.Get("private_token"), r.Header.Get("Private-Token")); v != "" {
		return Credentials{Secret: v, Source: PrivateToken}
	}
	if bearer != "" {
		return Credentials{Secret: bearer, Source: Bearer}
	}
	if jobTokens {
		if v := cmp.Or(q.Get("job_token"), q.Get("token"), r.Header.Get("Job-Token")); v != "" {
			return Credentials{Secret: v, Source: JobToken}
		}
	}
	return Credentials{}
}

// Token prefixes GitLab's finders look at.
const (
	patPrefix      = "glpat-"
	jobTokenPrefix = "glcbt-"
)

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
