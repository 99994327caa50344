package wasm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
)

// module assembles a WebAssembly binary from its sections (id, body).
func module(sections ...[]byte) []byte {
	b := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	for _, s := range sections {
		b = append(b, s[0])
		b = append(b, uleb(uint32(len(s)-1))...)
		b = append(b, s[1:]...)
	}
	return b
}

func sec(id byte, body ...byte) []byte { return append([]byte{id}, body...) }

// spinModule exports "spin", which loops forever, "add1", which adds one to
// a global of its own, and "direct" and "indirect", which call add1 with
// call and through a table and return 0 only when the global then holds 1
// and 2: calls that reach the wrong function after the rewrite shifts
// function indices show up as non-zero return codes.
func spinModule(code ...byte) []byte {
	spin := []byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00, 0x0b} // loop br 0 end; i32.const 0
	if code != nil {
		spin = code
	}
	bodies := [][]byte{
		spin,
		{0x00, 0x23, 0x00, 0x41, 0x01, 0x6a, 0x24, 0x00, 0x41, 0x00, 0x0b},             // g0 += 1; 0
		{0x00, 0x10, 0x01, 0x1a, 0x23, 0x00, 0x41, 0x01, 0x47, 0x0b},                   // call 1; drop; g0 != 1
		{0x00, 0x41, 0x00, 0x11, 0x00, 0x00, 0x1a, 0x23, 0x00, 0x41, 0x02, 0x47, 0x0b}, // call_indirect 0; drop; g0 != 2
	}
	codeSec := uleb(uint32(len(bodies)))
	for _, b := range bodies {
		codeSec = concat(codeSec, uleb(uint32(len(b))), b)
	}
	exports := uleb(4)
	for i, n := range []string{"spin", "add1", "direct", "indirect"} {
		exports = concat(exports, name(n), []byte{0x00, byte(i)})
	}
	return module(
		sec(1, 0x01, 0x60, 0x00, 0x01, 0x7f),       // type 0: () -> i32
		sec(3, 0x04, 0x00, 0x00, 0x00, 0x00),       // four functions of type 0
		sec(4, 0x01, 0x70, 0x00, 0x01),             // a funcref table of 1
		sec(6, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b), // g0: mut i32 = 0
		sec(7, exports...),
		sec(9, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 0x01), // table[0] = add1
		sec(10, codeSec...),
		sec(0, append(name("name"), 0x01, 0x02, 0x01, 0x00, 0x01, 'x')...), // a name section, dropped
	)
}

