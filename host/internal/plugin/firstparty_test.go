package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
)

// installFirstParty builds a first-party plugin from plugins/<name> to
// WebAssembly, the way a release does, and installs it with its own
// plugin.json (the checksum set to the module just built). mutate may adjust
// the manifest as a JSON object (for example to list a test server's port).
func (f *fixture) installFirstParty(name string, mutate func(m map[string]any)) {
	f.t.Helper()
	code := guesttest.Build(f.t, "plugins/"+name)
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "plugins", name, "plugin.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		f.t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	// A plugin that ships as a process (webhook-notifier) is the same
	// source: here it runs as WebAssembly.
	m["runtime"] = "wasm"
	m["artifact"].(map[string]any)["path"] = "plugin.wasm"
	m["artifact"].(map[string]any)["sha256"] = hex.EncodeToString(sum[:])
	if mutate != nil {
		mutate(m)
	}
	b, _ := json.Marshal(m)
	if _, err := f.h.Install(context.Background(), b, code); err != nil {
		f.t.Fatalf("install %s: %v", name, err)
	}
}

// tick runs a plugin's tick hook with a chosen time.
func (f *fixture) tick(pluginID, guild, now string) {
	f.t.Helper()
	if _, err := f.h.call(context.Background(), pluginID, guild, HookTick, []byte(`{"now":"`+now+`"}`)); err != nil {
		f.t.Fatalf("tick %s: %v", pluginID, err)
	}
}
