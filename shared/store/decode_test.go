package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
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

// The hand-written decoder decodes every field of jobs.Job as attributevalue
// does: a field the fast path forgets is zero here and fails the test.
func TestDecodeJobMatchesAttributevalue(t *testing.T) {
	var want jobs.Job
	fill(t, reflect.ValueOf(&want).Elem(), 1)
	rt := reflect.TypeFor[jobs.Job]()
	for i := range rt.NumField() {
		if reflect.ValueOf(want).Field(i).IsZero() {
			t.Fatalf("fill left %s zero", rt.Field(i).Name)
		}
	}
	for _, kind := range []jobs.Kind{jobs.Build, jobs.Bridge} {
		want.Kind = kind
		it, err := jobItem(&want, 1)
		if err != nil {
			t.Fatal(err)
		}
		var ref, fast jobs.Job
		if err := unmarshalJob(it, &ref); err != nil {
			t.Fatal(err)
		}
		if err := decodeJobFast(it, &fast); err != nil {
			t.Fatal(err)
		}
		for i := range rt.NumField() {
			if f := rt.Field(i); !reflect.DeepEqual(reflect.ValueOf(fast).Field(i).Interface(), reflect.ValueOf(ref).Field(i).Interface()) {
				t.Errorf("%s (%s): fast %v, attributevalue %v", f.Name, f.Tag.Get("db"),
					reflect.ValueOf(fast).Field(i), reflect.ValueOf(ref).Field(i))
			}
		}
		if !reflect.DeepEqual(ref, want) {
			t.Errorf("attributevalue does not round-trip the filled job: %+v", ref)
		}
	}
}

// An attribute of a type the fast path does not expect is left to
// attributevalue, which decodes it as before.
func TestDecodeJobFallsBack(t *testing.T) {
	it, err := jobItem(&jobs.Job{ID: 5, Status: jobs.Success, TagList: []string{"a", "b"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
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
	it, err := jobItem(&jobs.Job{ID: 5, Status: jobs.Success, Artifacts: []jobs.Artifact{{FileType: "trace", Filename: "job.log"}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := marshal(&jobs.Job{Artifacts: []jobs.Artifact{{FileType: "trace", Filename: "job.log"}}})
	if err != nil {
		t.Fatal(err)
	}
	it["ar"] = legacy["ar"]
	if j, err := decodeJob(it); err != nil || len(j.Artifacts) != 1 || j.Artifacts[0].Filename != "job.log" {
		t.Fatalf("%+v %v", j, err)
	}
}
