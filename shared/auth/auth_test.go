package auth

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		headers   map[string]string
		jobTokens bool
		want      Credentials
	}{
		{"nothing", "/", nil, true, Credentials{}},
		{"private token header", "/", map[string]string{"PRIVATE-TOKEN": "p"}, false, Credentials{"p", PrivateToken}},
		{"private_token param", "/?private_token=p", nil, false, Credentials{"p", PrivateToken}},
		{"bearer", "/", map[string]string{"Authorization": "Bearer b"}, false, Credentials{"b", Bearer}},
		{"an OAuth bearer wins", "/", map[string]string{"Authorization": "Bearer b", "PRIVATE-TOKEN": "p"}, false, Credentials{"b", Bearer}},
		{"PRIVATE-TOKEN before a glpat- bearer", "/", map[string]string{"Authorization": "Bearer glpat-b", "PRIVATE-TOKEN": "p"}, false, Credentials{"p", PrivateToken}},
		{"private_token param before the header", "/?private_token=q", map[string]string{"PRIVATE-TOKEN": "p"}, false, Credentials{"q", PrivateToken}},
		{"a bearer job token first where allowed", "/", map[string]string{"Authorization": "Bearer glcbt-j", "PRIVATE-TOKEN": "p"}, true, Credentials{"glcbt-j", Bearer}},
		{"a personal token before a job token", "/?job_token=j", map[string]string{"PRIVATE-TOKEN": "p", "JOB-TOKEN": "h"}, true, Credentials{"p", PrivateToken}},
		{"job_token param, token param, then JOB-TOKEN", "/?token=t&job_token=j", map[string]string{"JOB-TOKEN": "h"}, true, Credentials{"j", JobToken}},
		{"token param before JOB-TOKEN", "/?token=t", map[string]string{"JOB-TOKEN": "h"}, true, Credentials{"t", JobToken}},
		{"a joined header is one token", "/", map[string]string{"PRIVATE-TOKEN": "a, b"}, false, Credentials{"a, b", PrivateToken}},
		{"basic auth is not a token", "/", map[string]string{"Authorization": "Basic eA=="}, false, Credentials{}},
		{"job token header", "/", map[string]string{"JOB-TOKEN": "j"}, true, Credentials{"j", JobToken}},
		{"job_token param", "/?job_token=j", nil, true, Credentials{"j", JobToken}},
		{"token param", "/?token=j", nil, true, Credentials{"j", JobToken}},
		{"job token where not allowed", "/", map[string]string{"JOB-TOKEN": "j"}, false, Credentials{}},
		{"lowercase header as the gateway sends it", "/", map[string]string{"private-token": "p"}, false, Credentials{"p", PrivateToken}},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", tc.target, nil)
		for k, v := range tc.headers {
			r.Header.Set(k, v)
		}
		if got := FromRequest(r, tc.jobTokens); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour)
	user := &jobs.User{ID: 1, State: "active"}
	pat := func(mod func(*jobs.Token)) jobs.Identity {
		tok := &jobs.Token{UserID: 1, Scopes: []string{"api"}}
		if mod != nil {
			mod(tok)
		}
		return jobs.Identity{Token: tok, User: user, Access: jobs.Developer}
	}
	jobTok := func(st jobs.Status, erased bool) jobs.Identity {
		j := &jobs.Job{ID: 7, Status: st}
		if erased {
			j.ErasedAt = &past
		}
		return jobs.Identity{Token: &jobs.Token{UserID: 1, JobID: 7, ProjectID: 1}, User: user, TokenJob: j}
	}
	read, write, jobRoute := Rule{}, Rule{Write: true}, Rule{JobTokens: true}
	tests := []struct {
		name  string
		creds Credentials
		found jobs.Identity
		rule  Rule
		err   error
	}{
		{"anonymous", Credentials{}, jobs.Identity{}, read, nil},
		{"unknown token", Credentials{"x", PrivateToken}, jobs.Identity{}, read, ErrUnauthorized},
		{"api token", Credentials{"x", PrivateToken}, pat(nil), write, nil},
		{"read_api reads", Credentials{"x", PrivateToken}, pat(func(t *jobs.Token) { t.Scopes = []string{"read_api"} }), read, nil},
		{"read_api writes", Credentials{"x", PrivateToken}, pat(func(t *jobs.Token) { t.Scopes = []string{"read_api"} }), write, ErrInsufficientScope},
		{"no scope", Credentials{"x", PrivateToken}, pat(func(t *jobs.Token) { t.Scopes = nil }), read, ErrInsufficientScope},
		{"expired", Credentials{"x", Bearer}, pat(func(t *jobs.Token) { t.ExpiresAt = &past }), read, ErrTokenExpired},
		{"revoked", Credentials{"x", Bearer}, pat(func(t *jobs.Token) { t.Revoked = true }), read, ErrTokenRevoked},
		{"blocked user", Credentials{"x", PrivateToken}, jobs.Identity{Token: &jobs.Token{UserID: 1, Scopes: []string{"api"}},
			User: &jobs.User{ID: 1, State: "blocked"}}, read, ErrUnauthorized},
		{"PAT sent as job token", Credentials{"x", JobToken}, pat(nil), jobRoute, ErrUnauthorized},
		{"running job token", Credentials{"x", JobToken}, jobTok(jobs.Running, false), jobRoute, nil},
		{"canceling job token", Credentials{"x", Bearer}, jobTok(jobs.Canceling, false), jobRoute, nil},
		{"job token on a PAT route", Credentials{"x", Bearer}, jobTok(jobs.Running, false), read, ErrUnauthorized},
		{"job token as PRIVATE-TOKEN", Credentials{"x", PrivateToken}, jobTok(jobs.Running, false), jobRoute, ErrUnauthorized},
		{"finished job token", Credentials{"x", JobToken}, jobTok(jobs.Success, false), jobRoute, ErrUnauthorized},
		{"erased job token", Credentials{"x", JobToken}, jobTok(jobs.Running, true), jobRoute, ErrUnauthorized},
		{"oversized token", Credentials{string(make([]byte, 8193)), JobToken}, jobTok(jobs.Running, false), jobRoute, ErrUnauthorized},
	}
	for _, tc := range tests {
		c, err := Authenticate(tc.creds, tc.found, tc.rule, now)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
		}
		if err == nil && tc.creds.Source != None && c.User != user {
			t.Errorf("%s: caller %+v", tc.name, c)
		}
	}
}
