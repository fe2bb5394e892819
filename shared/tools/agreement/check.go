package agreement

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/config"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/gateway"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

// Depths is how many namespace levels every project route is declared for
// (template.yaml's routing comment says why).
const Depths = 8

// Project is what must agree.
type Project struct {
	Template     *sam.Template
	FunctionsDir string
	EventsDir    string
	Functions    []api.Function
}

// Check returns every disagreement found.
func Check(p Project) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	dirs, err := os.ReadDir(p.FunctionsDir)
	if err != nil {
		return []error{err}
	}
	folders := map[string]bool{}
	for _, d := range dirs {
		if d.IsDir() {
			folders[d.Name()] = true
		}
	}
	inTemplate := map[string]bool{}
	routeOwner := map[string]string{}
	for i := range p.Template.Functions {
		f := &p.Template.Functions[i]
		inTemplate[f.Folder] = true
		if !folders[f.Folder] {
			fail("template.yaml: %s has no folder functions/%s", f.LogicalID, f.Folder)
		}
		if !buildsWithMakefile(p.Template, f) {
			fail("template.yaml: %s lacks Metadata {BuildMethod: makefile}: sam build would not use build-%s", f.LogicalID, f.LogicalID)
		}
		if _, set := f.Env[config.FixedTimeEnv]; set {
			fail("template.yaml: %s sets %s, a local test clock", f.LogicalID, config.FixedTimeEnv)
		}
		for _, r := range f.Routes {
			if other, dup := routeOwner[r.Key()]; dup {
				fail("template.yaml: route %s is declared by %s and %s", r.Key(), other, f.LogicalID)
			}
			routeOwner[r.Key()] = f.LogicalID
		}
		errs = append(errs, checkPolicy(p, f)...)
		if !slices.Contains(p.Functions, api.Function(f.Folder)) {
			fail("template.yaml: %s has no endpoint in api's table (api.%s = %q)", f.LogicalID, sam.GoName(f.Folder), f.Folder)
			continue
		}
		errs = append(errs, checkRoutes(f, api.Function(f.Folder).Route())...)
		errs = append(errs, checkMain(p.FunctionsDir, f.Folder)...)
	}
	for _, name := range sortedKeys(folders) {
		if !inTemplate[name] {
			fail("functions/%s: no function in template.yaml (want %s)", name, sam.LogicalID(name))
		}
		if !slices.Contains(p.Functions, api.Function(name)) {
			fail("functions/%s: no endpoint in api's table", name)
		}
	}
	for _, fn := range p.Functions {
		if !folders[string(fn)] {
			fail("api function %q: no folder functions/%s", fn, fn)
		}
	}
	return append(errs, checkEvents(p)...)
}

func buildsWithMakefile(t *sam.Template, f *sam.Function) bool {
	var res struct {
		Metadata struct {
			BuildMethod string `yaml:"BuildMethod"`
		} `yaml:"Metadata"`
	}
	n := t.Resources[f.LogicalID]
	return n.Decode(&res) == nil && res.Metadata.BuildMethod == "makefile"
}

// checkRoutes compares a function's HttpApi events with its endpoint's
// route: GET endpoints on Method ANY (HEAD reaches them), POST on POST; a
// project route once for every namespace depth 1..Depths.
func checkRoutes(f *sam.Function, route api.Route) []error {
	method := route.Method
	if method == http.MethodGet {
		method = "ANY"
	}
	var want []sam.Route
	switch {
	case route.Stream: // no route: the table's stream invokes it
	case route.Default:
		want = []sam.Route{{}}
	case route.Exact != "":
		want = []sam.Route{{Method: method, Path: route.Exact}}
	default:
		for _, suffix := range suffixes(route) {
			for d := 1; d <= Depths; d++ {
				path := "/api/v4/projects"
				for i := 1; i <= d; i++ {
					path += fmt.Sprintf("/{p%d}", i)
				}
				want = append(want, sam.Route{Method: method, Path: path + suffix})
			}
		}
	}
	var errs []error
	got := map[string]bool{}
	for _, r := range f.Routes {
		got[r.Key()] = true
	}
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[r.Key()] = true
		if !got[r.Key()] {
			errs = append(errs, fmt.Errorf("template.yaml: %s lacks the route %s", f.LogicalID, r.Key()))
		}
	}
	for _, r := range f.Routes {
		if !wanted[r.Key()] {
			errs = append(errs, fmt.Errorf("template.yaml: %s has the route %s, which its handler does not serve", f.LogicalID, r.Key()))
		}
	}
	return errs
}

// suffixes spells out a project route's suffixes, one per choice of its
// "a|b" segments, each with its leading slash.
func suffixes(r api.Route) []string {
	out := []string{""}
	for _, seg := range r.Suffix {
		var next []string
		for _, prefix := range out {
			for _, alt := range strings.Split(seg, "|") {
				next = append(next, prefix+"/"+alt)
			}
		}
		out = next
	}
	return out
}

