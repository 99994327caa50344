package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/config"
	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	guesttest.Cleanup()
	os.Exit(code)
}

// writeBuilt writes what make plugins writes for plugins/<id>: the module
// and the manifest with its checksum, at version.
func writeBuilt(t *testing.T, dir, id, version string, code []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "plugins", id, "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	raw = regexp.MustCompile(`"sha256": *"[0-9a-f]*"`).ReplaceAll(raw, []byte(`"sha256": "`+hex.EncodeToString(sum[:])+`"`))
	raw = regexp.MustCompile(`"version": *"[^"]*"`).ReplaceAll(raw, []byte(`"version": "`+version+`"`))
	out := filepath.Join(dir, id)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "plugin.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "plugin.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPluginsDir installs a plugins directory at start, leaves an
// unchanged plugin alone, upgrades a new version, refuses changed code at
// the same version with a warning, and enables plugins in the simulated
// guild only the first time.
func TestPluginsDir(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	cfg, _, err := config.Load("serve", []string{"--data-dir", data}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	code := guesttest.Build(t, "plugins/ghost-score")
	dir := t.TempDir()
	writeBuilt(t, dir, "ghost-score", "1.0.0", code)
	if err := os.MkdirAll(filepath.Join(dir, "not-a-plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	ids, err := a.InstallPluginsDir(ctx, dir)
	if err != nil || len(ids) != 1 || ids[0] != "ghost-score" {
		t.Fatalf("first start: %v %v", ids, err)
	}
	const guild = "41771983423143937"
	if err := a.EnablePlugins(ctx, guild, ids, "simulate"); err != nil {
		t.Fatal(err)
	}
	if got := a.Plugins.Scorers(guild); len(got) != 1 || got[0].ID != "ghost-score" {
		t.Fatalf("scorers after enabling: %+v", got)
	}
	// An admin disables it; the next start must not enable it again.
	if err := a.Plugins.SetEnabled(ctx, "ghost-score", guild, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.InstallPluginsDir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := a.EnablePlugins(ctx, guild, ids, "simulate"); err != nil {
		t.Fatal(err)
	}
	if got := a.Plugins.Scorers(guild); len(got) != 0 {
		t.Fatalf("a disabled plugin was enabled again: %+v", got)
	}
	// Changed code at the same version: refused, with a warning.
	changed := append(append([]byte(nil), code...), 0, 'x') // other bytes (never installed: refused before)
	writeBuilt(t, dir, "ghost-score", "1.0.0", changed)
	if _, err := a.InstallPluginsDir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "raise its version to upgrade") {
		t.Fatalf("no warning about changed code at the same version:\n%s", logs.String())
	}
	// A new version is installed.
	writeBuilt(t, dir, "ghost-score", "1.0.1", code)
	if _, err := a.InstallPluginsDir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	p, err := a.Store.GetPlugin(ctx, "ghost-score")
	if err != nil || p.Version != "1.0.1" {
		t.Fatalf("after upgrade: %+v %v", p, err)
	}
}

// TestProcessPluginFromPluginsDir: webhook-notifier ships as a process
// plugin; built as make plugins builds it, it is installed from the plugins
// directory, enabled in the simulated guild (the operator's choice of the
// directory is the trust it needs) and answers its route as a process.
func TestProcessPluginFromPluginsDir(t *testing.T) {
	ctx := context.Background()
	cfg, _, err := config.Load("serve", []string{"--data-dir", t.TempDir()}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	exe, err := os.ReadFile(guesttest.BuildProcess(t, "plugins/webhook-notifier"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "plugins", "webhook-notifier", "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"runtime": *"process"`).Match(raw) {
		t.Fatal("webhook-notifier no longer ships as a process plugin: make run would run no process plugin")
	}
	sum := sha256.Sum256(exe)
	raw = regexp.MustCompile(`"sha256": *"[0-9a-f]*"`).ReplaceAll(raw, []byte(`"sha256": "`+hex.EncodeToString(sum[:])+`"`))
	dir := filepath.Join(t.TempDir(), "webhook-notifier")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "webhook-notifier"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	ids, err := a.InstallPluginsDir(ctx, filepath.Dir(dir))
	if err != nil || len(ids) != 1 {
		t.Fatalf("install: %v %v", ids, err)
	}
	const guild = "41771983423143937"
	if err := a.EnablePlugins(ctx, guild, ids, "simulate"); err != nil {
		t.Fatal(err)
	}
	st, err := a.Plugins.Status(ctx, "webhook-notifier", guild)
	if err != nil || st.State != "running" {
		t.Fatalf("status: %+v %v", st, err)
	}
	res, err := a.Plugins.ServeRoute(ctx, "webhook-notifier", guild, sdk.Request{Method: "GET", Path: "/status"})
	if err != nil || res.Status != 200 || !strings.Contains(string(res.Body), `"fetch_granted":true`) {
		t.Fatalf("route through the process: %+v %v", res, err)
	}
}
