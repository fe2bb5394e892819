package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/demo"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/world"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// With -external the local API serves a stack it did not make, found
// through the SDK environment alone: it starts, creates and loads nothing.
func TestExternalStack(t *testing.T) {
	env := testenv.New(t)
	im := &world.Importer{Store: env.Deps.Store, Files: env.Files, Now: time.Now}
	if _, err := im.Import(context.Background(), demo.Seed(5)); err != nil {
		t.Fatal(err)
	}
	tables := func() []string {
		out, err := env.DynamoDB.ListTables(context.Background(), &dynamodb.ListTablesInput{})
		if err != nil {
			t.Fatal(err)
		}
		return out.TableNames
	}
	before := tables()
	base := serveExternal(t, env)
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("PRIVATE-TOKEN", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("/projects/demo%2Fbackend/jobs?per_page=3", demo.TokenMaintainer)
	var page []struct{ ID int64 }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 || len(page) != 3 {
		t.Fatalf("list: %d, %v, %v", resp.StatusCode, page, err)
	}
	if resp := get("/projects/1/jobs/1", "glpat-nobody"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", resp.StatusCode)
	}
	if resp := get("/nothing", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route: %d", resp.StatusCode)
	}
	if after := tables(); !slices.Equal(before, after) {
		t.Errorf("tables %v became %v: -external created one", before, after)
	}
}

// Without a table to serve, -external says so instead of guessing one.
func TestExternalNeedsTheTable(t *testing.T) {
	t.Setenv("JOBS_TABLE", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := run(context.Background(), options{external: true}, ln); err == nil || !strings.Contains(err.Error(), "JOBS_TABLE") {
		t.Errorf("run = %v, want an error naming JOBS_TABLE", err)
	}
}

// serveExternal serves the local API with -external in front of env's
// stack, found through the SDK environment alone, until the test ends; it
// returns the API's /api/v4 URL.
func serveExternal(t *testing.T, env *testenv.Env) string {
	t.Helper()
	for k, v := range localaws.LocalEnv(env.DynamoURL, env.S3URL, env.Table, env.Bucket) {
		t.Setenv(k, v)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, options{external: true}, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String() + "/api/v4"
}
