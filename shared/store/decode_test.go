package store

import (
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/render"
)

// fill sets every field of v (a pointer to a struct) to a value that is
// not its zero, recursively, and fails on a kind it does not know: a field
// added to jobs.Job later is filled, or this test says it cannot.
func fill(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 600000000+seed, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), seed+i)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage
			v.SetBytes([]byte(`{"k":` + string(rune('0'+seed%10)) + `}`))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(t, v.Index(0), seed)
		fill(t, v.Index(1), seed+1)
	case reflect.String:
		v.SetString("s<&>é" + string(rune('a'+seed%26)))
	case reflect.Int64, reflect.Int:
		v.SetInt(int64(1000 + seed))
	case reflect.Float64:
		v.SetFloat(float64(seed) + 0.25)
	case reflect.Bool:
		v.SetBool(true)
	default:
		t.Fatalf("fill: no value for a %s (%s)", v.Kind(), v.Type())
	}
}

// legacyJobItem is a job item as written before L: every field its own
// attribute, the artifacts packed in one string.
func legacyJobItem(t *testing.T, j *jobs.Job) item {
	t.Helper()
	it, err := marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Artifacts) > 0 {
		it["ar"] = str(packArtifacts(j.Artifacts))
	}
	return withKey(it, jobKey(j.ID))
}

// Every field of jobs.Job comes back from a job item as it went in, through
// the hand-written decoder and through the reflective one it falls back to,
// from items written with L and from items written before it: a field the
// fast path or L forgets is zero here and fails the test.
func TestJobItemsRoundTrip(t *testing.T) {
	var want jobs.Job
	fill(t, reflect.ValueOf(&want).Elem(), 1)
	rt := reflect.TypeFor[jobs.Job]()
	for i := range rt.NumField() {
		if reflect.ValueOf(want).Field(i).IsZero() {
			t.Fatalf("fill left %s zero", rt.Field(i).Name)
		}
	}
	reflective := func(it item) (*jobs.Job, error) {
		var j jobs.Job
		if err := unmarshalJob(it, &j); err != nil {
			return nil, err
		}
		if l, ok := it[listedAttr].(*types.AttributeValueMemberB); ok {
			return &j, unpackListed(l.Value, &j)
		}
		return &j, nil
	}
	for _, kind := range []jobs.Kind{jobs.Build, jobs.Bridge} {
		want.Kind = kind
		it, err := jobItem(&want, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range listedNames {
			if _, ok := it[n]; ok {
				t.Errorf("%s is written apart as well as in L", n)
			}
		}
		for _, c := range []struct {
			name   string
			it     item
			decode func(item) (*jobs.Job, error)
		}{
			{"fast", it, decodeJob},
			{"reflective", it, reflective},
			{"fast, before L", legacyJobItem(t, &want), decodeJob},
			{"reflective, before L", legacyJobItem(t, &want), reflective},
		} {
			got, err := c.decode(c.it)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, c.name, err)
			}
			for i := range rt.NumField() {
				if f := rt.Field(i); !reflect.DeepEqual(reflect.ValueOf(*got).Field(i).Interface(), reflect.ValueOf(want).Field(i).Interface()) {
					t.Errorf("%s %s: %s (%s) came back as %v, want %v", kind, c.name, f.Name, f.Tag.Get("db"),
						reflect.ValueOf(*got).Field(i), reflect.ValueOf(want).Field(i))
				}
			}
		}
	}
}

// L round-trips what fill cannot show: absent optional fields, empty
// lists, sizes absent or zero, times before 1970 and far ahead; and every
// cut of a packed L is an error, never a panic or a guess.
func TestListedEdges(t *testing.T) {
	zero, big := int64(0), int64(1)<<40
	neg := -1.5
	old := time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC)
	far := time.Date(2262, 4, 12, 0, 0, 0, 999999999, time.UTC)
	for _, j := range []jobs.Job{
		{},
		{ID: 1, Kind: jobs.Bridge, Status: jobs.Manual, CreatedAt: old},
		{ID: -7, CreatedAt: far, StartedAt: &old, Coverage: &neg, TagList: []string{"", "é"},
			Artifacts:     []jobs.Artifact{{FileType: "trace"}, {FileType: "archive", Size: &zero}, {Size: &big, Filename: "a\x00b"}},
			ArtifactsFile: &jobs.ArtifactsFile{}},
	} {
		b := packListed(&j)
		var got jobs.Job
		if err := unpackListed(b, &got); err != nil || !reflect.DeepEqual(got, j) {
			t.Errorf("%+v came back as %+v, %v", j, got, err)
		}
		for n := range len(b) {
			var cut jobs.Job
			if err := unpackListed(b[:n], &cut); err == nil {
				t.Errorf("%d of %d bytes decoded", n, len(b))
			}
		}
		if err := unpackListed(append(b, 0), &got); err == nil {
			t.Error("a trailing byte decoded")
		}
	}
}

