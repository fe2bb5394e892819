// Command benchreport turns a `go test -bench` run of shared/api's
// BenchmarkReadEndpoints and BenchmarkHandlerCPU (make bench) into the
// request path's report (issue 13): per request its sequential round trips,
// store calls, items read, read units, handler time, CPU and allocations
// against json.Marshal of the same page, the cold-start ratio from a saved
// `make bench-coldstart` table, and the cost per million list pages at
// several Lambda memory sizes.
//
//	go test -run '^$' -bench 'ReadEndpoints|HandlerCPU' -benchmem ./shared/api | go run ./cmd/benchreport [-coldstart FILE]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

func main() {
	coldstart := flag.String("coldstart", "", "a saved `make bench-coldstart` output, for the cold × hello column")
	template := flag.String("template", "template.yaml", "the SAM template, for the functions' memory sizes")
	rtt := flag.Float64("rtt", 4, "ms per sequential store round trip in the region")
	sizes := flag.String("sizes", "128,256,512,1024", "Lambda memory sizes (MB) to cost list pages at")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *coldstart, *template, *rtt, *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, coldstart, template string, rtt float64, sizeList string) error {
	res, err := parseBench(in)
	if err != nil {
		return err
	}
	if len(res.requests()) == 0 {
		return fmt.Errorf("no BenchmarkReadEndpoints or BenchmarkHandlerCPU results in the input")
	}
	cold := map[string]string{}
	if coldstart != "" {
		f, err := os.Open(coldstart)
		switch {
		case os.IsNotExist(err):
			fmt.Fprintf(out, "(no %s: run make bench-coldstart for the cold × hello column)\n\n", coldstart)
		case err != nil:
			return err
		default:
			defer f.Close()
			if cold, err = coldRatios(f); err != nil {
				return err
			}
		}
	}
	t, err := sam.Load(template)
	if err != nil {
		return err
	}
	memory := map[string]int{}
	for _, f := range t.Functions {
		memory[f.Folder] = f.MemorySize
	}
	var sizes []int
	for _, s := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 128 {
			return fmt.Errorf("memory size %q: want MB, at least 128", s)
		}
		sizes = append(sizes, n)
	}
	report(out, res, cold, memory, model{rtt: rtt, p: usEast1}, sizes)
	return nil
}
