package api_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
)

var update = flag.Bool("update", false, "rewrite the golden responses of the event-payload tests")

const eventsDir = "../../events"

// EventResponse is the part of a function's response the golden files pin.
type EventResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
}

// functionOf names the function an event file is for: events/<function>[-<case>].json.
func functionOf(file string) string {
	name := strings.TrimSuffix(filepath.Base(file), ".json")
	best := ""
	for fn := range api.Functions {
		if (name == fn || strings.HasPrefix(name, fn+"-")) && len(fn) > len(best) {
			best = fn
		}
	}
	return best
}

// Every function has a folder, a handler and at least one event.
func TestEveryFunctionHasAnEvent(t *testing.T) {
	folders, err := filepath.Glob("../../functions/*")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	covered := map[string]bool{}
	for _, f := range files {
		fn := functionOf(f)
		if fn == "" {
			t.Errorf("%s names no function", f)
		}
		covered[fn] = true
	}
	for _, dir := range folders {
		fn := filepath.Base(dir)
		if _, ok := api.Functions[fn]; !ok {
			t.Errorf("functions/%s has no handler in api.Functions", fn)
		}
		if !covered[fn] {
			t.Errorf("functions/%s has no event in events/", fn)
		}
	}
	if len(folders) != len(api.Functions) {
		t.Errorf("%d function folders, %d handlers", len(folders), len(api.Functions))
	}
}

// Every event in events/ goes through its function's real Lambda handler
// (the API Gateway adapter around the endpoint) against the demo world; the
// response must match its golden file. Each function gets a fresh world, as
// `sam local invoke` against a fresh `make run` would; its events run in
// file name order.
func TestEventPayloads(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no events", err)
	}
	worlds := map[string]*demo{}
	for _, file := range files {
		fn := functionOf(file)
		if worlds[fn] == nil {
			worlds[fn] = newDemo(t, 40)
		}
		d := worlds[fn]
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			h := api.Functions[functionOf(file)](d.Deps)
			resp, err := httpadapter.NewV2(h).ProxyWithContext(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			got := EventResponse{StatusCode: resp.StatusCode, Headers: map[string]string{}}
			for k, v := range resp.Headers {
				switch k {
				case "Content-Type", "Link", "Content-Disposition", "X-Next-Page", "X-Page", "X-Per-Page",
					"X-Prev-Page", "X-Total", "X-Total-Pages", "X-Next-Cursor":
					got.Headers[k] = v
				}
			}
			if json.Valid([]byte(resp.Body)) && resp.Body != "" {
				got.Body = json.RawMessage(resp.Body)
			} else {
				got.Body, _ = json.Marshal(resp.Body)
			}
			golden := filepath.Join("testdata", "events", name+".json")
			if *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantRaw, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("no golden response (run go test ./shared/api -run TestEventPayloads -update): %v", err)
			}
			var want EventResponse
			if err := json.Unmarshal(wantRaw, &want); err != nil {
				t.Fatal(err)
			}
			if got.StatusCode != want.StatusCode {
				t.Errorf("status %d, want %d; body %s", got.StatusCode, want.StatusCode, resp.Body)
			}
			keys := make([]string, 0, len(want.Headers))
			for k := range want.Headers {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if got.Headers[k] != want.Headers[k] {
					t.Errorf("header %s = %q, want %q", k, got.Headers[k], want.Headers[k])
				}
			}
			if len(got.Headers) != len(want.Headers) {
				t.Errorf("headers %v, want %v", got.Headers, want.Headers)
			}
			if !jsonEqual(t, got.Body, want.Body) {
				t.Errorf("body\n got %s\nwant %s", got.Body, want.Body)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
