package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/logging"
)

// observe serves a request as every function does: GitLab's security and
// cache headers and an X-Request-Id, HEAD answered as GET without the body, a
// panic or an unknown error turned into GitLab's 500, and one log line with
// the status and the duration. Lines carry the invocation's request ids (see
// logging) and never the query, headers or body, where tokens and job
// variables travel.
func observe(w http.ResponseWriter, r *http.Request, name string, log *slog.Logger, serve func(http.ResponseWriter, *http.Request) error) {
	start := time.Now()
	ctx := r.Context()
	h := w.Header()
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", logging.RequestID(ctx))
	// What Rails' Rack::ETag gives GitLab's API responses: only the
	// caller's own client may keep one, and must revalidate it; shared
	// caches never store private jobs or logs.
	h.Set("Cache-Control", "max-age=0, private, must-revalidate")
	if r.Method == http.MethodHead {
		w = headWriter{w}
	}
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "panic", "function", name, "panic", fmt.Sprint(p))
			writeError(rw, errInternal)
		}
		log.InfoContext(ctx, "request", "function", name, "method", r.Method, "path", r.URL.Path,
			"status", rw.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
	}()
	if err := serve(rw, r); err != nil {
		resp, known := toError(err)
		switch {
		case resp == errUnavailable:
			log.WarnContext(ctx, "dependency unavailable", "function", name, "error", err.Error())
		case !known:
			log.ErrorContext(ctx, "internal error", "function", name, "error", err.Error())
		}
		writeError(rw, resp)
	}
}
