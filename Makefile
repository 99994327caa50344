# Spywatcher — the targets people expect. `make help` lists them.

GO        ?= go
BIN       := bin/spywatcher
PKGS      := ./...
SDK_GO    := sdk/go
PG_URL    ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
REDIS_URL ?= redis://127.0.0.1:6379/0
PGBOUNCER_URL ?=
RUN_FLAGS ?= --simulate

.PHONY: help run build test test-integration bench lint check fmt clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build the spywatcher binary into bin/
	$(GO) build -o $(BIN) ./host/cmd/spywatcher

run: build ## run the whole product on SQLite with a simulated guild
	./$(BIN) serve $(RUN_FLAGS)

test: ## unit and SQLite tests (no services needed)
	$(GO) test -race -count=1 $(PKGS)
	cd $(SDK_GO) && $(GO) test -race -count=1 ./...

test-integration: ## the same suites against real PostgreSQL (and Redis) at PG_URL / REDIS_URL (and PgBouncer at PGBOUNCER_URL)
	SPYWATCHER_TEST_POSTGRES_URL='$(PG_URL)' SPYWATCHER_TEST_REDIS_URL='$(REDIS_URL)' SPYWATCHER_TEST_PGBOUNCER_URL='$(PGBOUNCER_URL)' \
		$(GO) test -count=1 ./host/... ./sdk/schema/...

bench: ## benchmarks: ingest throughput (SQLite, and PostgreSQL at PG_URL if reachable) and API latency
	SPYWATCHER_TEST_POSTGRES_URL='$(PG_URL)' $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./host/internal/bench/
	$(GO) test -run '^$$' -bench 'Enforce|Authenticate' -benchtime 20000x ./host/internal/authz/ ./host/internal/auth/

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
