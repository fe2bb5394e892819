// Package logging is the functions' structured log: JSON lines (log/slog)
// that carry the Lambda request id and the API Gateway request id of the
// invocation they belong to, with anything shaped like a GitLab token
// redacted as a last guard (handlers never log queries, headers or bodies).
package logging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log"
	"log/slog"
	"regexp"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Attribute names of the request ids, on every line logged with a context.
const (
	LambdaRequestID = "lambda_request_id"
	APIRequestID    = "apigw_request_id"
)

// New is a JSON logger writing to w.
func New(w io.Writer) *slog.Logger {
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: redact})})
}

// contextHandler adds the invocation's request ids to each record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String(LambdaRequestID, lc.AwsRequestID))
	}
	if gw, ok := gateway(ctx); ok {
		r.AddAttrs(slog.String(APIRequestID, gw.RequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// tokenShape matches GitLab tokens by their prefixes (glpat-, glcbt-,
// glrt-, gloas-, ...), wherever they appear in a logged string.
var tokenShape = regexp.MustCompile(`gl[a-z]{2,8}-[A-Za-z0-9_.-]{6,}`)

func redact(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindString {
		if s := a.Value.String(); tokenShape.MatchString(s) {
			a.Value = slog.StringValue(tokenShape.ReplaceAllString(s, "[REDACTED]"))
		}
	}
	return a
}

type gatewayKey struct{}

// WithGateway is ctx carrying the API Gateway request context of the
// invocation, whose request id every line logged with it reports.
func WithGateway(ctx context.Context, rc events.APIGatewayV2HTTPRequestContext) context.Context {
	return context.WithValue(ctx, gatewayKey{}, rc)
}

func gateway(ctx context.Context) (events.APIGatewayV2HTTPRequestContext, bool) {
	rc, ok := ctx.Value(gatewayKey{}).(events.APIGatewayV2HTTPRequestContext)
	return rc, ok
}

// Library sends what libraries write through the standard log package to w
// as JSON lines (level WARN, msg "library"), so that no library text can
// forge a line of its own; its tokens and anything after a '?' (a query)
// are redacted.
func Library(w io.Writer) {
	log.SetFlags(0)
	log.SetOutput(libraryWriter{New(w)})
}

type libraryWriter struct{ log *slog.Logger }

// queryShape is a URL's query inside free text.
var queryShape = regexp.MustCompile(`\?[^\s"']*`)

func (l libraryWriter) Write(b []byte) (int, error) {
	text := queryShape.ReplaceAllString(strings.TrimSuffix(string(b), "\n"), "?[REDACTED]")
	l.log.Warn("library", "text", text)
	return len(b), nil
}

// RequestID is the id a response reports in X-Request-Id: API Gateway's
// request id (what its access logs show), else Lambda's, else a fresh one.
func RequestID(ctx context.Context) string {
	if gw, ok := gateway(ctx); ok && gw.RequestID != "" {
		return gw.RequestID
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
