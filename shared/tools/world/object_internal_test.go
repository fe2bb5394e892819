package world

import (
	"encoding/json"
	"testing"
)

// withoutKeys keeps every other key in its order and each value compacted,
// whatever the spacing, escapes, nesting and brackets inside strings; what
// is not a JSON object is an error. The wants are what the encoding/json
// token walk it replaced returned.
func TestWithoutKeys(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{}`, `{}`},
		{` { } `, `{}`},
		{`{"a":1}`, `{"a":1}`},
		{`{"id":1,"x":2}`, `{"x":2}`},
		{`{"x" : [1, {"id":2, "s":"}]\""}] , "id":3}`, `{"x":[1,{"id":2,"s":"}]\""}]}`},
		{`{"\u0069d":1,"k":"v"}`, `{"k":"v"}`},
		{`{"a\"b":"<&>","id":null}`, `{"a\"b":"<&>"}`},
		{`{"x":1,"x":2,"name":"n"}`, `{"x":1,"x":2}`},
		{`{"":true,"\u00e9":false}`, `{"":true,"é":false}`},
		{`{"n":-1.5e+10,"o":{"a":{"b":[[]]}}}`, `{"n":-1.5e+10,"o":{"a":{"b":[[]]}}}`},
		{"{\n\t\"t\":\t\"\\u2028\"\n}", `{"t":"\u2028"}`},
		{`{"a":"\\","b":"\\\"","id":{}}`, `{"a":"\\","b":"\\\""}`},
		{`{"a":true,"id":false}`, `{"a":true}`},
	} {
		got, err := withoutKeys(json.RawMessage(c.in), "id", "name")
		if err != nil || string(got) != c.want {
			t.Errorf("withoutKeys(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{``, `[]`, `null`, `"s"`, `{"a"}`, `{"a":1,}`, `{"a":1 "b":2}`, `{1:2}`, `{"a":1`, `{"a":"x`, `{"a":[1}`, `{"a`, `{"a":}`, `{"a": ,"b":1}`} {
		if got, err := withoutKeys(json.RawMessage(in), "id"); err == nil {
			t.Errorf("withoutKeys(%s) = %s, want an error", in, got)
		}
	}
}
