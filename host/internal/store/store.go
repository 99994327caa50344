// Package store is Spywatcher's SQL storage: one concrete Store type over
// SQLite (the embedded default) or PostgreSQL, with a file per entity.
//
// Both dialects share one schema shape and, wherever SQL allows, one query
// text: times are stored as unix milliseconds (BIGINT) rather than native
// timestamps so that comparisons, cursors and aggregates behave identically,
// and queries are written with ? placeholders that are rebound to $n for
// PostgreSQL. The few statements that differ (bulk ingest, GREATEST/max) are
// chosen per dialect.
//
// SQLite gets two connection pools: a single writer (so that write
// transactions queue in Go instead of failing with SQLITE_BUSY) and a small
// pool of readers (WAL lets them run beside the writer).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/spywatcher/spywatcher/host/internal/sealing"
	"github.com/spywatcher/spywatcher/migrations"
)

// ErrNotFound is returned when the requested row does not exist.
var ErrNotFound = errors.New("store: not found")

// Dialect names the SQL database behind a Store.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxConns bounds the connection pool (PostgreSQL) or the reader pool
	// (SQLite). Zero picks a default.
	MaxConns int
	// Logger receives migration progress. Nil discards it.
	Logger *slog.Logger
	// Now is the clock used for ingest bookkeeping; nil means time.Now.
	Now func() time.Time
	// PgBouncer says the PostgreSQL URL leads to PgBouncer in transaction
	// pooling mode, where consecutive transactions of one client may run on
	// different server connections: statements are then described and run
	// with unnamed prepared statements (pgx's cache_describe mode) instead
	// of named ones that would exist on one server connection only. A
	// default_query_exec_mode in the URL wins.
	PgBouncer bool
	// Seal encrypts sensitive values at rest (plugin key-value data, OAuth
	// PKCE verifiers); nil stores them as they are. See seal.go.
	Seal *sealing.Keyring
}

// Store is the SQL storage shared by every part of the host.
type Store struct {
	dialect Dialect
	w       *sql.DB // writes (the single SQLite writer; the shared pool on PostgreSQL)
	r       *sql.DB // reads
	now     func() time.Time
	log     *slog.Logger
	seal    *sealing.Keyring

	rebound  sync.Map // query text with ? -> dialect's text
	colTypes sync.Map // PostgreSQL table -> column -> udt name (ingest_postgres.go)

	// schemaVersion is the highest migration this binary knows.
	schemaVersion int64

	stopCheckpoints func() // SQLite only

	kvUsage kvUsage // plugins' storage use, for quota checks (plugins.go)
}

// Open connects to the database named by dsn, applies pending migrations and
// returns the Store. dsn is a postgres:// or postgresql:// URL for PostgreSQL;
// anything else is a SQLite file path (optionally prefixed with "sqlite:").
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s, err := connect(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// DialectOf tells which dialect a DSN selects.
func DialectOf(dsn string) Dialect {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return Postgres
	}
	return SQLite
}

func connect(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("store: empty database DSN")
	}
	s := &Store{dialect: DialectOf(dsn), now: opts.Now, log: opts.Logger, seal: opts.Seal}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch s.dialect {
	case Postgres:
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", redactDSNError(err, dsn))
		}
		if opts.PgBouncer && !strings.Contains(dsn, "default_query_exec_mode=") {
			pc.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		}
		db := stdlib.OpenDB(*pc)
		n := opts.MaxConns
		if n <= 0 {
			n = 10
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.w, s.r = db, db
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("store: create data directory: %w", err)
			}
		}
		w, err := sql.Open("sqlite", sqliteDSN(path, false))
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetConnMaxIdleTime(0)
		r, err := sql.Open("sqlite", sqliteDSN(path, true))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		n := opts.MaxConns
		if n <= 0 {
			n = 4
		}
		r.SetMaxOpenConns(n)
		// Keep every reader open: each SQLite connection has its own page
		// cache, and a reopened one starts cold.
		r.SetMaxIdleConns(n)
		s.w, s.r = w, r
		cp, err := sql.Open("sqlite", sqliteDSN(path, false))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		cp.SetMaxOpenConns(1)
		s.stopCheckpoints = s.checkpointer(cp)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.w.PingContext(pctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", s.dialect, redactDSNError(err, dsn))
	}
	return s, nil
}

func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"busy_timeout(10000)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
		"cache_size(-65536)", // 64 MiB page cache per reader
		"temp_store(MEMORY)",
	} {
		q.Add("_pragma", p)
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
		// The writer touches index pages all over the database; a larger
		// cache saves rereading them for every batch.
		q.Add("_pragma", "cache_size(-262144)")
		// Checkpoints run in the background (see checkpointer), not inside
		// the ingest writer's commits.
		q.Add("_pragma", "wal_autocheckpoint(0)")
	}
	return "file:" + path + "?" + q.Encode()
}