// Every word of L's dictionary, and strings next to one, come back as
// written; an L of version 1, written before the words, still decodes.
func TestListedWords(t *testing.T) {
	var near []string
	for _, w := range listedWords {
		near = append(near, w, w+" ", strings.ToUpper(w))
	}
	j := jobs.Job{Kind: "success", Status: "job.log", Stage: "", Name: "main", Ref: "main ", TagList: near,
		Artifacts: []jobs.Artifact{{FileType: "zip", Filename: strings.Repeat("x", len(listedWords)+200), FileFormat: "raw"}}}
	b := packListed(&j)
	var got jobs.Job
	if err := unpackListed(b, &got); err != nil || !reflect.DeepEqual(got, j) {
		t.Errorf("%+v came back as %+v, %v", j, got, err)
	}
	// Written by version 1's packListed (commit b137cbf) for this job.
	v1, _ := hex.DecodeString("0100020000000000000006627269646765066d616e75616c04746573740178000000b7a8c30d959aef3a0106646f636b657201057472616365076a6f622e6c6f670000")
	want := jobs.Job{ID: 1, Kind: jobs.Bridge, Status: jobs.Manual, CreatedAt: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC),
		Name: "x", Stage: "test", TagList: []string{"docker"}, Artifacts: []jobs.Artifact{{FileType: "trace", Filename: "job.log"}}}
	got = jobs.Job{}
	if err := unpackListed(v1, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("version 1 came back as %+v, %v", got, err)
	}
}

// An attribute of a type the fast path does not expect is left to
// attributevalue, which decodes it as before.
func TestDecodeJobFallsBack(t *testing.T) {
	it := legacyJobItem(t, &jobs.Job{ID: 5, Status: jobs.Success, TagList: []string{"a", "b"}})
	it["tl"] = &types.AttributeValueMemberSS{Value: []string{"a", "b"}} // a string set
	j, err := decodeJob(it)
	if err != nil || j.ID != 5 || len(j.TagList) != 2 || j.Kind != jobs.Build {
		t.Fatalf("%+v %v", j, err)
	}
}

// Packed artifacts unpack to what was packed, strings of any bytes and
// sizes absent or not; anything else is an error, not a guess.
func TestPackedArtifacts(t *testing.T) {
	size := int64(1234)
	zero := int64(0)
	for _, as := range [][]jobs.Artifact{
		{{FileType: "archive", Size: &size, Filename: "artifacts.zip", FileFormat: "zip"}},
		{{FileType: "trace", Filename: "job.log"}, {FileType: "junit", Size: &zero, Filename: "a:b;c-1:2.xml", FileFormat: "gzip"}},
		{{FileType: "", Filename: "é\x00\xff;:", FileFormat: "9:"}},
	} {
		got, err := unpackArtifacts(packArtifacts(as))
		if err != nil || !reflect.DeepEqual(got, as) {
			t.Errorf("%+v came back as %+v, %v", as, got, err)
		}
	}
	for _, bad := range []string{"7:archive", "7:archive12", "7:archive1x;13:artifacts.zip3:zip", "99:archive-;", "x:a-;1:a1:b", "-1:a-;1:a1:b"} {
		if got, err := unpackArtifacts(bad); err == nil {
			t.Errorf("unpackArtifacts(%q) = %+v, want an error", bad, got)
		}
	}
	// Items written before artifacts were packed decode as they did.
	it := legacyJobItem(t, &jobs.Job{ID: 5, Status: jobs.Success, Artifacts: []jobs.Artifact{{FileType: "trace", Filename: "job.log"}}})
	legacy, err := marshal(&jobs.Job{Artifacts: []jobs.Artifact{{FileType: "trace", Filename: "job.log"}}})
	if err != nil {
		t.Fatal(err)
	}
	it["ar"] = legacy["ar"]
	if j, err := decodeJob(it); err != nil || len(j.Artifacts) != 1 || j.Artifacts[0].Filename != "job.log" {
		t.Fatalf("%+v %v", j, err)
	}
}

// packArtifacts writes artifacts as items from before L have them (see
// unpackArtifacts).
func packArtifacts(as []jobs.Artifact) string {
	var b strings.Builder
	str := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	for _, a := range as {
		str(a.FileType)
		if a.Size == nil {
			b.WriteByte('-')
		} else {
			b.WriteString(strconv.FormatInt(*a.Size, 10))
		}
		b.WriteByte(';')
		str(a.Filename)
		str(a.FileFormat)
	}
	return b.String()
}

// A list index holds a job's keys and L only: a job decoded from that alone
// renders exactly as the whole job, every field filled (a rendered field
// kept apart from L would render empty from a list).
func TestListIndexEntryRendersAsWhole(t *testing.T) {
	var whole jobs.Job
	fill(t, reflect.ValueOf(&whole).Elem(), 3)
	whole.Status = jobs.Failed // which renders its failure_reason too
	now := whole.CreatedAt.Add(time.Hour)
	p := &jobs.Project{ID: whole.ProjectID, WebURL: "https://gitlab.example.com/g/p"}
	rel := jobs.NewRelated()
	for _, kind := range []jobs.Kind{jobs.Build, jobs.Bridge} {
		whole.Kind = kind
		it, err := jobItem(&whole, 1)
		if err != nil {
			t.Fatal(err)
		}
		entry := item{listedAttr: it[listedAttr], "PK": it["PK"], "SK": it["SK"]}
		listed, err := decodeJob(entry)
		if err != nil {
			t.Fatal(err)
		}
		appendEntity := render.AppendJob
		if kind == jobs.Bridge {
			appendEntity = render.AppendBridge
		}
		want, err := appendEntity(nil, &whole, p, rel, now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEntity(nil, listed, p, rel, now)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s from its list entry:\n%s\nwhole:\n%s", kind, got, want)
		}
	}
}
