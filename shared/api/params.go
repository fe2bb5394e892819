package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// maxBody bounds what a POST body may hold: job actions take a few
// variables at most.
const maxBody = 1 << 20

// postParams are a POST's parameters as Grape reads them: the query
// string's and the body's, JSON or form-encoded, a body key winning over
// the same query key.
type postParams struct {
	json  map[string]any // a JSON object body, else nil
	query []pair         // in the order sent
	form  []pair         // a form-encoded body, in the order sent
}

type pair struct{ key, value string }

var (
	errBadBody = grape(http.StatusBadRequest, "message body does not match declared format")
	// errBodyTooLarge is GitLab's file_too_large! (lib/api/helpers.rb).
	errBodyTooLarge = message(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
)

// postParams reads the request's parameters. Bodies of other types
// (multipart included) carry none.
func (rq *request) postParams() (*postParams, error) {
	pp := &postParams{query: pairs(rq.URL.RawQuery)}
	if rq.Body == nil {
		return pp, nil
	}
	body, err := io.ReadAll(io.LimitReader(rq.Body, maxBody+1))
	if err != nil {
		// The body is in memory: only one the gateway could not hand over
		// (base64 that does not decode) fails to read.
		return nil, errBadBody
	}
	if len(body) > maxBody {
		// Refused whole: half a body would lose its trailing parameters
		// and act on the rest.
		return nil, errBodyTooLarge
	}
	mt, _, _ := mime.ParseMediaType(rq.Header.Get("Content-Type"))
	switch {
	case len(strings.TrimSpace(string(body))) == 0:
	case mt == "application/json":
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, errBadBody
		}
		pp.json, _ = v.(map[string]any)
	case mt == "application/x-www-form-urlencoded":
		pp.form = pairs(string(body))
	}
	return pp, nil
}

// pairs splits a query string keeping the order of its pairs, which
// url.ParseQuery loses and Rack's nested arrays (a[][k]=…&a[][v]=…) need.
func pairs(raw string) []pair {
	var out []pair
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 == nil && err2 == nil {
			out = append(out, pair{key, value})
		}
	}
	return out
}

// last is the value of the last pair named key, body before query.
func (pp *postParams) last(key string) (string, bool) {
	for _, ps := range [][]pair{pp.form, pp.query} {
		for i := len(ps) - 1; i >= 0; i-- {
			if ps[i].key == key {
				return ps[i].value, true
			}
		}
	}
	return "", false
}

// boolean reads an optional Boolean parameter with Grape's coercion.
func (pp *postParams) boolean(name string) (bool, error) {
	var v any
	if x, ok := pp.json[name]; ok {
		v = x
	} else if s, ok := pp.last(name); ok {
		v = s
	}
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(x) {
		case "":
			return false, nil
		case "1", "true", "t", "yes", "y", "on":
			return true, nil
		case "0", "false", "f", "no", "n", "off":
			return false, nil
		}
	case float64:
		switch x {
		case 1:
			return true, nil
		case 0:
			return false, nil
		}
	}
	return false, paramInvalid(name)
}

// variables reads `job_variables_attributes`, an array of {key, value}: a
// JSON array, or Rack's form `name[][key]=…&name[][value]=…` in the body or
// the query. Absent gives nil. Every element needs both; Grape names each
// missing one, and the job stays as it is.
func (pp *postParams) variables(name string) ([]jobs.Variable, error) {
	var elems []map[string]any
	if raw, ok := pp.json[name]; ok {
		list, ok := raw.([]any)
		if !ok && raw != nil {
			return nil, paramInvalid(name)
		}
		for _, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, paramInvalid(name)
			}
			elems = append(elems, m)
		}
	} else {
		var err error
		if elems, err = rackArray(pp.form, name); err == nil && elems == nil {
			elems, err = rackArray(pp.query, name)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(elems) == 0 {
		return nil, nil
	}
	vars := make([]jobs.Variable, len(elems))
	var problems []string
	for i, m := range elems {
		for _, field := range []struct {
			key string
			to  *string
		}{{"key", &vars[i].Key}, {"value", &vars[i].Value}} {
			where := fmt.Sprintf("%s[%d][%s]", name, i, field.key)
			switch v := m[field.key].(type) {
			case nil:
				if _, present := m[field.key]; !present {
					problems = append(problems, where+" is missing")
				}
			case string:
				*field.to = v
			case float64:
				*field.to = strconv.FormatFloat(v, 'f', -1, 64)
			case bool:
				*field.to = strconv.FormatBool(v)
			default:
				problems = append(problems, where+" is invalid")
			}
		}
	}
	if len(problems) > 0 {
		return nil, grape(http.StatusBadRequest, strings.Join(problems, ", "))
	}
	return vars, nil
}

// rackArray builds an array of hashes from `name[][field]=value` pairs as
// Rack does: a field the last hash already has starts a new hash.
func rackArray(ps []pair, name string) ([]map[string]any, error) {
	var out []map[string]any
	for _, p := range ps {
		rest, ok := strings.CutPrefix(p.key, name)
		if !ok || (rest != "" && rest[0] != '[') {
			continue
		}
		field, ok := strings.CutPrefix(rest, "[][")
		if !ok || !strings.HasSuffix(field, "]") {
			return nil, paramInvalid(name)
		}
		field = strings.TrimSuffix(field, "]")
		if n := len(out); n == 0 || out[n-1][field] != nil {
			out = append(out, map[string]any{})
		}
		out[len(out)-1][field] = p.value
	}
	return out, nil
}
