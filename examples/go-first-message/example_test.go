package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/spywatcher/spywatcher/examples/internal/exampletest"
)

// TestFirstMessage builds this plugin's one source both ways — WebAssembly
// and process plugin — and runs each in the host against the same events
// with the same expectations.
func TestFirstMessage(t *testing.T) {
	dir := t.TempDir()
	wasm, bin := filepath.Join(dir, "plugin.wasm"), filepath.Join(dir, "first-message")
	exampletest.Run(t, ".", []string{"GOOS=wasip1", "GOARCH=wasm"}, "go", "build", "-buildmode=c-shared", "-o", wasm, ".")
	exampletest.Run(t, ".", nil, "go", "build", "-tags", "spywatcher_process", "-o", bin, ".")
	for _, tc := range []struct{ runtime, artifact string }{{"wasm", wasm}, {"process", bin}} {
		t.Run(tc.runtime, func(t *testing.T) {
			rep := exampletest.PluginTest(t, ".", "--runtime", tc.runtime, "--artifact", tc.artifact,
				"--events", "testdata/events.jsonl", "--tick", "--http", "GET /stats", "--expect", "testdata/expect.json")
			if rep.Runtime != tc.runtime {
				t.Fatalf("ran as %s", rep.Runtime)
			}
			var stats struct {
				Count       int   `json:"count"`
				MeanSeconds int64 `json:"mean_seconds"`
				StillSilent int   `json:"still_silent"`
			}
			if err := json.Unmarshal([]byte(rep.HTTP[0].Body), &stats); err != nil {
				t.Fatal(err)
			}
			// 30 s, 480 s and 7200 s.
			if stats.Count != 3 || stats.MeanSeconds != (30+480+7200)/3 || stats.StillSilent != 1 {
				t.Fatalf("stats %+v", stats)
			}
		})
	}
}
