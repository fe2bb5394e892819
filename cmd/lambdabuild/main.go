// Command lambdabuild builds functions' bootstraps for AWS Lambda
// (provided.al2023, arm64 unless -arch says otherwise) with the flags every
// bootstrap is built with. sam build runs it through the Makefile's
// build-<LogicalId> targets, make build for every function:
//
//	go run ./cmd/lambdabuild -o "$ARTIFACTS_DIR" GetJobFunction   # $ARTIFACTS_DIR/bootstrap
//	go run ./cmd/lambdabuild -all -o build                        # build/<folder>/bootstrap
//
// A function is named by its logical id or its folder; -n prints the go
// build commands instead of running them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

func main() {
	out := flag.String("o", "build", "output folder")
	arch := flag.String("arch", "arm64", "GOARCH of the bootstraps")
	all := flag.Bool("all", false, "every function, each into <output>/<folder>/bootstrap")
	dryRun := flag.Bool("n", false, "print the commands, run nothing")
	flag.Parse()
	root, err := localaws.ModuleRoot()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := filepath.Abs(*out) // the builds run in the module root
	if err != nil {
		log.Fatal(err)
	}
	builds, err := plan(root, dir, *arch, *all, flag.Args())
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range builds {
		cmd := rie.BuildCommand(context.Background(), root, *arch, b.output, rie.FunctionPackage(b.folder))
		if *dryRun {
			fmt.Println(strings.Join(cmd.Args, " "))
			continue
		}
		if err := rie.RunBuild(cmd); err != nil {
			log.Fatal(err)
		}
	}
}

type build struct{ folder, output string }

// plan says what to build where: one named function into out/bootstrap, as
// sam build wants it, or with all every folder of functions/.
func plan(root, out, arch string, all bool, names []string) ([]build, error) {
	if all {
		dirs, err := os.ReadDir(filepath.Join(root, "functions"))
		if err != nil {
			return nil, err
		}
		var bs []build
		for _, d := range dirs {
			if d.IsDir() {
				bs = append(bs, build{d.Name(), filepath.Join(out, d.Name(), "bootstrap")})
			}
		}
		return bs, nil
	}
	if len(names) != 1 {
		return nil, fmt.Errorf("usage: lambdabuild [-arch %s] -o DIR FUNCTION | -all -o DIR", arch)
	}
	folder := names[0]
	if strings.HasSuffix(folder, "Function") {
		folder = sam.Folder(folder)
	}
	if _, err := os.Stat(filepath.Join(root, "functions", folder, "main.go")); err != nil {
		return nil, fmt.Errorf("%s: no function folder functions/%s", names[0], folder)
	}
	return []build{{folder, filepath.Join(out, "bootstrap")}}, nil
}
