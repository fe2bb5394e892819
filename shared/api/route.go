package api

import "net/http"

// Route is where API Gateway must send a function's requests, for the
// checks that template.yaml agrees with the code.
type Route struct {
	Default bool     // the $default route: everything no other route takes
	Method  string   // GET (served for HEAD too) or POST
	Exact   string   // a fixed path, for routes without a project
	Suffix  []string // else the segments after /api/v4/projects/<project>, "{x}" capturing one
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