// checkMain: functions/<folder>/main.go starts the function of that folder,
// by its Go name (a constant of api whose value the table is keyed by), with
// the job files option or without (TestBootstrapsLinkWhatTheyUse holds
// that to its permissions).
func checkMain(functionsDir, folder string) []error {
	name := "api." + sam.GoName(folder)
	src, err := os.ReadFile(filepath.Join(functionsDir, folder, "main.go"))
	if err != nil {
		return []error{fmt.Errorf("functions/%s: %w", folder, err)}
	}
	start := "lambdafn.Start(" + name
	if !strings.Contains(string(src), start+")") && !strings.Contains(string(src), start+", s3config.Files)") {
		return []error{fmt.Errorf("functions/%s/main.go does not call lambdafn.Start(%s)", folder, name)}
	}
	return nil
}

// checkPolicy: the template grants exactly what the permissions file declares.
func checkPolicy(p Project, f *sam.Function) []error {
	granted, errs := Granted(p.Template, f)
	declared, err := Declared(p.FunctionsDir, f.Folder)
	if err != nil {
		return append(errs, fmt.Errorf("functions/%s: %w (list the DynamoDB/S3 actions the code calls, even none)", f.Folder, err))
	}
	for _, g := range diff(granted, declared) {
		errs = append(errs, fmt.Errorf("template.yaml: %s's policy is too broad: it grants %s, which functions/%s/%s does not declare",
			f.LogicalID, g, f.Folder, PermissionsFile))
	}
	for _, d := range diff(declared, granted) {
		errs = append(errs, fmt.Errorf("template.yaml: %s's policy lacks %s, which its code calls (functions/%s/%s)",
			f.LogicalID, d, f.Folder, PermissionsFile))
	}
	return errs
}

// checkEvents: every function has an event, and every event is what API
// Gateway would send for its path: routed to its function, with that
// route's key and path parameters.
func checkEvents(p Project) []error {
	files, err := filepath.Glob(filepath.Join(p.EventsDir, "*.json"))
	if err != nil {
		return []error{err}
	}
	var errs []error
	router := gateway.NewRouter(p.Template)
	covered := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		fn := string(FunctionOf(file, p.Functions))
		if fn == "" {
			errs = append(errs, fmt.Errorf("events/%s: names no function (events/<function>[-<case>].json)", name))
			continue
		}
		covered[fn] = true
		raw, err := os.ReadFile(file)
		if err != nil {
			return append(errs, err)
		}
		if api.Function(fn).Route().Stream {
			if _, err := DecodeStreamEvent(raw); err != nil {
				errs = append(errs, fmt.Errorf("events/%s: %w", name, err))
			}
			continue
		}
		ev, err := DecodeEvent(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("events/%s: %w", name, err))
			continue
		}
		got, key, params, ok := router.Match(ev.RequestContext.HTTP.Method, ev.RawPath)
		switch {
		case !ok || got != fn:
			errs = append(errs, fmt.Errorf("events/%s: %s %s routes to %q, not to %s", name, ev.RequestContext.HTTP.Method, ev.RawPath, got, fn))
		case ev.RouteKey != key || ev.RequestContext.RouteKey != key:
			errs = append(errs, fmt.Errorf("events/%s: routeKey %q / requestContext.routeKey %q, want %q", name, ev.RouteKey, ev.RequestContext.RouteKey, key))
		case len(params) > 0 && !reflect.DeepEqual(params, ev.PathParameters) || len(params) == 0 && len(ev.PathParameters) > 0:
			errs = append(errs, fmt.Errorf("events/%s: pathParameters %v, want %v", name, ev.PathParameters, params))
		}
	}
	for i := range p.Template.Functions {
		if f := &p.Template.Functions[i]; !covered[f.Folder] {
			errs = append(errs, fmt.Errorf("%s: no event in events/ (events/%s.json or events/%s-<case>.json)", f.LogicalID, f.Folder, f.Folder))
		}
	}
	return errs
}

// DecodeEvent reads an HTTP API (payload 2.0) event strictly, as
// aws-lambda-go's own event tests do: a key the event type does not know
// (a typo, a v1 field) is an error, not silently dropped.
func DecodeEvent(raw []byte) (events.APIGatewayV2HTTPRequest, error) {
	var ev events.APIGatewayV2HTTPRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ev, err
	}
	if dec.More() {
		return ev, fmt.Errorf("more than one JSON value")
	}
	return ev, nil
}

// DecodeStreamEvent reads a DynamoDB stream event, as Lambda hands one to
// a stream function, strictly: every record from aws:dynamodb, with the
// table's string keys.
func DecodeStreamEvent(raw []byte) (events.DynamoDBEvent, error) {
	var ev events.DynamoDBEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ev, err
	}
	if len(ev.Records) == 0 {
		return ev, fmt.Errorf("no records")
	}
	for i, r := range ev.Records {
		pk, sk := r.Change.Keys["PK"], r.Change.Keys["SK"]
		if r.EventSource != "aws:dynamodb" || pk.DataType() != events.DataTypeString || sk.DataType() != events.DataTypeString {
			return ev, fmt.Errorf("record %d: want eventSource aws:dynamodb and string keys PK and SK", i)
		}
	}
	return ev, nil
}

// FunctionOf names the function an event file is for:
// events/<function>[-<case>].json, the longest function name that fits
// ("" for none).
func FunctionOf(file string, functions []api.Function) api.Function {
	name := strings.TrimSuffix(filepath.Base(file), ".json")
	var best api.Function
	for _, fn := range functions {
		if (name == string(fn) || strings.HasPrefix(name, string(fn)+"-")) && len(fn) > len(best) {
			best = fn
		}
	}
	return best
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
