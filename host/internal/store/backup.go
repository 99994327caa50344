package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spywatcher/spywatcher/migrations"
)

// Backups of the SQLite database. PostgreSQL is backed up with its own
// tools (pg_dump / pg_restore, OPERATIONS.md); these refuse it.

// ErrInUse is returned by RestoreSQLite when another process has the
// target database open and force was not given.
var ErrInUse = errors.New("store: database in use")

// BackupSQLite writes a consistent copy of the SQLite database to path
// while the host keeps running: VACUUM INTO reads one snapshot (WAL lets
// the writer go on meanwhile) and writes a compact database file. path must
// not exist.
func BackupSQLite(ctx context.Context, dsn, path string) error {
	if DialectOf(dsn) != SQLite {
		return errors.New("store: backup: PostgreSQL is backed up with pg_dump (see OPERATIONS.md)")
	}
	src := strings.TrimPrefix(dsn, "sqlite:")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup: %s exists; choose a new file", path)
	}
	db, err := sql.Open("sqlite", sqliteDSN(src, false))
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if _, err := VerifySQLite(ctx, path); err != nil {
		return fmt.Errorf("store: backup written but does not verify: %w", err)
	}
	return nil
}

// VerifySQLite checks that path is an intact Spywatcher SQLite database
// that this binary can run (its schema is not newer), and returns its
// schema version.
func VerifySQLite(ctx context.Context, path string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("store: verify: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("store: verify %s: %w", path, err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return 0, fmt.Errorf("store: verify %s: not a database: %w", path, err)
	}
	if result != "ok" {
		return 0, fmt.Errorf("store: verify %s: integrity check: %s", path, result)
	}
	var v int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: verify %s: not a Spywatcher database: %w", path, err)
	}
	latest, err := latestVersion(SQLite)
	if err != nil {
		return 0, err
	}
	if v == 0 || v > latest {
		return v, fmt.Errorf("store: verify %s: schema version %d, this binary runs 1 to %d", path, v, latest)
	}
	return v, nil
}

// RestoreSQLite replaces the SQLite database dsn with the backup at from,
// after verifying the backup. It refuses while another process has the
// database open unless force is set (then that process must be stopped
// right after: it would keep writing to the replaced file).
func RestoreSQLite(ctx context.Context, from, dsn string, force bool) (int64, error) {
	if DialectOf(dsn) != SQLite {
		return 0, errors.New("store: restore: PostgreSQL is restored with pg_restore (see OPERATIONS.md)")
	}
	v, err := VerifySQLite(ctx, from)
	if err != nil {
		return 0, err
	}
	dst := strings.TrimPrefix(dsn, "sqlite:")
	if !force {
		inUse, err := sqliteInUse(dst)
		if err != nil {
			return 0, err
		}
		if inUse {
			return 0, fmt.Errorf("%w: %s is open in another process (stop spywatcher first, or --force)", ErrInUse, dst)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	tmp := dst + ".restore"
	if err := copyFile(from, tmp); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	// The old database's log must not be replayed into the restored file.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			os.Remove(tmp)
			return 0, fmt.Errorf("store: restore: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	return v, nil
}

// sqliteInUse reports whether another process has the database at path
// open. Every SQLite connection in WAL mode holds a shared lock on the
// "dead man switch" byte of the -shm file while it is open; an exclusive
// lock on it succeeds only when no other process has a connection. (POSIX
// locks do not conflict within one process, so this cannot see the
// caller's own connections.)
func sqliteInUse(path string) (bool, error) {
	f, err := os.OpenFile(path+"-shm", os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: restore: %w", err)
	}
	defer f.Close()
	const dms = 128 // (22+8)*4 + 8: after the WAL index's eight lock bytes
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: dms, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return true, nil
		}
		return false, fmt.Errorf("store: restore: lock %s-shm: %w", path, err)
	}
	lk.Type = syscall.F_UNLCK
	syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk) //nolint:errcheck // closing drops it too
	return false, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// latestVersion is the newest migration of dialect this binary embeds.
func latestVersion(d Dialect) (int64, error) {
	fsys, err := migrations.Dialect(string(d))
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		num, _, _ := strings.Cut(n, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("store: migration file %s: %w", n, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}
