// Package guesttest builds WebAssembly guests for tests with the real Go
// toolchain, once per test binary, so tests run exactly what a plugin
// author builds.
package guesttest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
	dir   string
)

// Dir is a directory that lives as long as the test binary, for caches
// shared by tests (such as the compilation cache).
func Dir(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "spywatcher-guests-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	return dir
}

// Build compiles the Go package at pkg (a path relative to this module's
// root, such as "host/internal/plugin/testdata/guests/good") for
// GOOS=wasip1 with -buildmode=c-shared and returns the module.
func Build(t testing.TB, pkg string) []byte {
	t.Helper()
	d := Dir(t)
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[pkg]; ok {
		return b
	}
	sum := sha256.Sum256([]byte(pkg))
	out := filepath.Join(d, hex.EncodeToString(sum[:8])+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./"+pkg)
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[pkg] = b
	return b
}

// BuildProcess compiles the Go package at pkg natively with the build tag
// spywatcher_process — the same plugin source as Build, as a process
// plugin — and returns the executable's path. ldflags are passed to the
// linker (tests use them to build a plugin speaking another protocol
// version).
func BuildProcess(t testing.TB, pkg string, ldflags ...string) string {
	t.Helper()
	d := Dir(t)
	mu.Lock()
	defer mu.Unlock()
	key := "process:" + pkg + ":" + strings.Join(ldflags, " ")
	sum := sha256.Sum256([]byte(key))
	out := filepath.Join(d, hex.EncodeToString(sum[:8]))
	if _, ok := built[key]; ok {
		return out
	}
	args := []string{"build", "-tags", "spywatcher_process", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	cmd := exec.Command("go", append(args, "./"+pkg)...)
	cmd.Dir = moduleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	built[key] = nil
	return out
}

// moduleRoot is the repository root, found from this file's location.
// ModuleRoot is the repository's root directory.
func ModuleRoot() string { return moduleRoot() }

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// Cleanup removes what the package built; call it from TestMain.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
	}
	built = map[string][]byte{}
}
