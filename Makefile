# Spywatcher — the targets people expect. `make help` lists them.

GO        ?= go
BIN       := bin/spywatcher
PKGS      := ./...
SDK_GO    := sdk/go
PG_URL    ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
REDIS_URL ?= redis://127.0.0.1:6379/0
RUN_FLAGS ?= --simulate --plugins-dir bin/plugins
SHA256    ?= sha256sum
# Every plugins/<name>/ with a plugin.json is a first-party plugin.
PLUGIN_DIRS := $(patsubst %/plugin.json,%,$(wildcard plugins/*/plugin.json))

.PHONY: help run build plugins test test-integration bench lint check fmt clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build the spywatcher binary into bin/
	$(GO) build -o $(BIN) ./host/cmd/spywatcher

run: build plugins ## run the whole product on SQLite with a simulated guild and the first-party plugins
	./$(BIN) serve $(RUN_FLAGS)

# Each plugin's manifest names plugin.wasm as its artifact with an empty
# sha256; the copy in bin/plugins/<name>/ gets the checksum of what was built.
plugins: ## build every plugins/*/ into bin/plugins/<name>/ (plugin.wasm + plugin.json with its sha256)
	@set -e; for d in $(PLUGIN_DIRS); do \
		n=$$(basename $$d); out=bin/plugins/$$n; mkdir -p $$out; \
		grep -q '"path": *"plugin.wasm"' $$d/plugin.json || { echo "$$d/plugin.json: artifact.path must be plugin.wasm"; exit 1; }; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $$out/plugin.wasm ./$$d; \
		sum=$$($(SHA256) $$out/plugin.wasm | cut -d' ' -f1); \
		sed -E 's/"sha256": *"[0-9a-f]*"/"sha256": "'$$sum'"/' $$d/plugin.json > $$out/plugin.json; \
		echo "  $$out  $$sum"; \
	done

test: ## unit and SQLite tests (no services needed)
	$(GO) test -race -count=1 $(PKGS)
	cd $(SDK_GO) && $(GO) test -race -count=1 ./...

test-integration: ## the same suites against real PostgreSQL (and Redis) at PG_URL / REDIS_URL
	SPYWATCHER_TEST_POSTGRES_URL='$(PG_URL)' SPYWATCHER_TEST_REDIS_URL='$(REDIS_URL)' \
		$(GO) test -count=1 ./host/... ./sdk/schema/...

bench: ## benchmarks: ingest throughput (SQLite, and PostgreSQL at PG_URL if reachable), API and analytics latency, scoring
	SPYWATCHER_TEST_POSTGRES_URL='$(PG_URL)' $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./host/internal/bench/
	$(GO) test -run '^$$' -bench 'Enforce|Authenticate' -benchtime 20000x ./host/internal/authz/ ./host/internal/auth/
	$(GO) test -run '^$$' -bench Scoring -benchtime 1x -timeout 30m ./host/internal/analytics/

lint: ## go vet and gofmt
	$(GO) vet $(PKGS)
	cd $(SDK_GO) && $(GO) vet ./...
	@out=$$(gofmt -l host sdk migrations permissions plugins examples 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

check: lint ## tidy, format, then fail if that changed anything
	$(GO) mod tidy
	cd $(SDK_GO) && $(GO) mod tidy
	gofmt -w host sdk migrations permissions
	git diff --exit-code

clean: ## remove build output
	rm -rf bin
