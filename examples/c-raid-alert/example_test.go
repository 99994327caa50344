package raidalert

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spywatcher/spywatcher/examples/internal/exampletest"
)

// TestRaidAlert builds the C plugin from source with clang and runs it in
// the host against a burst of joins.
func TestRaidAlert(t *testing.T) {
	exampletest.NeedClangWasm(t)
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	exampletest.Run(t, ".", nil, "clang", "--target=wasm32-wasi", "-O2", "-mexec-model=reactor",
		"-I", filepath.Join(exampletest.Root(), "sdk", "c"), "-Wall", "-Werror", "-o", out, "src/raid_alert.c")
	rep := exampletest.PluginTest(t, ".", "--artifact", out, "--events", "testdata/events.jsonl",
		"--config", "testdata/config.json", "--http", "GET /status", "--expect", "testdata/expect.json")
	if rep.Events != 10 || rep.Delivered != 9 {
		t.Fatalf("events %d, delivered %d: the message must not reach a plugin subscribed to joins only", rep.Events, rep.Delivered)
	}
	var alert struct{ Joins int }
	if len(rep.Emitted) != 1 || json.Unmarshal(rep.Emitted[0].Data, &alert) != nil || alert.Joins != 5 {
		t.Fatalf("one alert at the fifth join of the burst expected: %+v", rep.Emitted)
	}
	// The window keeps only the joins of the last 30 seconds.
	if n := strings.Count(rep.KV["window"], ",") + 1; n != 6 {
		t.Fatalf("window holds %d joins: %q", n, rep.KV["window"])
	}

	// Without events.emit the alert is refused, and the plugin still runs.
	rep = exampletest.PluginTest(t, ".", "--artifact", out, "--events", "testdata/events.jsonl",
		"--config", "testdata/config.json", "--grant", "events.member.read,kv.read,kv.write,routes.serve")
	if len(rep.Denials) != 2 || rep.Denials[0].Function != "emit" || len(rep.Emitted) != 0 {
		t.Fatalf("emit without events.emit (and metric without metrics.write): %+v", rep.Denials)
	}
}
