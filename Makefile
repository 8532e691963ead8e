# vllm-worker: build, test, demo. `make help` lists the targets.
GO        ?= go
BIN       := bin/vllm-worker
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME  ?= 4s
DEMO_PORT ?= 8000

.PHONY: help build test unit lint fuzz-short fuzz demo sdk-deps clean

help: ## list the targets, and the variables they read with their values now
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo "variables: FUZZTIME=$(FUZZTIME) (fuzz-short)  DEMO_PORT=$(DEMO_PORT) (demo)  BENCH_FLAGS='$(BENCH_FLAGS)' (bench)  GO=$(GO)"

build: ## build the static binary bin/vllm-worker
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vllm-worker

test: lint unit fuzz-short ## every test: lint, unit and end-to-end tests (race detector), short fuzzing

# The end-to-end tests drive the worker with the official openai npm SDK and
# curl; make installs them when they are missing or stale, so that no test skips
# here for a missing tool (VLLM_WORKER_REQUIRE_TOOLS makes a missing one fail).
# The allocation budget of the request path is counted without the race
# detector, which allocates on its own (server/path_allocs_test.go).
unit: build sdk-deps tools
	VLLM_WORKER_REQUIRE_TOOLS=1 $(GO) test -race -count=1 -timeout 8m ./...
	$(GO) test -count=1 -run 'Allocs$$' ./server

lint: ## gofmt, go vet, staticcheck, go mod tidy
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }
	@# Only the engine's process supervision (and the commands) are Linux-only.
	$(GO) list ./... | grep -v -e /supervisor -e /cmd/ | GOOS=windows xargs $(GO) build

# Every parser of outside input has a fuzz target; make test runs each briefly.
FUZZ_TARGETS := \
	./openai:FuzzEventReader ./openai:FuzzPeek ./openai:FuzzCheckJSON \
	./engine:FuzzCleanPath \
	./batching:FuzzRechunker \
	./config:FuzzLoad \
	./runpod:FuzzParseInput ./runpod:FuzzMergeItems ./runpod/serverless:FuzzParseTaken \
	./supervisor:FuzzLineReader ./sim:FuzzParse \
	./check:FuzzFrameReader

# Go 1.26's fuzz coordinator may fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is busy (golang/go#75804, fixed in
# Go 1.27): that is not a finding, so such a run is tried once more. A real
# finding writes its input under testdata/fuzz and fails at once.
fuzz-short: ## run every fuzz target for FUZZTIME
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  out=$$($(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); rc=$$?; echo "$$out"; \
	  [ $$rc -eq 0 ] && continue; \
	  if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	    echo "fuzz $$fn: the -fuzztime shutdown race of golang/go#75804, not a finding; once more"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  else exit 1; fi; \
	done

fuzz: ## run every fuzz target for 2 minutes
	$(MAKE) fuzz-short FUZZTIME=2m

NPM_DIRS := tests/node examples/node

sdk-deps: $(addsuffix /node_modules/.installed,$(NPM_DIRS)) ## install the openai npm SDKs of the tests and examples (when missing or stale)

# npm ci again whenever package.json or the lockfile is newer than the install.
%/node_modules/.installed: %/package.json %/package-lock.json
	@command -v npm >/dev/null || { echo "make test needs Node 20 and npm (https://nodejs.org)"; exit 1; }
	cd $* && npm ci --no-audit --no-fund
	@touch $@

.PHONY: tools
tools: # curl, for the curl examples the tests run
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }

demo: build ## run the worker on the simulated engine at http://127.0.0.1:8000
	@echo "vllm-worker demo: simulated engine, model 'demo-model', http://127.0.0.1:$(DEMO_PORT)"
	@echo "Try, in another terminal:"
	@echo "  curl -s http://127.0.0.1:$(DEMO_PORT)/health"
	@echo "  curl -s http://127.0.0.1:$(DEMO_PORT)/openai/v1/models"
	@echo "  curl -sN http://127.0.0.1:$(DEMO_PORT)/openai/v1/chat/completions -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"Why is the sky blue?\"}],\"max_tokens\":30,\"stream\":true}'"
	@echo "  curl -s http://127.0.0.1:$(DEMO_PORT)/runsync -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"input\":{\"prompt\":\"Why is the sky blue?\",\"sampling_params\":{\"max_tokens\":100},\"stream\":true}}'"
	@echo
	ENGINE=sim MODEL_NAME=demo-model HOST=127.0.0.1 PORT=$(DEMO_PORT) LOG_FORMAT=$${LOG_FORMAT:-console} \
	  SIM_TTFT_MS=$${SIM_TTFT_MS:-150} SIM_ITL_MS=$${SIM_ITL_MS:-25} BASE_PATH=$${BASE_PATH:-/tmp/vllm-worker-demo} \
	  ./$(BIN)

# BENCH_FLAGS go to the bench program, e.g. -quick, or -perf /tmp/worker.perf.data
# to record the worker under perf during its c=64 round (see docs/benchmarks.md).
BENCH_FLAGS ?=
.PHONY: bench
bench: build ## measure the worker against direct and nginx, write docs/benchmarks.md, run the micro-benchmarks
	$(GO) run ./cmd/bench -bin $(BIN) -out docs/benchmarks.md $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./batching ./openai ./sim

# The soak test is slow (about 6 minutes) and never part of make test; it runs
# without the race detector so that the worker's RSS figures are real.
.PHONY: soak
soak: ## 1,000 concurrent streams for 60 s against a worker process: zero errors, memory back near baseline
	VLLM_WORKER_SOAK=1 $(GO) test -count=1 -timeout 20m -run '^TestSoak$$' -v ./cmd/vllm-worker/

clean: ## remove build output
	rm -rf bin
