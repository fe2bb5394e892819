package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
)

// Every imported finished build comes back from GET job exactly as it went
// in, minus the import-only keys (key order aside).
func TestImportRoundTrip(t *testing.T) {
	d := newDemo(t, 40)
	importOnly := []string{"project_id", "type", "retried", "when", "trace", "token", "environment",
		"debug_trace_enabled", "supports_canceling", "queued_at", "artifacts_archive", "artifacts_access"}
	checked := 0
	for _, raw := range d.world.Jobs {
		var want map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if _, bridge := want["downstream_pipeline"]; bridge || want["finished_at"] == nil {
			continue
		}
		target := fmt.Sprintf("/api/v4/projects/%v/jobs/%v", want["project_id"], want["id"])
		for _, k := range importOnly {
			delete(want, k)
		}
		w := d.call(t, "get-job", http.MethodGet, target, token(demo.TokenAdmin))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
		var got map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			for k := range want {
				if !reflect.DeepEqual(got[k], want[k]) {
					t.Errorf("%s: %s = %v, want %v", target, k, got[k], want[k])
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("%s: unexpected key %s", target, k)
				}
			}
			t.FailNow()
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d finished jobs checked", checked)
	}
}
