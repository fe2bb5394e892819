// Package golden pins functions' API Gateway responses in golden files
// (shared/api/testdata/events/<event>.json): the status, the headers a
// GitLab client reads, and the body. The in-process event test writes and
// checks them; the emulator test checks the real bootstraps against them.
package golden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aws/aws-lambda-go/events"
)

// Response is the part of a function's response a golden file pins.
type Response struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
}

// pinned are the headers GitLab clients read, and X-Request-Id, which
// operators match with the log lines; security headers are checked elsewhere.
var pinned = map[string]bool{"Content-Type": true, "Link": true, "Content-Disposition": true,
	"X-Next-Page": true, "X-Page": true, "X-Per-Page": true, "X-Prev-Page": true, "X-Total": true,
	"X-Total-Pages": true, "X-Next-Cursor": true, "X-Request-Id": true}

// From reads a function's response: a JSON body as JSON, any other as a
// JSON string.
func From(resp events.APIGatewayV2HTTPResponse) Response {
	r := Response{StatusCode: resp.StatusCode, Headers: map[string]string{}}
	for k, v := range resp.Headers {
		if pinned[k] {
			r.Headers[k] = v
		}
	}
	if resp.Body != "" && json.Valid([]byte(resp.Body)) {
		r.Body = json.RawMessage(resp.Body)
	} else {
		r.Body, _ = json.Marshal(resp.Body)
	}
	return r
}

// Path is the golden file of an event file, under dir.
func Path(dir, eventFile string) string {
	return filepath.Join(dir, filepath.Base(eventFile))
}

// Write stores r as the golden file at path.
func Write(path string, r Response) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read loads a golden file.
func Read(path string) (Response, error) {
	var r Response
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// Diff lists how got differs from want, in sorted order; none if equal.
func Diff(got, want Response) []string {
	var out []string
	if got.StatusCode != want.StatusCode {
		out = append(out, fmt.Sprintf("status %d, want %d", got.StatusCode, want.StatusCode))
	}
	keys := map[string]bool{}
	for k := range got.Headers {
		keys[k] = true
	}
	for k := range want.Headers {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		g, gok := got.Headers[k]
		w, wok := want.Headers[k]
		if g != w || gok != wok {
			out = append(out, fmt.Sprintf("header %s = %q (present %v), want %q (present %v)", k, g, gok, w, wok))
		}
	}
	if !sameJSON(got.Body, want.Body) {
		out = append(out, fmt.Sprintf("body\n got %s\nwant %s", got.Body, want.Body))
	}
	return out
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
