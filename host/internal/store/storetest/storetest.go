// Package storetest helps tests and benchmarks get a private database.
package storetest

import (
	"database/sql"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresEnv names the variable that points tests at a PostgreSQL database.
const PostgresEnv = "SPYWATCHER_TEST_POSTGRES_URL"

// PgBouncerEnv names the variable that points tests at PgBouncer in
// transaction pooling mode in front of a PostgreSQL server, with a wildcard
// database entry (see .ci/pgbouncer/pgbouncer.ini).
const PgBouncerEnv = "SPYWATCHER_TEST_PGBOUNCER_URL"

var seq atomic.Int64

// PostgresDSN creates a fresh schema in the database at base and returns a
// DSN whose search_path is that schema; the schema is dropped when the test
// ends, so tests never see each other's rows.
func PostgresDSN(t testing.TB, base string) string {
	t.Helper()
	schema := fmt.Sprintf("t_%d_%d", time.Now().UnixNano(), seq.Add(1))
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("storetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) //nolint:errcheck // best effort
			db.Close()
		}
	})
	return withSearchPath(t, base, schema)
}

// PostgresSchemaDSN returns a DSN for the named schema in the database at
// base, creating the schema if needed and keeping it afterwards (for
// datasets reused across benchmark runs).
func PostgresSchemaDSN(t testing.TB, base, schema string) string {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA IF NOT EXISTS ` + schema); err != nil {
		t.Fatalf("storetest: create schema: %v", err)
	}
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, base, schema string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PgBouncerDSN creates a fresh database through the PgBouncer at base and
// returns base pointed at it; the database is dropped when the test ends.
// A database rather than a schema: PgBouncer before 1.20 cannot pass a
// search_path startup parameter on to the server.
func PgBouncerDSN(t testing.TB, base string) string {
	t.Helper()
	name := fmt.Sprintf("t_%d_%d", time.Now().UnixNano(), seq.Add(1))
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("storetest: create database through pgbouncer: %v", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`) //nolint:errcheck // best effort
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
