package rie_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/agreement"
)

// recorder is a reverse proxy in front of DynamoDB Local or the S3 server
// that notes which action each request of a bootstrap performs on which
// resource, in the permissions files' terms, to compare with the policy.
type recorder struct {
	mu    sync.Mutex
	calls []agreement.Permission
	URL   string
}

// newRecorder proxies to target; name maps the table or bucket name to
// "table" or "bucket", leaving any other name as is.
func newRecorder(t *testing.T, target string, s3 bool, names map[string]string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// The caller went away mid-request (a speculative read it
			// cancelled): nothing reached the service, nothing to record.
			http.Error(w, "request body cut", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var calls []agreement.Permission
		switch {
		case s3:
			calls = s3Calls(r, body)
		case r.Method == http.MethodGet && r.URL.Path == "/" && r.Header.Get("Authorization") == "":
			// The init's unsigned GET /, which opens connections
			// (config.warmConnections): no operation, no IAM action.
		default:
			calls = dynamoCalls(r.Header.Get("X-Amz-Target"), body)
		}
		rec.mu.Lock()
		for _, c := range calls {
			if n := strings.IndexAny(c.Resource+"/", "/?"); names[c.Resource[:n]] != "" {
				c.Resource = names[c.Resource[:n]] + c.Resource[n:]
			}
			rec.calls = append(rec.calls, c)
		}
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

func (r *recorder) take() []agreement.Permission {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// dynamoCalls reads a DynamoDB request as IAM authorizes it: transactions
// by the actions of their items, on the tables and indexes named.
func dynamoCalls(target string, body []byte) []agreement.Permission {
	op := "dynamodb:" + strings.TrimPrefix(target, "DynamoDB_20120810.")
	var req struct {
		TableName     string
		IndexName     string
		RequestItems  map[string]json.RawMessage
		TransactItems []map[string]struct{ TableName string }
	}
	_ = json.Unmarshal(body, &req)
	var out []agreement.Permission
	switch {
	case req.TableName != "" && req.IndexName != "":
		out = append(out, agreement.Permission{Action: op, Resource: req.TableName + "/index/" + req.IndexName})
	case req.TableName != "":
		out = append(out, agreement.Permission{Action: op, Resource: req.TableName})
	}
	for table := range req.RequestItems {
		out = append(out, agreement.Permission{Action: op, Resource: table})
	}
	itemActions := map[string]string{"ConditionCheck": "dynamodb:ConditionCheckItem", "Put": "dynamodb:PutItem",
		"Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem", "Get": "dynamodb:GetItem"}
	for _, item := range req.TransactItems {
		for kind, v := range item {
			out = append(out, agreement.Permission{Action: itemActions[kind], Resource: v.TableName})
		}
	}
	if len(out) == 0 {
		out = append(out, agreement.Permission{Action: op, Resource: "*"})
	}
	return out
}

// s3Calls reads a path-style S3 request as IAM authorizes it.
func s3Calls(r *http.Request, body []byte) []agreement.Permission {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	object := func(action, k string) agreement.Permission {
		return agreement.Permission{Action: action, Resource: bucket + "/" + k}
	}
	q := r.URL.Query()
	switch {
	case key == "" && r.Method == http.MethodPost && q.Has("delete"):
		var del struct {
			Object []struct{ Key string }
		}
		_ = xml.Unmarshal(body, &del)
		var out []agreement.Permission
		for _, o := range del.Object {
			out = append(out, object("s3:DeleteObject", o.Key))
		}
		return out
	case key == "" && r.Method == http.MethodGet:
		// IAM checks the listed prefix against the statement's s3:prefix condition.
		return []agreement.Permission{{Action: "s3:ListBucket", Resource: bucket + "?prefix=" + q.Get("prefix")}}
	case key == "":
		return []agreement.Permission{{Action: "s3:" + r.Method + "Bucket", Resource: bucket}}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return []agreement.Permission{object("s3:GetObject", key)}
	case r.Method == http.MethodPut || r.Method == http.MethodPost:
		return []agreement.Permission{object("s3:PutObject", key)}
	case r.Method == http.MethodDelete:
		return []agreement.Permission{object("s3:DeleteObject", key)}
	}
	return []agreement.Permission{object("s3:"+r.Method, key)}
}
