package main

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
)

const sample = `goos: linux
pkg: github.com/gitlab-jobs-serverless/jobsapi/shared/api
BenchmarkReadEndpoints/list-project-jobs/list-page-1-2         	     100	   5000000 ns/op	 1.000 trips/op	 1.000 calls/op	 21.00 items/op	 1.500 RU/op
BenchmarkReadEndpoints/get-job/get-job-2         	     100	   3000000 ns/op	 1.000 trips/op	 1.000 calls/op	 0 items/op	 1.000 RU/op
    bench_test.go:99: BenchmarkHandlerCPU 3 a log line
BenchmarkHandlerCPU/list-project-jobs/list-page-1/handler-2         	     300	    700000 ns/op	 600000 cpu-ns/op	  190000 B/op	    1900 allocs/op
BenchmarkHandlerCPU/list-project-jobs/list-page-1/handler-2         	     300	    900000 ns/op	 800000 cpu-ns/op	  190000 B/op	    1902 allocs/op
BenchmarkHandlerCPU/list-project-jobs/list-page-1/handler-2         	     300	    800000 ns/op	 700000 cpu-ns/op	  190000 B/op	    1901 allocs/op
BenchmarkHandlerCPU/list-project-jobs/list-page-1/cached-2          	     300	    200000 ns/op	 180000 cpu-ns/op	   60000 B/op	     163 allocs/op
BenchmarkHandlerCPU/list-project-jobs/list-page-1/marshal-2         	     300	    400000 ns/op	 350000 cpu-ns/op	   49000 B/op	       2 allocs/op
PASS
`

const coldSample = `go1.26.8 linux/amd64, 2 CPUs
| function | size amd64 (MiB) | size arm64 (MiB) | cold (ms) | cold × hello | warm (ms) | warm × hello | status | goals |
|---|--:|--:|--:|--:|--:|--:|---|---|
| hello | 6.0 | 5.6 | 57.9 | 1.00 | 1.33 | 1.00 | 200 | baseline |
| list-project-jobs | 10.9 | 10.2 | 82.0 | 1.42 | 13.28 | 9.97 | 200 | PASS |
`

func TestParseBench(t *testing.T) {
	r, err := parseBench(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkHandlerCPU/list-project-jobs/list-page-1/handler", "cpu-ns/op", 700000}, // median of three
		{"BenchmarkHandlerCPU/list-project-jobs/list-page-1/handler", "allocs/op", 1901},
		{"BenchmarkHandlerCPU/list-project-jobs/list-page-1/marshal", "ns/op", 400000},
		{"BenchmarkReadEndpoints/list-project-jobs/list-page-1", "RU/op", 1.5},
		{"BenchmarkReadEndpoints/get-job/get-job", "items/op", 0},
	} {
		if got := r.median(c.name, c.unit); got != c.want {
			t.Errorf("%s %s = %v, want %v", c.name, c.unit, got, c.want)
		}
	}
	if got := r.median("BenchmarkReadEndpoints/get-job/get-job", "cpu-ns/op"); !math.IsNaN(got) {
		t.Errorf("an unmeasured unit is %v, want NaN", got)
	}
	if got := r.requests(); len(got) != 2 || got[0] != (request{"get-job", "get-job"}) || got[1] != (request{"list-project-jobs", "list-page-1"}) {
		t.Errorf("requests = %v", got)
	}
}

func TestColdRatios(t *testing.T) {
	got, err := coldRatios(strings.NewReader(coldSample))
	if err != nil {
		t.Fatal(err)
	}
	if got["list-project-jobs"] != "1.42" || got["hello"] != "1.00" || len(got) != 2 {
		t.Errorf("cold ratios = %v", got)
	}
}

// The cost model's arithmetic, worked by hand: a 1-trip page of 0.8 ms
// CPU and 1.5 read units.
func TestCostPerMillion(t *testing.T) {
	m := model{rtt: 4, p: usEast1}
	for _, c := range []struct {
		memory         int
		billed, dollar float64
	}{
		// 4 + 0.8 × 1769/512 = 6.76 → 7 ms × 0.5 GB × $0.0000133334 × 1e6 = $0.0467
		{512, 7, 1.20 + 0.0466669 + 0.1875},
		// 4 + 0.8 × 1769/128 = 15.06 → 16 ms × 0.125 GB → $0.0266668
		{128, 16, 1.20 + 0.0266668 + 0.1875},
		// above 1769 MB the CPU does not get faster: 4.8 → 5 ms × 2 GB
		{2048, 5, 1.20 + 0.133334 + 0.1875},
	} {
		if got := m.billedMS(1, 0.8, c.memory); got != c.billed {
			t.Errorf("%d MB: billed %v ms, want %v", c.memory, got, c.billed)
		}
		if got, _, _ := m.costPerMillion(1, 0.8, 1.5, c.memory); math.Abs(got-c.dollar) > 1e-6 {
			t.Errorf("%d MB: $%.7f per million, want $%.7f", c.memory, got, c.dollar)
		}
	}
}

// The whole report from a run's output, the template's memory sizes and a
// cold-start table (list page 1 at 128 MB: 4 + 0.7 × 1769/128 = 13.7 → 14 ms,
// $0.0233 + $0.1875 of reads + $1.20).
func TestRun(t *testing.T) {
	dir := t.TempDir()
	cold := dir + "/cold.txt"
	if err := writeFile(cold, coldSample); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(strings.NewReader(sample), &out, cold, "../../template.yaml", 4, "128,512"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| list-project-jobs | list-page-1 | 1.00 | 1.00 | 21 | 1.50 | 800 | 700 | 1901 | 350 | 2.00× | 180 | 1.42 |",
		"| get-job | get-job | 1.00 | 1.00 | 0 | 1.00 | – | – | – | – | – | – | – |",
		"| list-project-jobs | list-page-1 | 512 | 14, 1.411 | 7, 1.434 | 0.188 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(strings.NewReader("PASS\n"), &out, "", "../../template.yaml", 4, "512"); err == nil {
		t.Error("a run without the benchmarks made a report")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
