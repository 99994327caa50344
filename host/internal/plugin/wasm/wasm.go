// Package wasm runs WebAssembly plugins on wazero, speaking the Extism ABI.
//
// It does not use the Extism Go SDK. That SDK keeps Extism's kernel in a
// second wasm module and gives host functions no access to the guest's own
// memory, so every byte a plugin reads or writes crosses into wasm and back
// several times. Measured on this project's machine with a Go guest and a
// call timeout set (which a sandbox must have): an empty call cost 8 µs
// through the SDK and 0.7 µs here; passing a 30 KB batch in and out cost
// 3.1 ms through the SDK and 1.8 µs here (BENCHMARKS.md). The kernel ABI is
// implemented in Go in kernel.go, so guests built with any Extism PDK run
// unchanged.
//
// Sandbox: each compiled plugin gets its own wazero runtime with a memory
// page limit, calls are interrupted at their deadline (the runtime closes
// the instance), WASI is offered without filesystem, sockets, environment or
// arguments, and host functions are the only way out.
package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// UserModule is the import module of host functions, as Extism names it.
const UserModule = "extism:host/user"

// HostFunc serves one host function: the guest passes a request as a kernel
// block and receives the response the same way. A host function reports
// problems inside its response; a panic aborts the guest's call.
type HostFunc func(ctx context.Context, request []byte) (response []byte)

// Engine compiles plugins. It holds the compilation cache shared by every
// plugin and the host functions offered to them.
type Engine struct {
	cache wazero.CompilationCache
	funcs map[string]HostFunc
}

// NewEngine returns an engine caching compiled code in cacheDir ("" keeps
// the cache in memory only).
func NewEngine(cacheDir string, funcs map[string]HostFunc) (*Engine, error) {
	var cache wazero.CompilationCache
	if cacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache in %s: %w", cacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	return &Engine{cache: cache, funcs: funcs}, nil
}

// Close releases the compilation cache.
func (e *Engine) Close(ctx context.Context) error { return e.cache.Close(ctx) }

// Limits bound one plugin.
type Limits struct {
	MemoryPages uint32        // guest linear memory, 64 KiB pages
	KernelBytes int           // Extism kernel memory per instance
	CallTimeout time.Duration // longest a call may run
}

// Module is a compiled plugin, ready to be instantiated many times.
type Module struct {
	rt      wazero.Runtime
	cm      wazero.CompiledModule
	limits  Limits
	exports map[string]bool
	n       atomic.Int64
	// interruptible: the module was instrumented (interrupt.go), so
	// deadlines need not wazero's loop checks.
	interruptible bool
}

// Compile validates and compiles a plugin's code. The returned error
// explains a module that cannot run here (a missing import, say).
func (e *Engine) Compile(ctx context.Context, code []byte, limits Limits) (*Module, error) {
	if limits.MemoryPages == 0 || limits.KernelBytes <= 0 || limits.CallTimeout <= 0 {
		return nil, errors.New("wasm: limits must all be set")
	}
	// Deadlines: through the instrumented loops' sw_tick when the module
	// can be rewritten (interrupt.go), through wazero's loop checks if not.
	interruptible := true
	if inst, err := instrumentLoops(code); err == nil {
		code = inst
	} else if errors.Is(err, errUnsupported) {
		interruptible = false
	} else {
		return nil, fmt.Errorf("wasm: not a valid WebAssembly module: %w", err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(e.cache).
		WithCloseOnContextDone(!interruptible).
		WithMemoryLimitPages(limits.MemoryPages))
	fail := func(err error) (*Module, error) {
		rt.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(fmt.Errorf("wasm: wasi: %w", err))
	}
	if err := instantiateKernel(ctx, rt); err != nil {
		return fail(fmt.Errorf("wasm: kernel: %w", err))
	}
	if err := e.instantiateUser(ctx, rt); err != nil {
		return fail(fmt.Errorf("wasm: host functions: %w", err))
	}
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		return fail(fmt.Errorf("wasm: not a valid WebAssembly module: %w", err))
	}
	offered := map[string]map[string]bool{
		wasi_snapshot_preview1.ModuleName: nil, // any WASI function; wazero rejects unknown ones below
		envModule:                         nil,
		UserModule:                        nil,
	}
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		if _, ok := offered[mod]; !ok {
			return fail(fmt.Errorf("wasm: the module imports %s.%s; only WASI, %s and %s are offered", mod, name, envModule, UserModule))
		}
		if mod == UserModule {
			if _, ok := e.funcs[name]; !ok && name != "sw_load" && name != "sw_store" && name != tickImport {
				return fail(fmt.Errorf("wasm: the module imports the host function %q, which does not exist (see PLUGINS.md)", name))
			}
		}
	}
	exports := map[string]bool{}
	for name := range cm.ExportedFunctions() {
		exports[name] = true
	}
	m := &Module{rt: rt, cm: cm, limits: limits, exports: exports, interruptible: interruptible}
	// Instantiating once proves that every import resolves and that the
	// module initialises within its limits.
	in, err := m.Instantiate(ctx, nil, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		return fail(err)
	}
	in.Close(ctx)
	return m, nil
}

