package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPluginNewScaffolds scaffolds a plugin in each language, builds it
// with its own Makefile and runs its own test: the Go unit test, and the
// plugin in a local host against its fixtures and expectations.
func TestPluginNewScaffolds(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	sdk := filepath.Join(filepath.Dir(file), "..", "..", "..", "sdk", "go")
	for _, lang := range []string{"go", "c", "assemblyscript"} {
		t.Run(lang, func(t *testing.T) {
			switch lang {
			case "c":
				if _, err := exec.LookPath("clang"); err != nil {
					t.Skip("clang is not installed (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)")
				}
			case "assemblyscript":
				if _, err := exec.LookPath("npm"); err != nil {
					t.Skip("npm is not installed")
				}
			}
			dir := filepath.Join(t.TempDir(), "my-plugin")
			var out, errb bytes.Buffer
			env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
			if code := Run(context.Background(), []string{"plugin", "new", "--lang", lang, "my-plugin", "--dir", dir, "--sdk", sdk}, env); code != 0 {
				t.Fatalf("plugin new: %d %s", code, errb.String())
			}
			if code := Run(context.Background(), []string{"plugin", "new", "--lang", lang, "my-plugin", "--dir", dir}, env); code == 0 {
				t.Fatal("plugin new overwrote a plugin")
			}
			build := exec.Command("make", "plugin.wasm")
			build.Dir = dir
			if b, err := build.CombinedOutput(); err != nil {
				if lang == "assemblyscript" && strings.Contains(string(b), "npm") {
					t.Skipf("npm install failed (no registry access?): %s", b)
				}
				t.Fatalf("make: %v\n%s", err, b)
			}
			if lang == "go" {
				test := exec.Command("go", "test", "./...")
				test.Dir = dir
				if b, err := test.CombinedOutput(); err != nil {
					t.Fatalf("go test in the scaffold: %v\n%s", err, b)
				}
			}
			rep, err := runPluginTest(context.Background(), pluginTestOptions{
				dir: dir, events: filepath.Join(dir, "testdata", "events.jsonl"), requests: []string{"GET /stats"},
				expect: filepath.Join(dir, "testdata", "expect.json"),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Failures) > 0 || len(rep.Warnings) > 0 {
				t.Fatalf("the scaffold's own test: failures %q, warnings %q", rep.Failures, rep.Warnings)
			}
			if rep.Plugin != "my-plugin" || rep.HTTP[0].Body != `{"joins":3,"messages":5}` {
				t.Fatalf("report %+v", rep)
			}
			if _, err := os.Stat(filepath.Join(dir, ".gitignore")); err != nil {
				t.Fatal(err)
			}
		})
	}
}
