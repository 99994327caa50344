package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupRestoreCommands: migrate a data directory, back it up, restore
// it into another, and refuse PostgreSQL with the procedure to follow.
func TestBackupRestoreCommands(t *testing.T) {
	ctx := context.Background()
	src, dst := t.TempDir(), t.TempDir()
	file := filepath.Join(t.TempDir(), "b.db")
	if code, _, errs := run(t, ctx, nil, "migrate", "--data-dir", src); code != 0 {
		t.Fatal(errs)
	}
	if code, out, errs := run(t, ctx, nil, "backup", "--data-dir", src, file); code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("backup: %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, ctx, nil, "restore", "--data-dir", dst, file); code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, ctx, nil, "migrate", "--data-dir", dst); code != 0 || !strings.Contains(out, "sqlite schema") {
		t.Fatalf("migrate after restore: %d %s", code, out)
	}
	if code, _, errs := run(t, ctx, nil, "backup", "--database-url", "postgres://u@127.0.0.1/db", file+"2"); code != 2 || !strings.Contains(errs, "pg_dump") {
		t.Fatalf("backup of PostgreSQL: %d %s", code, errs)
	}
	if code, _, errs := run(t, ctx, nil, "restore", "--data-dir", dst); code != 2 {
		t.Fatalf("restore without a file: %d %s", code, errs)
	}
}
