// Package clustertest runs several real host processes behind a real load
// balancer on one machine: the multi-instance test of issue 10 and the
// cluster benchmarks (BENCHMARKS.md, "Cluster").
//
// The tests start the built binary (bin/spywatcher, `make build`) three
// times against one PostgreSQL database reached through PgBouncer in
// transaction pooling mode (--db-pgbouncer) and one Redis, with HAProxy in
// front checking /readyz. They need the services and the binaries, so they
// run only with SPYWATCHER_TEST_CLUSTER=1 (`make test-cluster`, a step of
// .ci/run); `go test ./...` skips them and says so.
//
// Environment:
//
//	SPYWATCHER_TEST_CLUSTER=1          run at all
//	SPYWATCHER_TEST_POSTGRES_URL       PostgreSQL, direct (to create the database and check rows)
//	SPYWATCHER_TEST_PGBOUNCER_URL      the same PostgreSQL through PgBouncer (what the hosts use)
//	SPYWATCHER_TEST_REDIS_URL          Redis; the tests use its database 13 (SPYWATCHER_CLUSTER_REDIS_DB) and flush it
//	SPYWATCHER_CLUSTER_BIN             the host binary (default: bin/spywatcher of the repository)
//	SPYWATCHER_CLUSTER_PLUGINS         built plugins (default: bin/plugins, `make plugins`)
//	SPYWATCHER_CLUSTER_LOGS            where the hosts' and HAProxy's logs go (default: a new temporary directory, removed after a passing run)
//
// Each run drops and recreates the database spywatcher_cluster, so runs
// repeat. The balancer config is generated (haproxyConfig) and written
// next to the logs.
package clustertest
