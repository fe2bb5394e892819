package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/auth"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/paginate"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// Error is a response GitLab would send for a failure: a status, a JSON body
// and any extra headers.
type Error struct {
	Status int
	Body   any
	Header map[string]string
}

func (e *Error) Error() string { return http.StatusText(e.Status) }

// plainText is a body sent as text/plain, as Workhorse (Go's http.NotFound,
// http.Error) answers where Rails would answer JSON.
type plainText string

// message is the {"message": ...} shape of GitLab's helpers.
func message(status int, msg string) *Error {
	return &Error{Status: status, Body: map[string]string{"message": msg}}
}

// grape is the {"error": ...} shape of Grape's own errors.
func grape(status int, msg string) *Error {
	return &Error{Status: status, Body: map[string]string{"error": msg}}
}

// paramInvalid, paramValue and paramMissing are Grape's validation failures.
func paramInvalid(name string) *Error { return grape(http.StatusBadRequest, name+" is invalid") }
func paramValue(name string) *Error {
	return grape(http.StatusBadRequest, name+" does not have a valid value")
}

// notFound is GitLab's not_found!(resource).
func notFound(resource string) *Error {
	return message(http.StatusNotFound, "404 "+resource+" Not Found")
}

var (
	errRouteNotFound   = grape(http.StatusNotFound, "404 Not Found")
	errRecordNotFound  = message(http.StatusNotFound, "404 Not found")
	errProjectNotFound = notFound("Project")
	errUnauthorized    = message(http.StatusUnauthorized, "401 Unauthorized")
	errForbidden       = message(http.StatusForbidden, "403 Forbidden")
	errInternal        = message(http.StatusInternalServerError, "500 Internal Server Error")
	// errUnavailable answers a dependency that throttles or does not answer
	// within the request's budget, after the SDK's retries: GitLab's message
	// shape, and a Retry-After the client can wait (README "Errors worth
	// retrying").
	errUnavailable = &Error{Status: http.StatusServiceUnavailable,
		Body: map[string]string{"message": "503 Service Unavailable"}, Header: map[string]string{"Retry-After": "1"}}
)

// forbidden is GitLab's forbidden!(reason).
func forbidden(reason string) *Error {
	return message(http.StatusForbidden, "403 Forbidden - "+reason)
}

func invalidToken(description string) *Error {
	return &Error{
		Status: http.StatusUnauthorized,
		Body:   map[string]string{"error": "invalid_token", "error_description": description},
		Header: map[string]string{"WWW-Authenticate": `Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="` + description + `"`},
	}
}

// errorTable maps the errors of the packages below the API to GitLab's
// responses: the one place where a failure becomes a status and a body.
var errorTable = []struct {
	err error
	to  func(error) *Error
}{
	{auth.ErrUnauthorized, func(error) *Error { return errUnauthorized }},
	{auth.ErrTokenExpired, func(err error) *Error { return invalidToken(err.Error()) }},
	{auth.ErrTokenRevoked, func(err error) *Error { return invalidToken(err.Error()) }},
	{auth.ErrInsufficientScope, func(error) *Error {
		return &Error{Status: http.StatusForbidden, Body: map[string]string{
			"error":             "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.",
			"scope":             "api",
		}}
	}},
	{paginate.ErrKeysetOrder, notAllowed},
	{paginate.ErrOffsetTooLarge, notAllowed},
	{paginate.ErrPage, badParam},
	{paginate.ErrPerPage, badParam},
	{paginate.ErrPerPageZero, badParam},
	{paginate.ErrCursorInvalid, badParam},
	{jobs.ErrNotRetryable, func(err error) *Error { return forbidden(err.Error()) }},
	{jobs.ErrNotErasable, func(err error) *Error { return forbidden(err.Error()) }},
	{jobs.ErrUnplayable, func(err error) *Error { return message(http.StatusBadRequest, "400 Bad request - "+err.Error()) }},
	{jobs.ErrNoArtifacts, func(error) *Error { return errNoCurrentArtifacts }},
	{store.ErrConflict, func(error) *Error { return message(http.StatusConflict, "409 Conflict: Resource lock") }},
	{store.ErrNotFound, func(error) *Error { return errRecordNotFound }},
}

// throttles are the SDK's own throttling checks (error codes such as
// ProvisionedThroughputExceededException, SlowDown, HTTP 429).
var throttles = retry.IsErrorThrottles(retry.DefaultThrottles)

// unavailable reports whether err is a dependency throttling, not
// answering in time or dropping the connection, after the SDK's retries:
// worth the client's retry, unlike an internal error.
func unavailable(err error) bool {
	var timeout interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || throttles.IsErrorThrottle(err).Bool() ||
		(errors.As(err, &timeout) && timeout.Timeout()) ||
		retry.RetryableConnectionError{}.IsErrorRetryable(err).Bool()
}

func badParam(err error) *Error   { return grape(http.StatusBadRequest, err.Error()) }
func notAllowed(err error) *Error { return grape(http.StatusMethodNotAllowed, err.Error()) }

// toError finds the response for err; anything unknown is a 500 whose cause
// is logged, never shown.
func toError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	if unavailable(err) {
		return errUnavailable, true
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.to(err), true
		}
	}
	return errInternal, false
}
