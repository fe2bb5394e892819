package config

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// The warm-up opens two connections with unsigned GET /, and the client's
// next two calls at once find them open: no new connection.
func TestWarmConnections(t *testing.T) {
	var conns, gets atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/" {
			if r.Header.Get("Authorization") != "" {
				t.Error("the warm-up signed its request")
			}
			gets.Add(1)
			// What DynamoDB Local answers (DynamoDB: 200 and its health line).
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#MissingAuthenticationToken"}`))
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"TableNames":[]}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := DynamoDBClient(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	warmConnections(c, 2)
	if gets.Load() != 2 || conns.Load() != 2 {
		t.Fatalf("warm-up: %d GETs on %d connections, want 2 on 2", gets.Load(), conns.Load())
	}
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.ListTables(context.Background(), &dynamodb.ListTablesInput{})
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("two calls after the warm-up opened %d more connections", n-2)
	}
}
