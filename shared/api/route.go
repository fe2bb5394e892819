package api

import (
	"net/http"
	"strings"
)

// Route is where API Gateway must send a function's requests, for the
// checks that template.yaml agrees with the code.
type Route struct {
	Default bool     // the $default route: everything no other route takes
	Method  string   // GET (served for HEAD too) or POST
	Exact   string   // a fixed path, for routes without a project
	Suffix  []string // else the segments after /api/v4/projects/<project>, "{x}" capturing one, "a|b" either
}

// Suffixes spells out the route's suffixes, one per choice of its "a|b"
// segments, each with its leading slash.
func (r Route) Suffixes() []string {
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

// RouteOf reads the route of a handler made by one of Functions.
func RouteOf(h http.Handler) (Route, bool) {
	switch e := h.(type) {
	case notFoundHandler:
		return Route{Default: true}, true
	case *endpoint:
		return Route{Method: e.method, Exact: e.exact, Suffix: e.path}, true
	}
	return Route{}, false
}
