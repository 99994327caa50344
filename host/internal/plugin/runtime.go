package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spywatcher/spywatcher/host/internal/plugin/process"
	"github.com/spywatcher/spywatcher/host/internal/plugin/wasm"
)

// Runtimes a manifest can name.
const (
	RuntimeWasm    = "wasm"    // sandboxed WebAssembly (package wasm)
	RuntimeProcess = "process" // a native process over go-plugin (package process)
)

// module is an installed plugin version as a runtime loaded it. The pool,
// dispatch and fault accounting only see this and instance, so they work
// the same for both runtimes.
type module interface {
	instantiate(ctx context.Context, o instanceOptions) (instance, error)
	// hooks lists the hooks the code has handlers for (checked at install).
	hooks(ctx context.Context) ([]string, error)
	Close(ctx context.Context) error
}

type instanceOptions struct {
	config  map[string]string
	log     *slog.Logger
	output  io.Writer
	onCrash func(error) // a process died between calls
}

// instance serves one call at a time.
type instance interface {
	Call(ctx context.Context, fn string, input []byte) ([]byte, error)
	MemoryBytes() int64
	Close(ctx context.Context) error
}

var (
	_ module   = wasmModule{}
	_ module   = processModule{}
	_ instance = (*wasm.Instance)(nil)
	_ instance = (*process.Instance)(nil)
)

// reusable reports whether inst may serve another call after err: after its
// own reported error, yes; after a trap or timeout a WebAssembly instance is
// spent, while a process instance restarts its process by itself.
func reusable(inst instance, err error) bool {
	if err == nil || isGuestError(err) {
		return true
	}
	if r, ok := inst.(interface{ Reusable(error) bool }); ok {
		return r.Reusable(err)
	}
	return false
}

func isGuestError(err error) bool {
	var we *wasm.GuestError
	var pe *process.GuestError
	return errors.As(err, &we) || errors.As(err, &pe)
}

// wasmModule adapts a compiled WebAssembly module.
type wasmModule struct{ mod *wasm.Module }

func (w wasmModule) instantiate(ctx context.Context, o instanceOptions) (instance, error) {
	return w.mod.Instantiate(ctx, o.config, o.log, o.output)
}

// hooks asks an SDK-built module which hooks it has handlers for; a module
// built otherwise offers what it exports.
func (w wasmModule) hooks(ctx context.Context) ([]string, error) {
	if !w.mod.Exports("sw_hooks") {
		var out []string
		for _, h := range []string{HookEvents, HookScore, HookHTTP, HookTick, HookDeleteUser} {
			if w.mod.Exports(h) {
				out = append(out, h)
			}
		}
		return out, nil
	}
	return offeredHooks(ctx, w.mod)
}

func (w wasmModule) Close(ctx context.Context) error { return w.mod.Close(ctx) }

// processModule adapts a process plugin.
type processModule struct {
	mod *process.Module
	log *slog.Logger
}

func (p processModule) instantiate(ctx context.Context, o instanceOptions) (instance, error) {
	return p.mod.Instantiate(ctx, process.InstanceOptions{Config: o.config, Log: o.log, Output: o.output, OnCrash: o.onCrash})
}

func (p processModule) hooks(ctx context.Context) ([]string, error) { return p.mod.Hooks(ctx, p.log) }

func (p processModule) Close(ctx context.Context) error { return p.mod.Close(ctx) }

// loadModule loads code for m: compiles WebAssembly, or checks a process
// plugin's executable at path (which must hold code).
func (h *Host) loadModule(ctx context.Context, m *Manifest, code []byte, path string) (module, error) {
	switch m.Runtime {
	case RuntimeProcess:
		mod, err := h.procs.Load(path, m.Artifact.SHA256, m.Timeout())
		if err != nil {
			return nil, err
		}
		return processModule{mod: mod, log: h.log.With("plugin", m.ID)}, nil
	case RuntimeWasm:
		mod, err := h.engine.Compile(ctx, code, limitsOf(m))
		if err != nil {
			return nil, err
		}
		return wasmModule{mod: mod}, nil
	}
	return nil, fmt.Errorf("plugin: unknown runtime %q", m.Runtime)
}
