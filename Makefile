# Spywatcher — the targets people expect. `make help` lists them.

GO        ?= go
BIN       := bin/spywatcher
PKGS      := ./...
SDK_GO    := sdk/go
SDK_PROC  := sdk/go/plugin/process
PG_URL    ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
REDIS_URL ?= redis://127.0.0.1:6379/0
PGBOUNCER_URL ?=
RUN_FLAGS ?= --simulate --plugins-dir bin/plugins --score-interval 2m
SHA256    ?= sha256sum
# Every plugins/<name>/ with a plugin.json is a first-party plugin.
PLUGIN_DIRS := $(patsubst %/plugin.json,%,$(wildcard plugins/*/plugin.json))

.PHONY: help run build plugins test test-integration test-cluster bench-cluster bench lint check fmt clean web build-ui web-test e2e bench-ws

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build the spywatcher binary into bin/
	$(GO) build -o $(BIN) ./host/cmd/spywatcher

run: build-ui plugins ## build the dashboard, the host and the first-party plugins, and run it all on SQLite with a simulated guild
	./$(BIN) serve $(RUN_FLAGS)

# Each plugin's manifest names its artifact with an empty sha256; the copy in
# bin/plugins/<name>/ gets the checksum of what was built. "runtime": "wasm"
# builds the module with GOOS=wasip1; "runtime": "process" builds the same
# source natively with -tags spywatcher_process (PLUGINS.md, Process plugins).
plugins: ## build every plugins/*/ into bin/plugins/<name>/ (module or executable + plugin.json with its sha256)
	@set -e; for d in $(PLUGIN_DIRS); do \
		n=$$(basename $$d); out=bin/plugins/$$n; mkdir -p $$out; \
		art=$$(sed -nE 's/.*"path": *"([^"]+)".*/\1/p' $$d/plugin.json | head -n1); \
		case "$$art" in ""|*/*) echo "$$d/plugin.json: artifact.path must be a file name"; exit 1;; esac; \
		if grep -q '"runtime": *"process"' $$d/plugin.json; then \
			CGO_ENABLED=0 $(GO) build -tags spywatcher_process -trimpath -o $$out/$$art ./$$d; \
		else \
			GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $$out/$$art ./$$d; \
		fi; \
		sum=$$($(SHA256) $$out/$$art | cut -d' ' -f1); \
		sed -E 's/"sha256": *"[0-9a-f]*"/"sha256": "'$$sum'"/' $$d/plugin.json > $$out/plugin.json; \
		echo "  $$out/$$art  $$sum"; \
	done

test: ## unit and SQLite tests (no services needed)
	$(GO) test -race -count=1 $(PKGS)
	cd $(SDK_GO) && $(GO) test -race -count=1 ./...

test-integration: ## the same suites against real PostgreSQL (and Redis) at PG_URL / REDIS_URL (and PgBouncer at PGBOUNCER_URL)
	SPYWATCHER_TEST_POSTGRES_URL='$(PG_URL)' SPYWATCHER_TEST_REDIS_URL='$(REDIS_URL)' SPYWATCHER_TEST_PGBOUNCER_URL='$(PGBOUNCER_URL)' \
		$(GO) test -count=1 ./host/... ./sdk/schema/...

# The cluster: three hosts on PostgreSQL through PgBouncer and Redis behind
# HAProxy (host/internal/clustertest). Needs haproxy and PgBouncer running
# (.ci/pgbouncer/start.sh); .ci/run installs and starts both.
CLUSTER_ENV = SPYWATCHER_TEST_CLUSTER=1 SPYWATCHER_TEST_POSTGRES_URL='$(PG_URL)' SPYWATCHER_TEST_REDIS_URL='$(REDIS_URL)' \
	SPYWATCHER_TEST_PGBOUNCER_URL='$(or $(PGBOUNCER_URL),postgres://postgres@127.0.0.1:6432/test?sslmode=disable)'

test-cluster: build plugins ## three hosts behind HAProxy on PostgreSQL (PgBouncer) and Redis: reads, live stream, rate limits, plugins, jobs, a killed instance
	$(CLUSTER_ENV) $(GO) test -count=1 -v -run '^TestCluster$$' -timeout 10m ./host/internal/clustertest/

bench-cluster: build plugins ## ingest throughput and API p99 with 1, 2 and 3 hosts behind HAProxy, and failover times (BENCHMARKS.md)
	$(CLUSTER_ENV) $(GO) test -count=1 -run '^$$' -bench Cluster -benchtime 1x -timeout 30m ./host/internal/clustertest/

bench: ## benchmarks: ingest throughput (SQLite, and PostgreSQL at PG_URL if reachable), API and analytics latency, scoring
	SPYWATCHER_TEST_POSTGRES_URL='$(PG_URL)' $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./host/internal/bench/
	$(GO) test -run '^$$' -bench 'Enforce|Authenticate' -benchtime 20000x ./host/internal/authz/ ./host/internal/auth/
	$(GO) test -run '^$$' -bench 'DispatchPerEvent|HookCall|InstanceMemory' ./host/internal/plugin/
	$(GO) test -run '^$$' -bench 'BenchmarkRuntime' -benchtime 2000x ./host/internal/plugin/
	$(GO) test -run '^$$' -bench Scoring -benchtime 1x -timeout 30m ./host/internal/analytics/

lint: ## go vet and gofmt
	$(GO) vet $(PKGS)
	cd $(SDK_GO) && $(GO) vet ./...
	cd $(SDK_PROC) && $(GO) vet ./...
	@out=$$(gofmt -l host sdk migrations permissions plugins examples 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

check: lint ## tidy, format, then fail if that changed anything
	$(GO) mod tidy
	# The SDK imports the process module only under the spywatcher_process
	# tag and must not require it (it has no dependencies): tidy without
	# looking it up.
	cd $(SDK_GO) && GOPROXY=off $(GO) mod tidy -e
	cd $(SDK_PROC) && $(GO) mod tidy
	gofmt -w host sdk migrations permissions
	git diff --exit-code

web: ## build the dashboard into web/dist (npm ci, type check, vite build)
	cd web && npm ci --no-audit --no-fund && npx tsc -b && npx vite build

build-ui: web ## build bin/spywatcher with the dashboard embedded (-tags webui)
	$(GO) build -tags webui -o $(BIN) ./host/cmd/spywatcher

web-test: ## the dashboard's component tests (Vitest)
	cd web && npm ci --no-audit --no-fund && npx vitest run

e2e: build-ui plugins ## end-to-end: headless Chromium against a simulated host running the first-party plugins; screenshots in web/e2e/screenshots/
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o web/e2e/.data/plugin.wasm ./host/internal/plugin/testdata/guests/good
	cd web && node e2e/run.mjs

bench-ws: ## live stream: event-to-client latency fanning out to many WebSocket clients (BENCHMARKS.md)
	$(GO) test -run '^$$' -bench WSFanout -benchtime 1x -timeout 30m ./host/internal/ws/

clean: ## remove build output
	rm -rf bin web/dist

.PHONY: proto
proto: ## regenerate the process plugin gRPC code (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
	cd $(SDK_PROC) && protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative pluginv1/plugin.proto

# Example plugins in three languages (examples/*/README.md). Each build
# writes its artifact's checksum into the example's plugin.json.
EXAMPLE_SUM = sum=$$(sha256sum $(1) | cut -d' ' -f1) && sed -i -E "s/(\"sha256\": *\")[0-9a-f]{64}/\1$$sum/" $(2)

.PHONY: examples
examples: ## build every example plugin (C: clang lld wasi-libc libclang-rt-dev-wasm32; AssemblyScript: npm)
	clang --target=wasm32-wasi -O2 -mexec-model=reactor -I sdk/c -Wall -Werror \
		-o examples/c-raid-alert/plugin.wasm examples/c-raid-alert/src/raid_alert.c
	$(call EXAMPLE_SUM,examples/c-raid-alert/plugin.wasm,examples/c-raid-alert/plugin.json)
	cd examples/assemblyscript-keyword-alert && npm ci --no-audit --no-fund && npm run build
	$(call EXAMPLE_SUM,examples/assemblyscript-keyword-alert/plugin.wasm,examples/assemblyscript-keyword-alert/plugin.json)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o examples/go-first-message/plugin.wasm ./examples/go-first-message
	$(call EXAMPLE_SUM,examples/go-first-message/plugin.wasm,examples/go-first-message/plugin.json)
	$(GO) build -tags spywatcher_process -o examples/go-first-message/first-message ./examples/go-first-message
