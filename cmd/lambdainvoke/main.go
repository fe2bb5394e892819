// Command lambdainvoke is `sam local invoke` without Docker: it builds one
// function's real bootstrap for this machine, runs it under AWS's Lambda
// Runtime Interface Emulator with the function's environment from
// template.yaml (pointed at `make run`'s local stack), posts an event and
// prints the function's response as sam local invoke does. The function's
// logs go to stderr.
//
//	go run ./cmd/lambdainvoke -function GetJobFunction -event events/get-job.json
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

func main() {
	function := flag.String("function", "", "the function's logical id (GetJobFunction) or folder (get-job)")
	event := flag.String("event", "", "the event file, e.g. events/get-job.json")
	dynamo := flag.String("dynamodb", "http://127.0.0.1:8000", "DynamoDB endpoint (make run's by default)")
	s3 := flag.String("s3", "http://127.0.0.1:4569", "S3 endpoint (make run's by default)")
	table := flag.String("table", "jobs", "the table JobsTable stands for")
	bucket := flag.String("bucket", "jobs-artifacts", "the bucket ArtifactsBucket stands for")
	flag.Parse()
	if *function == "" || *event == "" {
		flag.Usage()
		os.Exit(2)
	}
	out, err := invoke(*function, *event, localaws.LocalEnv(*dynamo, *s3, *table, *bucket), rie.StackRefs(*table, *bucket))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
}

func invoke(name, eventFile string, base, refs map[string]string) ([]byte, error) {
	payload, err := os.ReadFile(eventFile)
	if err != nil {
		return nil, err
	}
	root, err := localaws.ModuleRoot()
	if err != nil {
		return nil, err
	}
	tmpl, err := sam.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	f, ok := tmpl.Function(name)
	if !ok {
		return nil, fmt.Errorf("template.yaml has no function %s", name)
	}
	rieBin, err := rie.Install(root)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	bins, err := rie.BuildFunctions(ctx, root, rie.LocalBuildDir(root), "", f.Folder)
	if err != nil {
		return nil, err
	}
	e, err := rie.NewEmulator(f, rie.PoolOptions{Bootstraps: bins, Refs: refs, Base: base})
	if err != nil {
		return nil, err
	}
	if err := e.Start(rieBin, os.Stderr); err != nil {
		return nil, err
	}
	defer e.Stop()
	_, body, err := e.Raw(ctx, payload)
	return body, err
}
