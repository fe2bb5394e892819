package rie

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

// Pool is one emulator per function of a template, by function folder.
type Pool struct {
	Emulators map[string]*Emulator
}

// PoolOptions say where the pieces are and what the functions reach.
type PoolOptions struct {
	RIE        string            // the emulator binary
	Bootstraps map[string]string // bootstrap path by function folder
	Refs       map[string]string // template references: JobsTable -> the table name, ...
	Base       map[string]string // the local stack's environment (endpoints, credentials)
	Out        io.Writer         // the functions' logs
}

// StartPool starts an emulator for every function of t.
func StartPool(t *sam.Template, o PoolOptions) (*Pool, error) {
	p := &Pool{Emulators: map[string]*Emulator{}}
	for i := range t.Functions {
		f := &t.Functions[i]
		e, err := NewEmulator(f, o)
		if err == nil {
			err = e.Start(o.RIE, o.Out)
		}
		if err != nil {
			p.Stop()
			return nil, err
		}
		p.Emulators[f.Folder] = e
	}
	return p, nil
}

// NewEmulator prepares (without starting) the emulator of one function.
func NewEmulator(f *sam.Function, o PoolOptions) (*Emulator, error) {
	bootstrap, ok := o.Bootstraps[f.Folder]
	if !ok {
		return nil, fmt.Errorf("no bootstrap built for %s (functions/%s)", f.LogicalID, f.Folder)
	}
	env, err := FunctionEnv(f, o.Refs, o.Base)
	if err != nil {
		return nil, err
	}
	return &Emulator{Bootstrap: bootstrap, Env: env, Timeout: time.Duration(f.Timeout) * time.Second}, nil
}

// Invoke is a gateway.Invoke that sends the event to the function's emulator.
func (p *Pool) Invoke(ctx context.Context, function string, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	e, ok := p.Emulators[function]
	if !ok {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("no function %q", function)
	}
	return e.Invoke(ctx, ev)
}

// Stop stops every emulator.
func (p *Pool) Stop() {
	for _, e := range p.Emulators {
		e.Stop()
	}
}
