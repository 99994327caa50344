package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// dumpSQLite reads every row of every table of the database at path, as
// text, table by table in rowid order.
func dumpSQLite(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	out := map[string][]string{}
	for _, tb := range tables {
		rs, err := db.Query(`SELECT * FROM "` + tb + `" ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[tb] = append(out[tb], fmt.Sprint(vals...))
		}
		rs.Close()
	}
	return out
}

// TestBackupRestore backs a live database up, restores it elsewhere and
// finds every row of every table.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	s, err := Open(ctx, live, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustIngest(t, s, join(alice, "alice", 0, roleA), join(bob, "bob", time.Second), message(alice, time.Minute, "1100000000000000001"),
		message(bob, 2*time.Minute, "1100000000000000002"))
	if _, err := s.AcquireFenced(ctx, "job:x:g", "h", time.Hour); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := BackupSQLite(ctx, live, backup); err != nil { // the store is open: an online backup
		t.Fatal(err)
	}
	if err := BackupSQLite(ctx, live, backup); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	want := dumpSQLite(t, live)
	s.Close()
	if len(want["events"]) != 4 || len(want["members"]) != 2 || len(want["leases"]) != 1 {
		t.Fatalf("source has %d events, %d members, %d leases", len(want["events"]), len(want["members"]), len(want["leases"]))
	}

	restored := filepath.Join(dir, "restored", "spywatcher.db")
	v, err := RestoreSQLite(ctx, backup, restored, false)
	if err != nil {
		t.Fatal(err)
	}
	if latest, _ := latestVersion(SQLite); v != latest {
		t.Fatalf("restored version %d, want %d", v, latest)
	}
	if got := dumpSQLite(t, restored); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored database differs:\n got %v\nwant %v", got, want)
	}
	s2, err := Open(ctx, restored, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s2.GetMember(ctx, guild, alice); err != nil || m.MessageCount != 1 {
		t.Fatalf("restored member: %+v %v", m, err)
	}
	s2.Close()

	// A damaged backup and one from a newer binary are refused.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("not a database ", 100)), 0o600)
	if _, err := RestoreSQLite(ctx, junk, restored, false); err == nil {
		t.Fatal("junk restored")
	}
	future := filepath.Join(dir, "future.db")
	copyFile(backup, future)
	db, _ := sql.Open("sqlite", future)
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := RestoreSQLite(ctx, future, restored, false); err == nil || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("a backup from a newer binary: %v", err)
	}
	if err := BackupSQLite(ctx, "postgres://x@127.0.0.1/db", backup+"2"); err == nil {
		t.Fatal("PostgreSQL backup attempted")
	}
}

// TestRestoreRefusesADatabaseInUse: a restore over a database another
// process has open is refused without force.
func TestRestoreRefusesADatabaseInUse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, "spywatcher.db")
	s, err := Open(ctx, target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	backup := filepath.Join(dir, "backup.db")
	if err := BackupSQLite(ctx, target, backup); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDatabase$")
	cmd.Env = append(os.Environ(), "SPYWATCHER_TEST_HOLD_DB="+target)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "held") {
		t.Fatalf("helper: %q %v", line, err)
	}
	if _, err := RestoreSQLite(ctx, backup, target, false); !errors.Is(err, ErrInUse) {
		t.Fatalf("restore over an open database: %v", err)
	}
	if _, err := RestoreSQLite(ctx, backup, target, true); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
}

// TestHelperHoldDatabase is run by TestRestoreRefusesADatabaseInUse as a
// separate process that keeps a database open until its stdin closes.
func TestHelperHoldDatabase(t *testing.T) {
	path := os.Getenv("SPYWATCHER_TEST_HOLD_DB")
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ListGuilds(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Println("held")
	bufio.NewReader(os.Stdin).ReadString('\n') //nolint:errcheck // EOF ends the wait
}
