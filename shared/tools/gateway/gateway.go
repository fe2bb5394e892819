// Package gateway emulates what API Gateway HTTP APIs do around the
// functions, for the local API and the tests: route matching as the service
// does it, the payload format 2.0 event (path decoded, query raw, header names
// lowercased, repeated headers comma-joined, cookies apart) and the mapping
// of a function's response or failure back to HTTP.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

// Invoke runs a function with an event and returns its response; an error
// is a function error (handler error, panic, timeout).
type Invoke func(ctx context.Context, function string, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

type route struct {
	sam.Route
	function string
	segs     []string
}

// Router matches requests to the routes of a template.
type Router struct {
	routes     []route
	defaultFun string
}

// NewRouter reads the routes of every function of t.
func NewRouter(t *sam.Template) *Router {
	r := &Router{}
	for _, f := range t.Functions {
		for _, rt := range f.Routes {
			if rt.IsDefault() {
				r.defaultFun = f.Folder
				continue
			}
			r.routes = append(r.routes, route{Route: rt, function: f.Folder, segs: strings.Split(strings.Trim(rt.Path, "/"), "/")})
		}
	}
	return r
}

// Match finds the function for a method and a decoded path, with the route
// key and path parameters. As on API Gateway, a full match beats a route
// with a greedy path variable ({name+}, last segment only: one or more
// segments), a route whose method matches exactly beats ANY, literal
// segments beat variables, and $default takes what no route does.
func (r *Router) Match(method, path string) (function, routeKey string, params map[string]string, ok bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *route
	bestScore := ""
	for i := range r.routes {
		rt := &r.routes[i]
		greedy := strings.HasSuffix(rt.segs[len(rt.segs)-1], "+}")
		if !(len(rt.segs) == len(segs) || greedy && len(segs) >= len(rt.segs)) ||
			!(strings.EqualFold(rt.Method, method) || strings.EqualFold(rt.Method, "ANY")) {
			continue
		}
		var score strings.Builder
		if greedy {
			score.WriteByte('0')
		} else {
			score.WriteByte('1')
		}
		match := true
		for j, s := range rt.segs {
			switch {
			case strings.HasPrefix(s, "{"):
				score.WriteByte('0')
			case s == segs[j]:
				score.WriteByte('1')
			default:
				match = false
			}
		}
		if !match {
			continue
		}
		if !strings.EqualFold(rt.Method, "ANY") {
			score.WriteByte('1')
		}
		if s := score.String(); best == nil || s > bestScore {
			best, bestScore = rt, s
		}
	}
	if best == nil {
		if r.defaultFun == "" {
			return "", "", nil, false
		}
		return r.defaultFun, "$default", nil, true
	}
	params = map[string]string{}
	for j, s := range best.segs {
		switch {
		case strings.HasSuffix(s, "+}"):
			// The rest of the path as given: a trailing slash stays (a zip's directory entry).
			rest := strings.Join(segs[j:], "/")
			if strings.HasSuffix(path, "/") {
				rest += "/"
			}
			params[strings.Trim(s, "{}+")] = rest
		case strings.HasPrefix(s, "{"):
			params[strings.Trim(s, "{}+")] = segs[j]
		}
	}
	return best.function, best.Key(), params, true
}

// Event builds the event API Gateway would send for r.
func Event(r *http.Request, routeKey string, params map[string]string) (events.APIGatewayV2HTTPRequest, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return events.APIGatewayV2HTTPRequest{}, err
	}
	now := time.Now()
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		RawPath:        r.URL.Path, // decoded, as the service hands it over
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		PathParameters: params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "123456789012",
			Stage:        "$default",
			RequestID:    RequestID(),
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent(),
			},
		},
	}
	if len(params) == 0 {
		ev.PathParameters = nil
	}
	for name, values := range r.Header {
		if strings.EqualFold(name, "Cookie") {
			for _, v := range values {
				for _, c := range strings.Split(v, ";") {
					ev.Cookies = append(ev.Cookies, strings.TrimSpace(c))
				}
			}
			continue
		}
		ev.Headers[strings.ToLower(name)] = strings.Join(values, ",")
	}
	ev.Headers["host"] = r.Host
	ev.Headers["x-forwarded-for"] = sourceIP
	ev.Headers["x-forwarded-proto"] = "http"
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev, nil
}

// RequestID is a fresh request id in API Gateway's style.
func RequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b)[:15]) + "="
}

// WriteResponse writes a function's response as API Gateway sends it.
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	keys := make([]string, 0, len(resp.Headers))
	for k := range resp.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.Header().Set(k, resp.Headers[k])
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Handler serves HTTP as an HTTP API in front of the functions would.
func Handler(router *Router, invoke Invoke) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		function, key, params, ok := router.Match(r.Method, r.URL.Path)
		if !ok {
			writeMessage(w, http.StatusNotFound, "Not Found")
			return
		}
		ev, err := Event(r, key, params)
		if err != nil {
			writeMessage(w, http.StatusBadRequest, "Bad Request")
			return
		}
		w.Header().Set("Apigw-Requestid", ev.RequestContext.RequestID)
		resp, err := invoke(r.Context(), function, ev)
		if err != nil {
			// What an HTTP API answers for any function error.
			writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		WriteResponse(w, resp)
	})
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"message":"`+msg+`"}`)
}
