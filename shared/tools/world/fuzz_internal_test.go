package world

import (
	"encoding/json"
	"testing"
	"time"
)

// Whatever an import document holds, decoding it gives values or errors,
// never a panic: the users, projects, pipelines and jobs as the importer
// reads them before it writes anything; what a job passes through is the
// object less the keys the importer decodes. Seeds: testdata/fuzz/FuzzImportDocument
// (a slice of the demo world) and these.
func FuzzImportDocument(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"jobs":[{}]}`, `{"jobs":[null,1,"x",[]]}`,
		`{"users":[{"id":1,"username":"u","state":"active"}],"projects":[{"id":1,"path_with_namespace":"a/b","visibility":"private","members":[{"user_id":1,"access_level":40}]}]}`,
		`{"jobs":[{"id":1,"status":"success","created_at":"2026-01-01T00:00:00Z","pipeline":{"id":2,"project_id":1},"project_id":1}]}`,
		`{"jobs":[{"id":1,"status":"nope","created_at":"yesterday","started_at":"2026-13-01T00:00:00Z","pipeline":7}]}`,
		`{"pipelines":[{"id":"1"},{"id":-1,"project_id":1e99}],"tokens":[{"token":"","user_id":0}]}`,
		`{"jobs":[{"id":9223372036854775807,"artifacts_archive":"../../etc/passwd","artifacts_access":"sometimes","downstream_pipeline":{"id":3}}]}`,
	} {
		f.Add(s)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, doc string) {
		var w World
		if json.Unmarshal([]byte(doc), &w) != nil {
			return
		}
		for _, raw := range w.Users {
			_, _ = decodeUser(raw)
		}
		for i := range w.Projects {
			_, _, _ = decodeProject(&w.Projects[i], w.InstanceURL)
		}
		for _, raw := range w.Pipelines {
			_, _ = decodePipeline(raw)
		}
		for _, raw := range w.Jobs {
			var d jobDoc
			if json.Unmarshal(raw, &d) != nil {
				continue
			}
			_, _ = d.toJob(now)
			// What passes through is the object less the decoded keys.
			var in, got map[string]json.RawMessage
			if json.Unmarshal(raw, &in) != nil || in == nil {
				continue
			}
			out, err := withoutKeys(raw, decodedKeys...)
			if err != nil || json.Unmarshal(out, &got) != nil {
				t.Fatalf("withoutKeys(%s) = %s, %v", raw, out, err)
			}
			for _, k := range decodedKeys {
				delete(in, k)
			}
			if len(got) != len(in) {
				t.Fatalf("withoutKeys(%s) = %s: keys %d, want %d", raw, out, len(got), len(in))
			}
			for k, v := range in {
				if string(compact(v)) != string(got[k]) {
					t.Fatalf("withoutKeys(%s) = %s: %q is %s, want %s", raw, out, k, got[k], compact(v))
				}
			}
		}
	})
}
