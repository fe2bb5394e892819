// Package sam reads what the tools and tests need from template.yaml: the
// functions with their routes, environment and policy statements, and the
// table definition. Intrinsic functions (!Ref, !GetAtt, !Sub) are kept as
// their text.
package sam

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Route is one HttpApi event: a method and a path, or the $default route
// when both are empty.
type Route struct {
	Method string
	Path   string
}

// IsDefault reports whether r is the $default route.
func (r Route) IsDefault() bool { return r.Path == "" }

// Key is the route key API Gateway logs, e.g. "ANY /api/v4/projects/{p1}/jobs".
func (r Route) Key() string {
	if r.IsDefault() {
		return "$default"
	}
	return strings.ToUpper(r.Method) + " " + r.Path
}

// Statement is one IAM policy statement of a function.
type Statement struct {
	Effect   string
	Actions  []string
	Resource []string
	// Condition is the statement's condition, operator → key → values.
	Condition map[string]map[string][]string
}

// Function is an AWS::Serverless::Function.
type Function struct {
	LogicalID  string
	Folder     string // functions/<Folder>: the logical id without "Function", in kebab case
	Routes     []Route
	Env        map[string]string // Globals merged with the function's own; intrinsics as text
	Statements []Statement
	Timeout    int
	MemorySize int // MB, Globals' unless the function sets its own
}

// Template is the parsed template.
type Template struct {
	Functions []Function
	Resources map[string]yaml.Node
}

type node = yaml.Node

// Load reads a SAM template.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Globals struct {
			Function struct {
				Timeout     int `yaml:"Timeout"`
				MemorySize  int `yaml:"MemorySize"`
				Environment struct {
					Variables map[string]node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
		Resources map[string]node `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := &Template{Resources: doc.Resources}
	for id, res := range doc.Resources {
		var r struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Timeout     int `yaml:"Timeout"`
				MemorySize  int `yaml:"MemorySize"`
				Environment struct {
					Variables map[string]node `yaml:"Variables"`
				} `yaml:"Environment"`
				Policies []struct {
					Statement []struct {
						Effect    string                     `yaml:"Effect"`
						Action    node                       `yaml:"Action"`
						Resource  node                       `yaml:"Resource"`
						Condition map[string]map[string]node `yaml:"Condition"`
					} `yaml:"Statement"`
				} `yaml:"Policies"`
				Events map[string]struct {
					Type       string `yaml:"Type"`
					Properties struct {
						Method string `yaml:"Method"`
						Path   string `yaml:"Path"`
					} `yaml:"Properties"`
				} `yaml:"Events"`
			} `yaml:"Properties"`
		}
		if err := res.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		f := Function{LogicalID: id, Folder: Folder(id), Env: map[string]string{}, Timeout: doc.Globals.Function.Timeout,
			MemorySize: doc.Globals.Function.MemorySize}
		if r.Properties.Timeout != 0 {
			f.Timeout = r.Properties.Timeout
		}
		if r.Properties.MemorySize != 0 {
			f.MemorySize = r.Properties.MemorySize
		}
		for k, v := range doc.Globals.Function.Environment.Variables {
			f.Env[k] = text(&v)
		}
		for k, v := range r.Properties.Environment.Variables {
			f.Env[k] = text(&v)
		}
		for _, p := range r.Properties.Policies {
			for _, s := range p.Statement {
				st := Statement{Effect: s.Effect, Actions: list(&s.Action), Resource: list(&s.Resource)}
				for op, keys := range s.Condition {
					if st.Condition == nil {
						st.Condition = map[string]map[string][]string{}
					}
					st.Condition[op] = map[string][]string{}
					for k, v := range keys {
						st.Condition[op][k] = list(&v)
					}
				}
				f.Statements = append(f.Statements, st)
			}
		}
		for _, ev := range r.Properties.Events {
			if ev.Type == "HttpApi" {
				f.Routes = append(f.Routes, Route{Method: ev.Properties.Method, Path: ev.Properties.Path})
			}
		}
		sort.Slice(f.Routes, func(i, j int) bool { return f.Routes[i].Key() < f.Routes[j].Key() })
		t.Functions = append(t.Functions, f)
	}
	sort.Slice(t.Functions, func(i, j int) bool { return t.Functions[i].LogicalID < t.Functions[j].LogicalID })
	return t, nil
}

// text renders a scalar, keeping an intrinsic's tag: "!Ref JobsTable".
func text(n *node) string {
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return n.Tag + " " + n.Value
	}
	return n.Value
}

func list(n *node) []string {
	if n.Kind == yaml.SequenceNode {
		out := make([]string, len(n.Content))
		for i, c := range n.Content {
			out[i] = text(c)
		}
		return out
	}
	return []string{text(n)}
}

var camel = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// The one naming rule of a function: its folder under functions/ is kebab
// case (get-job-trace), its Go name camel case (GetJobTrace: api's constant,
// which functions/<folder>/main.go starts) and its logical id in
// template.yaml the Go name plus "Function" (GetJobTraceFunction).

// Folder is the functions/ folder of a logical id.
func Folder(logicalID string) string {
	return strings.ToLower(camel.ReplaceAllString(strings.TrimSuffix(logicalID, "Function"), "$1-$2"))
}

// GoName is the Go name of a function folder.
func GoName(folder string) string {
	var b strings.Builder
	for _, part := range strings.Split(folder, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// LogicalID is the template's name for a function folder.
func LogicalID(folder string) string { return GoName(folder) + "Function" }

// Function finds a function by logical id or folder.
func (t *Template) Function(name string) (*Function, bool) {
	for i := range t.Functions {
		if f := &t.Functions[i]; f.LogicalID == name || f.Folder == name {
			return f, true
		}
	}
	return nil, false
}
