package render

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

func ptr[T any](v T) *T { return &v }

// AppendJob and AppendBridge write what Marshal of NewJob and NewBridge
// writes, byte for byte: strings that need escaping, floats of every
// magnitude, documents stored compact or not, pass-through fields, every
// optional field present and absent.
func TestAppendMatchesMarshal(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 678000000, time.FixedZone("x", 3600))
	now := start.Add(90 * time.Minute)
	rel := jobs.NewRelated()
	rel.Users[1] = &jobs.User{ID: 1, Doc: json.RawMessage(`{"id":1,"avatar_url":"https://a/?s=80&d=identicon","name":"A <b>"}`)}
	rel.Users[2] = &jobs.User{ID: 2, Doc: json.RawMessage(`{"id":2,"avatar_url":"https://a/?s=80\u0026d=x","name":"B B"}`)}
	rel.Users[3] = &jobs.User{ID: 3, Doc: json.RawMessage("{ \"id\" : 3,\n \"name\":\"line\u2028sep\" }")}
	rel.Pipelines[10] = &jobs.Pipeline{ID: 10, Doc: json.RawMessage(`{"id":10,"status":"success"}`), Commit: json.RawMessage(`{"id":"abc","message":"fix\n"}`)}
	rel.Pipelines[11] = &jobs.Pipeline{ID: 11, Doc: json.RawMessage(`{"id":11}`)}
	rel.Runners[5] = &jobs.Runner{ID: 5, Doc: json.RawMessage(`{"id":5,"description":"docker"}`)}
	p := &jobs.Project{ID: 1, WebURL: "https://gitlab.example.com/g/p", JobTokenScopeEnabled: true}
	strs := []string{"plain", "quote \" back \\ slash", "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f\x01\x1f",
		"é ü 日本", "bad \xff utf8", "sep \u2028 \u2029", ""}
	floats := []*float64{nil, ptr(0.0), ptr(1.0), ptr(12.5), ptr(-3.25), ptr(1e-7), ptr(1e21), ptr(123456789.123), ptr(math.SmallestNonzeroFloat64)}
	var cases []*jobs.Job
	for i, s := range strs {
		j := &jobs.Job{ID: int64(100 + i), Status: jobs.Success, Stage: s, Name: s, Ref: s, CreatedAt: start,
			UserID: int64(i%4 + 0), PipelineID: int64(10 + i%3), RunnerID: int64(5 * (i % 2)), TagList: []string{s, "docker"}}
		cases = append(cases, j)
	}
	for i, f := range floats {
		cases = append(cases, &jobs.Job{ID: int64(200 + i), Status: jobs.Failed, Coverage: f, Duration: f, QueuedDuration: f,
			CreatedAt: start, PipelineID: 10})
	}
	full := &jobs.Job{ID: 300, Status: jobs.Failed, FailureReason: "script_failure", Tag: true, AllowFailure: true, Archived: true,
		CreatedAt: start, QueuedAt: ptr(start), StartedAt: ptr(start.Add(time.Second)), ErasedAt: ptr(start.Add(time.Hour)),
		ArtifactsExpireAt: ptr(start.Add(48 * time.Hour)), UserID: 1, PipelineID: 10, RunnerID: 5,
		RunnerManager: json.RawMessage(`{"id":7, "system_id":"s"}`),
		Artifacts:     []jobs.Artifact{{FileType: "archive", Size: ptr(int64(10)), Filename: "a.zip", FileFormat: "zip"}, {FileType: "trace", Filename: "job.log"}},
		ArtifactsFile: &jobs.ArtifactsFile{Filename: "a.zip", Size: 10}, Extra: json.RawMessage(` {"x":1, "y":[2]} `),
		DownstreamPipelineID: 11}
	cases = append(cases, full)
	for _, extra := range []string{`{}`, `{"a":null}`, ``} {
		cases = append(cases, &jobs.Job{ID: 400, Status: jobs.Running, CreatedAt: start, StartedAt: ptr(start), QueuedAt: ptr(start),
			PipelineID: 99, Extra: json.RawMessage(extra)})
	}
	for _, j := range cases {
		for _, kind := range []jobs.Kind{jobs.Build, jobs.Bridge} {
			j.Kind = kind
			want, err := Marshal(NewJob(j, p, rel, now), j.Extra)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendJob([]byte("["), j, p, rel, now)
			if err != nil || string(got[1:]) != string(want) {
				t.Errorf("job %d (%s):\n got %s %v\nwant %s", j.ID, kind, got[1:], err, want)
			}
			if kind != jobs.Bridge {
				continue
			}
			want, _ = Marshal(NewBridge(j, p, rel, now), j.Extra)
			got, err = AppendBridge(nil, j, p, rel, now)
			if err != nil || string(got) != string(want) {
				t.Errorf("bridge %d:\n got %s %v\nwant %s", j.ID, got, err, want)
			}
		}
	}
}

// compactSafe is true exactly when json.Marshal writes the document as it
// is (for documents without 0xE2, which always takes the slow path).
func TestCompactSafe(t *testing.T) {
	for _, doc := range []string{`{}`, `{"a":1}`, `{"a":"b c","d":[1,2,{"e":null}]}`, `{"a": 1}`, "{\"a\":1}\n",
		`{"a":"x<y"}`, `{"a":"x>y"}`, `{"a":"x&y"}`, `{"a":"q\"q"}`, `{"a":"\\"}`, `{"a":"\u003c"}`, "{\"a\":\"tab\tin\"}",
		`["\\\"",""]`, `"plain"`, `""`, `{"k":"é ü"}`, `[1, 2]`, "\t{}", `{"a":"\/"}`} {
		want := false
		if b, err := json.Marshal(json.RawMessage(doc)); err == nil {
			want = string(b) == doc
		}
		if got := compactSafe([]byte(doc)); got != want {
			t.Errorf("compactSafe(%q) = %v, want %v", doc, got, want)
		}
	}
	for _, doc := range []string{"{\"a\":\"\u2028\"}", "\"€\"", `"unterminated`, `"ends in \`} {
		if compactSafe([]byte(doc)) {
			t.Errorf("compactSafe(%q) = true, want the slow path", doc)
		}
	}
}

// appendTime writes what Time does, at the years and fractions where a
// digit-by-digit writer could slip: padding, rounding down, zones, the
// years AppendFormat is left to.
func TestAppendTimeMatchesTime(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(7, 1, 2, 3, 4, 5, 6, time.UTC),
		time.Date(999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 2, 0, 0, 0, 1000000, time.FixedZone("x", -5*3600)),
		time.Date(2026, 2, 28, 23, 30, 0, 999500000, time.FixedZone("y", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := string(appendTime(nil, &tm)), `"`+*Time(&tm)+`"`; got != want {
			t.Errorf("%v: %s, want %s", tm, got, want)
		}
	}
}
