package keywordalert

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spywatcher/spywatcher/examples/internal/exampletest"
)

// TestKeywordAlert builds the AssemblyScript plugin from source (npm ci,
// then asc) and runs it in the host against messages.
func TestKeywordAlert(t *testing.T) {
	exampletest.NeedNPM(t)
	if err := exec.Command("npm", "ci", "--no-audit", "--no-fund").Run(); err != nil {
		t.Skipf("npm ci failed (no access to the npm registry?): %v", err)
	}
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	exampletest.Run(t, ".", nil, "npx", "asc", "assembly/index.ts", "--config", "asconfig.json", "--target", "release", "--outFile", out)
	rep := exampletest.PluginTest(t, ".", "--artifact", out, "--events", "testdata/events.jsonl",
		"--config", "testdata/config.json", "--http", "GET /hits", "--expect", "testdata/expect.json")
	if rep.Delivered != 5 {
		t.Fatalf("delivered %d events, want the 5 messages", rep.Delivered)
	}
	if len(rep.Emitted) != 4 {
		t.Fatalf("%d alerts, want 4 (three free nitro, one steam gift)", len(rep.Emitted))
	}
	// Without message.content.read the host strips the text: no hits, and
	// the plugin says why.
	rep = exampletest.PluginTest(t, ".", "--artifact", out, "--events", "testdata/events.jsonl",
		"--config", "testdata/config.json", "--grant", "events.message.read,kv.read,kv.write,routes.serve,events.emit")
	if len(rep.Emitted) != 0 || len(rep.KV) != 0 {
		t.Fatalf("matched without content: %+v %v", rep.Emitted, rep.KV)
	}
	found := false
	for _, l := range rep.Logs {
		if strings.Contains(l["msg"].(string), "grant message.content.read") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no hint about message.content.read in %v", rep.Logs)
	}
}