// Exports reports whether the module exports a function named name.
func (m *Module) Exports(name string) bool { return m.exports[name] }

// Close releases the module and every instance of it.
func (m *Module) Close(ctx context.Context) error { return m.rt.Close(ctx) }

// Instance is one instantiation of a module with its own memory. It serves
// one call at a time.
type Instance struct {
	mod    api.Module
	k      *kernel
	limits Limits
	dead   bool
	// interruptible: the module's loops call sw_tick (interrupt.go).
	interruptible bool
}

// Instantiate creates an instance whose Extism config is config and whose
// logs and WASI output go to log and output.
func (m *Module) Instantiate(ctx context.Context, config map[string]string, log *slog.Logger, output io.Writer) (*Instance, error) {
	k := newKernel(m.limits.KernelBytes, config, log)
	cfg := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("plugin-%d", m.n.Add(1))).
		WithStartFunctions(). // _initialize runs below, under a deadline
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdout(output).WithStderr(output)
	ictx, cancel := context.WithTimeout(context.WithValue(ctx, kernelKey{}, k), m.limits.CallTimeout)
	defer cancel()
	mod, err := m.rt.InstantiateModule(ictx, m.cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("wasm: instantiate: %w", explain(err))
	}
	in := &Instance{mod: mod, k: k, limits: m.limits, interruptible: m.interruptible}
	if init := mod.ExportedFunction("_initialize"); init != nil {
		if _, err := in.run(ictx, init); err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("wasm: initialise: %w", explain(err))
		}
	}
	return in, nil
}

// ErrDead is returned by Call on an instance that trapped, timed out or was
// closed; such an instance must be discarded.
var ErrDead = errors.New("wasm: instance no longer usable")

// GuestError is an error the plugin reported itself (Extism error_set or a
// non-zero return code), as opposed to a trap or a timeout.
type GuestError struct {
	Code    uint32
	Message string
}

func (e *GuestError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("plugin returned code %d", e.Code)
	}
	return "plugin error: " + e.Message
}

// Call runs export fn with input and returns what the guest set as output.
// A *GuestError leaves the instance usable; any other error (trap, timeout,
// memory limit) kills it.
func (in *Instance) Call(ctx context.Context, fn string, input []byte) ([]byte, error) {
	if in.dead || in.mod.IsClosed() {
		return nil, ErrDead
	}
	f := in.mod.ExportedFunction(fn)
	if f == nil {
		return nil, fmt.Errorf("wasm: the plugin does not export %q", fn)
	}
	k := in.k
	k.reset()
	if k.inOff = k.put(input); k.inOff == 0 {
		return nil, fmt.Errorf("wasm: input of %d bytes exceeds the kernel memory limit", len(input))
	}
	k.inLen = uint64(len(input))
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, kernelKey{}, k), in.limits.CallTimeout)
	defer cancel()
	res, err := in.run(cctx, f)
	if err != nil {
		in.dead = true
		var exit *sys.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 0 {
			// A guest that exits cleanly is finished; its instance is not reusable.
			return nil, fmt.Errorf("wasm: the plugin exited during %s", fn)
		}
		return nil, fmt.Errorf("wasm: %s: %w", fn, explain(err))
	}
	var rc uint32
	if len(res) > 0 {
		rc = uint32(res[0])
	}
	if k.errOff != 0 || rc != 0 {
		return nil, &GuestError{Code: rc, Message: string(k.bytes(k.errOff))}
	}
	if k.outOff == 0 {
		return nil, nil
	}
	return append([]byte(nil), k.mem[k.outOff:k.outOff+k.outLen]...), nil
}

