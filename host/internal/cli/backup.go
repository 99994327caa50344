package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// pgBackupHint is what backup and restore say for PostgreSQL.
const pgBackupHint = "the database is PostgreSQL: back it up with pg_dump --format=custom and restore with pg_restore (OPERATIONS.md, \"Back up and restore\")"

// backupCmd writes a consistent copy of the SQLite database while the host
// may keep running.
func backupCmd(ctx context.Context, args []string, env Env) error {
	cfg, rest, err := loadConfig("backup", args, env)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return &exitError{code: 2, err: fmt.Errorf("usage: spywatcher backup [settings] FILE")}
	}
	if store.DialectOf(cfg.DSN()) != store.SQLite {
		return &exitError{code: 2, err: fmt.Errorf("%s", pgBackupHint)}
	}
	if err := store.BackupSQLite(ctx, cfg.DSN(), rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "backed up %s to %s (verified)\n", cfg.DSN(), rest[0])
	return nil
}

// restoreCmd replaces the SQLite database with a verified backup.
func restoreCmd(ctx context.Context, args []string, env Env) error {
	var force bool
	cfg, rest, err := loadConfig("restore", args, env, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "restore even when another process has the database open (stop it right after)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return &exitError{code: 2, err: fmt.Errorf("usage: spywatcher restore [--force] [settings] FILE")}
	}
	if store.DialectOf(cfg.DSN()) != store.SQLite {
		return &exitError{code: 2, err: fmt.Errorf("%s", pgBackupHint)}
	}
	v, err := store.RestoreSQLite(ctx, rest[0], cfg.DSN(), force)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "restored %s from %s (schema version %d; newer migrations apply at the next start)\n", cfg.DSN(), rest[0], v)
	return nil
}
