// Package exampletest runs example plugins the way their authors would:
// it builds the spywatcher binary from this repository and runs
// `spywatcher plugin test` on a plugin against its event fixtures, so that
// every example is built from source and exercised in the real host by
// `go test ./examples/...`. Examples import only sdk/; this package reaches
// the host through its command line, not its packages.
package exampletest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Spywatcher builds the spywatcher binary (once per test binary) and
// returns its path.
func Spywatcher(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spywatcher-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "spywatcher")
		cmd := exec.Command("go", "build", "-o", binPath, "./host/cmd/spywatcher")
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New(err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build spywatcher: %v", binErr)
	}
	return binPath
}

// Report is the part of `spywatcher plugin test --json` tests look at.
type Report struct {
	Plugin    string `json:"plugin"`
	Runtime   string `json:"runtime"`
	Events    int    `json:"events"`
	Delivered int    `json:"delivered"`
	Calls     []struct {
		Hook  string `json:"hook"`
		Error string `json:"error"`
	} `json:"calls"`
	HostCalls []struct {
		Function string `json:"function"`
		Result   string `json:"result"`
	} `json:"host_calls"`
	Denials []struct {
		Function string          `json:"function"`
		Response json.RawMessage `json:"response"`
	} `json:"denials"`
	Emitted []struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"emitted"`
	Logs []map[string]any  `json:"logs"`
	KV   map[string]string `json:"kv"`
	HTTP []struct {
		Request string `json:"request"`
		Status  int    `json:"status"`
		Body    string `json:"body"`
	} `json:"http"`
	Failures []string `json:"failures"`
}

// PluginTest runs `spywatcher plugin test dir --json args...` and returns
// its report; a failed run fails the test with the tool's output.
func PluginTest(t testing.TB, dir string, args ...string) Report {
	t.Helper()
	cmd := exec.Command(Spywatcher(t), append([]string{"plugin", "test", dir, "--json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rep Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("plugin test: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("plugin test failed: %v\nfailures: %q\nstderr: %s", err, rep.Failures, stderr.String())
	}
	return rep
}

// Run runs a build command in dir and fails the test with its output.
func Run(t testing.TB, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// NeedClangWasm skips the test unless clang can build wasm32-wasi modules
// (Debian: clang lld wasi-libc libclang-rt-dev-wasm32).
func NeedClangWasm(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("clang is not installed; the C example needs clang, lld, wasi-libc and libclang-rt-dev-wasm32 (.ci/run installs them)")
	}
	probe := filepath.Join(t.TempDir(), "probe.c")
	os.WriteFile(probe, []byte("int x;\n"), 0o644)
	cmd := exec.Command("clang", "--target=wasm32-wasi", "-mexec-model=reactor", "-o", probe+".wasm", probe)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("clang cannot build for wasm32-wasi (install lld, wasi-libc and libclang-rt-dev-wasm32): %v\n%s", err, out)
	}
}

// NeedNPM skips the test unless node and npm are installed.
func NeedNPM(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed; the AssemblyScript example needs Node.js and npm", tool)
		}
	}
}