// redactDSNError keeps a password that a driver echoed out of an error.
func redactDSNError(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
		return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
	}
	return err
}

// Pools returns the store's connection pools by role, for their
// statistics: "write" and "read" on SQLite, "main" on PostgreSQL.
func (s *Store) Pools() map[string]*sql.DB {
	if s.r == s.w {
		return map[string]*sql.DB{"main": s.w}
	}
	return map[string]*sql.DB{"write": s.w, "read": s.r}
}

// Dialect returns the store's SQL dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// checkpointer copies SQLite's write-ahead log into the database file from
// its own connection once a second, so that ingest commits rarely pay for a
// checkpoint. A passive checkpoint does not block the writer, but under
// steady writes it never catches up with the log's end, and SQLite only
// starts the log over once a checkpoint has: the log grew to gigabytes (2.6
// GB after 700k events) and every page lookup slowed down. So when the log
// passes walLimit a truncating checkpoint runs on the writer's own
// connection, queued between two write transactions like any of them: it
// finishes the little the passive ones left and resets the log.
func (s *Store) checkpointer(db *sql.DB) (stop func()) {
	const walLimit = 256 << 20
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`) //nolint:errcheck // best effort at close
				db.Close()
				return
			case <-t.C:
			}
			var busy, logPages, done int
			if err := db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done); err != nil {
				s.log.Warn("sqlite checkpoint", "err", err)
				continue
			}
			if int64(logPages)*4096 > walLimit {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					s.log.Warn("sqlite checkpoint (truncate)", "err", err) // retried next second
				}
				cancel()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// Close releases the connection pools.
func (s *Store) Close() error {
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
	}
	var errs []error
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	return errors.Join(errs...)
}

func (s *Store) provider() (*goose.Provider, error) {
	fsys, err := migrations.Dialect(string(s.dialect))
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	dialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
		// A table lock rather than an advisory session lock, so that migrating
		// through PgBouncer in transaction mode is safe when several
		// instances start at once.
		l, err := lock.NewPostgresTableLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithLocker(l))
	}
	return goose.NewProvider(dialect, s.w, fsys, opts...)
}

func (s *Store) migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	srcs := p.ListSources()
	if len(srcs) > 0 {
		s.schemaVersion = srcs[len(srcs)-1].Version
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if current > s.schemaVersion {
		return fmt.Errorf("store: database schema version %d is newer than this binary's %d; run a newer spywatcher or restore a backup", current, s.schemaVersion)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range res {
		s.log.Info("migration applied", "version", r.Source.Version, "file", filepath.Base(r.Source.Path), "took", r.Duration)
	}
	return nil
}

// MigrationStatus reports the database's schema version and the newest this
// binary knows.
func (s *Store) MigrationStatus(ctx context.Context) (current, latest int64, err error) {
	p, err := s.provider()
	if err != nil {
		return 0, 0, fmt.Errorf("store: migrations: %w", err)
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: migration status: %w", err)
	}
	return current, latest, nil
}

// Ready reports whether the database answers and its schema has every
// migration this binary knows. A newer schema is ready: during a rolling
// upgrade the first new instance migrates (expand-only, see migrations'
// package doc) while the old instances keep serving; only starting an old
// binary against it is refused (Open).
func (s *Store) Ready(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: database unreachable: %w", err)
	}
	var v int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied = true`).Scan(&v)
	if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if v < s.schemaVersion {
		return fmt.Errorf("store: schema version %d, want %d", v, s.schemaVersion)
	}
	return nil
}

// q returns query in the store's placeholder style. Queries are written with
// ? placeholders; PostgreSQL wants $1, $2, ... The result is cached.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	inQuote := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	s.rebound.Store(query, out)
	return out
}

// greatest returns the dialect's two-argument maximum function.
func (s *Store) greatest() string {
	if s.dialect == Postgres {
		return "GREATEST"
	}
	return "max"
}

// IsTransient reports whether err is likely to pass on retry: the database
// is unreachable, restarting, or busy. Anything else (a constraint violation,
// a bad value) will fail the same way again.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{
		"connection refused", "connection reset", "broken pipe", "bad connection",
		"driver: bad connection", "unexpected EOF", "i/o timeout", "no such host",
		"the database system is starting up", "the database system is shutting down",
		"terminating connection", "server closed the connection", "conn closed",
		"database is locked", "SQLITE_BUSY", "failed to connect", "timeout",
		"too many clients", "cannot allocate memory", "disk I/O error",
		"deadlock detected", "could not serialize access",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// zeroMS is nullMS for columns that store 0 for "unknown".
func zeroMS(v int64) *time.Time {
	if v == 0 {
		return nil
	}
	t := fromMS(v)
	return &t
}

// placeholders returns "(?,?,?),(?,?,?)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	one := "(" + strings.Repeat("?,", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(one) + 1))
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}
