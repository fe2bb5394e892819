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

// A caller reading a job of its own sees itself as the job's user, in a
// cold container as in a warm one: one read of the user item serves both
// the credentials and the job's user.
func TestGetJobOfTheCallersOwn(t *testing.T) {
	const maria = 2 // demo.TokenMaintainer's user
	d := newDemo(t, 40)
	var target string
	for _, raw := range d.world.Jobs {
		var j struct {
			ID        int64
			ProjectID int64 `json:"project_id"`
			User      *struct{ ID int64 }
		}
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatal(err)
		}
		if j.User != nil && j.User.ID == maria && j.ProjectID == demo.ProjectBackend {
			target = fmt.Sprintf("/api/v4/projects/%d/jobs/%d", j.ProjectID, j.ID)
			break
		}
	}
	if target == "" {
		t.Fatal("no job of the maintainer's")
	}
	var bodies []string
	for _, container := range []string{"cold", "warm"} {
		if container == "cold" {
			d.coldContainer()
		}
		w := d.call(t, "get-job", http.MethodGet, target, token(demo.TokenMaintainer))
		var got struct{ User *struct{ ID int64 } }
		if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != http.StatusOK || err != nil || got.User == nil || got.User.ID != maria {
			t.Errorf("%s container: %d %s, want the job's user %d", container, w.Code, w.Body, maria)
		}
		bodies = append(bodies, w.Body.String())
	}
	if bodies[0] != bodies[1] {
		t.Errorf("cold container:\n%s\nwarm:\n%s", bodies[0], bodies[1])
	}
}
