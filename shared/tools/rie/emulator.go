package rie

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
)

// Emulator is one emulator process running one bootstrap. It takes one
// invoke at a time: a second concurrent invoke crashes the emulator.
type Emulator struct {
	Bootstrap string
	Env       map[string]string
	Timeout   time.Duration // the function's timeout, for the client's deadline

	mu     sync.Mutex
	cmd    *exec.Cmd
	url    string
	client *http.Client
	out    io.Writer
}

// Start runs the emulator on two free loopback ports (its invoke API and
// its runtime API) with only e.Env as the environment, writing the
// function's and the emulator's output to out, and waits until it listens.
func (e *Emulator) Start(rieBin string, out io.Writer) error {
	apiPort, err := localaws.FreePort()
	if err != nil {
		return err
	}
	runtimePort, err := localaws.FreePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", apiPort)
	cmd := exec.Command(rieBin,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", runtimePort),
		"--log-level", "error", e.Bootstrap)
	keys := make([]string, 0, len(e.Env))
	for k := range e.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cmd.Env = []string{}
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+e.Env[k])
	}
	if out == nil {
		out = os.Stderr
	}
	cmd.Stdout, cmd.Stderr = out, out
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", rieBin, err)
	}
	e.cmd, e.out = cmd, out
	e.url = "http://" + addr + "/2015-03-31/functions/function/invocations"
	timeout := e.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	e.client = &http.Client{Timeout: timeout + 5*time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	e.Stop()
	return fmt.Errorf("emulator for %s did not listen on %s", e.Bootstrap, addr)
}

// Stop kills the emulator and the bootstrap it started (its process group).
func (e *Emulator) Stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	killGroup(e.cmd)
	_ = e.cmd.Wait()
	e.cmd = nil
}

// FunctionError is a failed invocation: the handler returned an error,
// panicked or timed out, or the emulator gave no usable answer.
type FunctionError struct {
	Status int    // the emulator's HTTP status
	Type   string // errorType, when the runtime reported one
	Body   string
}

func (e *FunctionError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("function error %s: %s", e.Type, e.Body)
	}
	return fmt.Sprintf("function error (emulator status %d): %s", e.Status, e.Body)
}

// Raw posts payload and returns what the emulator answers, serializing
// invokes on this emulator.
func (e *Emulator) Raw(ctx context.Context, payload []byte) (status int, body []byte, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return 0, nil, errNotStarted
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	res, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err = io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

// Invoke sends an HTTP API event and decodes the function's response. A
// handler error (200 with errorType), a panic (502), a timeout (200 with a
// text body) or an unreadable answer is a *FunctionError.
func (e *Emulator) Invoke(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return e.InvokePayload(ctx, payload)
}

// InvokePayload is Invoke with the event already encoded, e.g. an event file.
func (e *Emulator) InvokePayload(ctx context.Context, payload []byte) (events.APIGatewayV2HTTPResponse, error) {
	status, body, err := e.Raw(ctx, payload)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return decodeResponse(status, body)
}

// decodeResponse reads an emulator answer as API Gateway reads a function's
// output (payload format 2.0).
func decodeResponse(status int, body []byte) (events.APIGatewayV2HTTPResponse, error) {
	var resp events.APIGatewayV2HTTPResponse
	fail := &FunctionError{Status: status, Body: string(body)}
	if status != http.StatusOK {
		return resp, fail
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return resp, fail // e.g. "Task timed out after 1.00 seconds"
	}
	if t, ok := fields["errorType"]; ok {
		_ = json.Unmarshal(t, &fail.Type)
		return resp, fail
	}
	if _, ok := fields["statusCode"]; !ok {
		// Format inference: JSON without statusCode is a 200 JSON body.
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK,
			Headers: map[string]string{"content-type": "application/json"}, Body: string(body)}, nil
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return resp, fail
	}
	return resp, nil
}
