package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/sealing"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// TestReplayOfSimulatorFileIsConfigured: a file from `spywatcher simulate`
// replays into a guild configured like the demo guild of `serve --simulate`.
func TestReplayOfSimulatorFileIsConfigured(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sim.jsonl")
	truth := filepath.Join(dir, "truth.json")
	if code, out, errOut := run(t, context.Background(), nil, "simulate", "--out", file, "--truth", truth, "--duration", "2h",
		"--simulate-members", "20"); code != 0 {
		t.Fatalf("simulate: %d %s %s", code, out, errOut)
	}
	var tr struct {
		GuildID string `json:"guild_id"`
	}
	b, _ := os.ReadFile(truth)
	if err := json.Unmarshal(b, &tr); err != nil || tr.GuildID == "" {
		t.Fatalf("truth: %v %s", err, b)
	}
	data := filepath.Join(dir, "data")
	if code, out, errOut := run(t, context.Background(), nil, "replay", "--data-dir", data, file); code != 0 {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	st, err := store.Open(context.Background(), filepath.Join(data, "spywatcher.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g, err := st.GetGuildSettings(context.Background(), tr.GuildID)
	if err != nil || !g.Configured || !g.Tracking.Presence || !g.Tracking.Messages {
		t.Fatalf("the simulated guild after replay: %+v %v", g, err)
	}
	lines := bytes.Count(mustRead(t, file), []byte("\n"))
	if lines < 10 {
		t.Fatalf("the simulator wrote only %d events", lines)
	}
	if n, _ := st.CountEvents(context.Background(), tr.GuildID); n != lines {
		t.Fatalf("stored %d of %d simulated events", n, lines)
	}
}

// TestPrivacyCommands: export, delete with opt-out, the request log, and
// key rotation, through the CLI.
func TestPrivacyCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const guild, user = "41771983423143937", "80351110224678912"
	const oldKey, newKey = "the-old-secret-key-0123456789abcdef", "the-new-secret-key-0123456789abcdef"
	trackAll(t, data, guild)
	file := filepath.Join(dir, "ev.jsonl")
	os.WriteFile(file, []byte(`{"id":"c1","kind":"typing.start","guild_id":"`+guild+`","user_id":"`+user+`","channel_id":"41771983423143938","at":"2026-03-01T00:00:00Z"}`+"\n"), 0o600)
	if code, out, errOut := run(t, context.Background(), nil, "replay", "--data-dir", data, file); code != 0 {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	// Plugin data sealed by the old key.
	dsn := filepath.Join(data, "spywatcher.db")
	oldRing, _ := sealing.New(oldKey, nil)
	st, err := store.Open(context.Background(), dsn, store.Options{Seal: oldRing})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.KVSet(context.Background(), "logger", guild, "msg:1", user, []byte("hello there"), 1<<20); err != nil {
		t.Fatal(err)
	}
	st.Close()

	envOld := map[string]string{"SPYWATCHER_SECRET_KEY": oldKey}
	code, out, errOut := run(t, context.Background(), envOld, "privacy", "export", user, "--data-dir", data)
	if code != 0 || !strings.Contains(out, `"typing"`) || !strings.Contains(out, "hello there") {
		t.Fatalf("export: %d\n%s\n%s", code, out, errOut)
	}
	// Rotate: new key current, old key still readable, then re-seal.
	envBoth := map[string]string{"SPYWATCHER_SECRET_KEY": newKey, "SPYWATCHER_OLD_SECRET_KEYS": oldKey}
	code, out, errOut = run(t, context.Background(), envBoth, "keys", "rotate", "--data-dir", data)
	if code != 0 || !strings.Contains(out, "1 plugin values") {
		t.Fatalf("keys rotate: %d\n%s\n%s", code, out, errOut)
	}
	envNew := map[string]string{"SPYWATCHER_SECRET_KEY": newKey}
	code, out, _ = run(t, context.Background(), envNew, "privacy", "export", user, "--guild", guild, "--data-dir", data)
	if code != 0 || !strings.Contains(out, "hello there") {
		t.Fatalf("export with only the new key after rotation: %d\n%s", code, out)
	}

	code, out, errOut = run(t, context.Background(), envNew, "privacy", "delete", user, "--opt-out", "--reason", "asked", "--data-dir", data)
	if code != 0 || !strings.Contains(out, ": done") || !strings.Contains(out, `"plugin_kv": 1`) || !strings.Contains(out, `"typing": 1`) {
		t.Fatalf("delete: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = run(t, context.Background(), envNew, "privacy", "opt-outs", "--data-dir", data)
	if code != 0 || !strings.Contains(out, user) || !strings.Contains(out, "(all)") {
		t.Fatalf("opt-outs: %d\n%s", code, out)
	}
	code, out, _ = run(t, context.Background(), envNew, "privacy", "requests", "--data-dir", data)
	if code != 0 || strings.Count(out, user) != 3 || !strings.Contains(out, "delete") {
		t.Fatalf("requests: %d\n%s", code, out)
	}
	code, out, _ = run(t, context.Background(), envNew, "guild", "remove", guild, "--data-dir", data)
	if code != 0 || !strings.Contains(out, "deleted after") {
		t.Fatalf("guild remove: %d\n%s", code, out)
	}
	if code, _, errOut := run(t, context.Background(), nil, "privacy", "delete", "not-an-id", "--data-dir", data); code != 2 {
		t.Fatalf("bad user ID: exit %d %s", code, errOut)
	}
}
