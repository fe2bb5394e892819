// Package rie runs the functions' real bootstraps under AWS's Lambda Runtime
// Interface Emulator on loopback, in place of Docker and the SAM CLI: it
// builds the bootstraps, installs the pinned emulator, starts one emulator
// process per function with the function's environment from template.yaml
// and invokes it as API Gateway would, mapping function errors, panics and
// timeouts to what an HTTP API answers.
package rie

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

// Module is the emulator, pinned: the repository has no tags.
const Module = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// BuildFlags are the go build flags of every bootstrap, for Lambda (sam
// build and make build run cmd/lambdabuild) and for the emulator alike.
var BuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w"}

// Install returns the emulator binary under root/.local/bin, installing the
// pinned version with go install when it is missing.
func Install(root string) (string, error) {
	bin := filepath.Join(root, ".local", "bin")
	path := filepath.Join(bin, "aws-lambda-rie")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.Command(goTool(), "install", Module)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", Module, err, out)
	}
	return path, nil
}

// Build builds the bootstraps of the packages (module-relative, e.g.
// "./functions/get-job") into out/<last path element>, for linux on goarch
// ("" = this machine's, which the emulator can run), with BuildFlags. It
// returns the binaries' paths by package.
func Build(ctx context.Context, root, out, goarch string, pkgs ...string) (map[string]string, error) {
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if err := RunBuild(BuildCommand(ctx, root, goarch, out+string(os.PathSeparator), pkgs...)); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, p := range pkgs {
		bins[p] = filepath.Join(out, filepath.Base(p))
	}
	return bins, nil
}

// BuildCommand is the go build of pkgs into output (a file, or a folder
// ending in a separator) for linux on goarch, with BuildFlags.
func BuildCommand(ctx context.Context, root, goarch, output string, pkgs ...string) *exec.Cmd {
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-o", output)
	cmd := exec.CommandContext(ctx, goTool(), append(args, pkgs...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	return cmd
}

// RunBuild runs a BuildCommand, with the compiler's messages in the error.
func RunBuild(cmd *exec.Cmd) error {
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}

// FunctionPackage is the Go package of a function folder.
func FunctionPackage(folder string) string { return "./functions/" + folder }

// BuildFunctions builds the bootstrap of every function folder named.
func BuildFunctions(ctx context.Context, root, out, goarch string, folders ...string) (map[string]string, error) {
	pkgs := make([]string, len(folders))
	for i, f := range folders {
		pkgs[i] = FunctionPackage(f)
	}
	built, err := Build(ctx, root, out, goarch, pkgs...)
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for i, f := range folders {
		bins[f] = built[pkgs[i]]
	}
	return bins, nil
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// FunctionEnv is the environment Lambda gives f: base (the endpoints and
// credentials of the local stack), then the template's variables (Globals
// and the function's own) with !Ref resolved through refs, then the
// runtime's variables. Nothing else of this process's environment leaks in.
func FunctionEnv(f *sam.Function, refs, base map[string]string) (map[string]string, error) {
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	for k, v := range f.Env {
		if name, ok := strings.CutPrefix(v, "!Ref "); ok {
			r, found := refs[name]
			if !found {
				return nil, fmt.Errorf("%s: %s = %s: no local value for %s", f.LogicalID, k, v, name)
			}
			v = r
		} else if strings.HasPrefix(v, "!") {
			return nil, fmt.Errorf("%s: %s = %s: intrinsic not supported locally", f.LogicalID, k, v)
		}
		env[k] = v
	}
	timeout := f.Timeout
	if timeout == 0 {
		timeout = 3 // Lambda's default
	}
	env["AWS_LAMBDA_FUNCTION_NAME"] = f.LogicalID
	env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = strconv.Itoa(timeout)
	env["AWS_LAMBDA_FUNCTION_VERSION"] = "$LATEST"
	return env, nil
}

// errNotStarted is returned by invokes on a stopped emulator.
var errNotStarted = errors.New("emulator not running")

// StackRefs maps the template's resources to a local stack's names, for
// FunctionEnv.
func StackRefs(table, bucket string) map[string]string {
	return map[string]string{"JobsTable": table, "ArtifactsBucket": bucket}
}

// LocalBuildDir is where the local tools put host bootstraps (git-ignored).
func LocalBuildDir(root string) string { return filepath.Join(root, ".local", "lambda") }