// run calls f under ctx. An instrumented module's sw_tick ends the call
// once ctx is done; the error then names ctx's.
func (in *Instance) run(ctx context.Context, f api.Function) ([]uint64, error) {
	res, err := f.Call(ctx)
	if err != nil && in.interruptible {
		if cerr := callOver(ctx); cerr != nil {
			return nil, fmt.Errorf("%w (%v)", cerr, firstLine(err.Error()))
		}
	}
	return res, err
}

// callOver reports whether a call under ctx must stop: ctx is cancelled or
// its deadline has passed. It reads the clock rather than waiting for ctx's
// timer, which may sit on the P of the very goroutine running the guest.
func callOver(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// tick is sw_tick, which instrumented loops call every tickBudget
// iterations: it stops a call that is over, lets the goroutine's P run
// others, and hands out the next budget.
func tick(ctx context.Context, stack []uint64) {
	if err := callOver(ctx); err != nil {
		panic(err)
	}
	runtime.Gosched()
	stack[0] = tickBudget
}

// MemoryBytes is what the instance holds now: linear memory plus kernel memory.
func (in *Instance) MemoryBytes() int64 {
	return int64(in.mod.Memory().Size()) + int64(cap(in.k.mem))
}

// Close releases the instance.
func (in *Instance) Close(ctx context.Context) error {
	in.dead = true
	return in.mod.Close(ctx)
}

// explain turns wazero's errors into sentences a plugin author can act on.
func explain(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "context deadline exceeded"):
		return fmt.Errorf("call timed out (%w)", context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("call cancelled (%w)", context.Canceled)
	case strings.Contains(msg, "out of bounds memory access"), strings.Contains(msg, "memory"):
		return fmt.Errorf("memory limit or out-of-bounds access: %s", firstLine(msg))
	}
	return errors.New(firstLine(msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// instantiateUser defines the host functions and the bulk-copy helpers.
func (e *Engine) instantiateUser(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(UserModule)
	// sw_load(block i64, dst i32): copy a kernel block into guest memory.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, s []uint64) {
		k := kernelFrom(ctx)
		data := k.bytes(s[0])
		if !mod.Memory().Write(uint32(s[1]), data) {
			trap("sw_load: destination outside guest memory")
		}
	}), []api.ValueType{i64, i32}, nil).Export("sw_load")
	// sw_store(src i32, n i32) -> i64: copy guest memory into a new kernel block.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, s []uint64) {
		k := kernelFrom(ctx)
		data, ok := mod.Memory().Read(uint32(s[0]), uint32(s[1]))
		if !ok {
			trap("sw_store: source outside guest memory")
		}
		s[0] = k.put(data)
	}), []api.ValueType{i32, i32}, []api.ValueType{i64}).Export("sw_store")
	b.NewFunctionBuilder().WithGoFunction(api.GoFunc(tick), nil, []api.ValueType{i32}).Export(tickImport)
	for name, f := range e.funcs {
		b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(ctx context.Context, s []uint64) {
			k := kernelFrom(ctx)
			out := f(ctx, k.bytes(s[0]))
			s[0] = k.put(out)
		}), []api.ValueType{i64}, []api.ValueType{i64}).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}