func compile(t *testing.T, code []byte, timeout time.Duration) *Module {
	t.Helper()
	ctx := context.Background()
	e, err := NewEngine("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	m, err := e.Compile(ctx, code, Limits{MemoryPages: 16, KernelBytes: 1 << 20, CallTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })
	return m
}

func instance(t *testing.T, m *Module) *Instance {
	t.Helper()
	in, err := m.Instantiate(context.Background(), nil, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestDeadlineStopsALoopingGuest(t *testing.T) {
	m := compile(t, spinModule(), 200*time.Millisecond)
	if !m.interruptible {
		t.Fatal("the module was not instrumented")
	}
	in := instance(t, m)
	_, err := in.Call(context.Background(), "spin", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("spin: %v, want a timeout", err)
	}
	if _, err := in.Call(context.Background(), "add1", nil); !errors.Is(err, ErrDead) {
		t.Fatalf("after a timeout: %v, want ErrDead", err)
	}
}

func TestCancelStopsALoopingGuest(t *testing.T) {
	m := compile(t, spinModule(), time.Hour)
	in := instance(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := in.Call(ctx, "spin", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("spin: %v, want context.Canceled", err)
	}
}

func TestInstrumentedModuleKeepsItsBehaviour(t *testing.T) {
	m := compile(t, spinModule(), time.Second)
	in := instance(t, m)
	for _, fn := range []string{"direct", "indirect"} {
		if _, err := in.Call(context.Background(), fn, nil); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
	}
}

// TestDeadlineWithOneProcessor: a goroutine spinning in compiled guest
// code cannot be preempted, so with one P nothing else runs, the call's
// timer included; the deadline must still end the call.
func TestDeadlineWithOneProcessor(t *testing.T) {
	m := compile(t, spinModule(), 100*time.Millisecond)
	in := instance(t, m)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if _, err := in.Call(context.Background(), "spin", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("spin: %v, want a timeout", err)
	}
}

func TestInstrumentLoopsPlacesTheCheck(t *testing.T) {
	out, err := instrumentLoops(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	// One global before: the budget is global 1; no imports before:
	// sw_tick is function 0.
	want := []byte{0x03, 0x40, 0x23, 0x01, 0x41, 0x01, 0x6b, 0x24, 0x01, 0x23, 0x01, 0x45, 0x04, 0x40, 0x10, 0x00, 0x24, 0x01, 0x0b, 0x0c, 0x00, 0x0b}
	if !bytes.Contains(out, want) {
		t.Fatalf("no check after the loop in % x", out)
	}
	if !bytes.Contains(out, []byte(tickImport)) {
		t.Fatal("sw_tick is not imported")
	}
	if bytes.Contains(out, []byte("name")) {
		t.Fatal("the name section, whose indices moved, was kept")
	}
}

func TestInstrumentLoopsRefusesAGuestReachingTheBudget(t *testing.T) {
	// global.set 1 names the global the instrumenter adds; the module as
	// written is invalid and must not be made valid by the rewrite.
	body := []byte{0x00, 0x41, 0x01, 0x24, 0x01, 0x41, 0x00, 0x0b}
	_, err := instrumentLoops(spinModule(body...))
	if err == nil || errors.Is(err, errUnsupported) {
		t.Fatalf("err = %v, want a malformed-module error", err)
	}
	e, _ := NewEngine("", nil)
	defer e.Close(context.Background())
	if _, err := e.Compile(context.Background(), spinModule(body...), Limits{MemoryPages: 16, KernelBytes: 1 << 20, CallTimeout: time.Second}); err == nil {
		t.Fatal("Compile accepted a module that writes the budget")
	}
}

func TestInstrumentLoopsFallsBackOnUnknownInstructions(t *testing.T) {
	body := []byte{0x00, 0xfb, 0x00, 0x41, 0x00, 0x0b} // a GC-proposal opcode
	if _, err := instrumentLoops(spinModule(body...)); !errors.Is(err, errUnsupported) {
		t.Fatalf("err = %v, want errUnsupported", err)
	}
	if _, err := instrumentLoops([]byte("not wasm")); !errors.Is(err, errUnsupported) {
		t.Fatalf("err = %v, want errUnsupported for a non-module", err)
	}
}

func TestInstrumentLoopsAddsMissingSections(t *testing.T) {
	// No import or global section: both are created in their place.
	code := module(
		sec(1, 0x01, 0x60, 0x00, 0x00),
		sec(3, 0x01, 0x00),
		sec(10, 0x01, 0x05, 0x00, 0x03, 0x40, 0x0b, 0x0b),
	)
	if m := compile(t, code, time.Second); !m.interruptible {
		t.Fatal("the module was not instrumented")
	}
}

// TestRealGuestsAreInstrumented: the guests plugin authors build (Go with
// the SDK; C and AssemblyScript examples when `make examples` built them)
// decode completely, so they run without wazero's loop checks.
func TestRealGuestsAreInstrumented(t *testing.T) {
	code := guesttest.Build(t, "plugins/ghost-score")
	if _, err := instrumentLoops(code); err != nil {
		t.Fatalf("Go guest: %v", err)
	}
	for _, ex := range []string{"c-raid-alert", "assemblyscript-keyword-alert"} {
		code, err := os.ReadFile(filepath.Join(guesttest.ModuleRoot(), "examples", ex, "plugin.wasm"))
		if err != nil {
			t.Logf("%s: not built (make examples), not checked", ex)
			continue
		}
		if _, err := instrumentLoops(code); err != nil {
			t.Errorf("%s: %v", ex, err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	guesttest.Cleanup()
	os.Exit(code)
}
