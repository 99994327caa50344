package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The Extism kernel ABI, host side.
//
// Extism guests exchange data with the host through "kernel memory": blocks
// addressed by 64-bit offsets, allocated with alloc and read and written a
// byte or a word at a time. The reference runtime keeps that memory in a
// second WebAssembly module, so every one of those calls crosses into wasm
// and back; here the kernel memory is a Go byte slice per instance, which
// keeps each call a few bounds checks. Guests built with any Extism PDK link
// against these imports unchanged.
//
// Two Spywatcher extensions make bulk transfers cheap for SDKs that can
// address their own linear memory: sw_load copies a whole kernel block into
// guest memory and sw_store copies guest memory into a new kernel block.

const envModule = "extism:host/env"

// kernel is the per-instance kernel memory and call state.
type kernel struct {
	mem    []byte            // the arena; offset 0 is never handed out, so 0 means "none"
	blocks map[uint64]uint64 // offset of each live block -> its length
	max    int               // arena size limit

	inOff, inLen   uint64
	outOff, outLen uint64
	errOff         uint64

	config map[string]string
	vars   map[string][]byte
	log    *slog.Logger
}

func newKernel(max int, config map[string]string, log *slog.Logger) *kernel {
	return &kernel{mem: make([]byte, 8, 4096), blocks: map[uint64]uint64{}, max: max, config: config,
		vars: map[string][]byte{}, log: log}
}

// reset frees every block; Extism resets kernel memory before each call.
func (k *kernel) reset() {
	k.mem = k.mem[:8]
	clear(k.blocks)
	k.inOff, k.inLen, k.outOff, k.outLen, k.errOff = 0, 0, 0, 0, 0
}

// alloc returns the offset of a new block of n bytes, or 0 when the arena
// limit is reached. Blocks are 8-byte aligned so word access stays aligned.
func (k *kernel) alloc(n uint64) uint64 {
	off := uint64(len(k.mem))
	off = (off + 7) &^ 7
	end := off + n
	if n == 0 {
		end = off + 1 // a zero-length block still needs a distinct offset
	}
	if end > uint64(k.max) {
		return 0
	}
	if end > uint64(cap(k.mem)) {
		grown := make([]byte, end, max(end, uint64(cap(k.mem))*2))
		copy(grown, k.mem)
		k.mem = grown
	} else {
		k.mem = k.mem[:end]
	}
	clear(k.mem[off:end])
	k.blocks[off] = n
	return off
}

// bytes returns the block at off, or nil for an offset that is not a block.
func (k *kernel) bytes(off uint64) []byte {
	n, ok := k.blocks[off]
	if !ok {
		return nil
	}
	return k.mem[off : off+n]
}

// put copies b into a new block and returns its offset (0 if it does not fit).
func (k *kernel) put(b []byte) uint64 {
	off := k.alloc(uint64(len(b)))
	if off != 0 {
		copy(k.mem[off:], b)
	}
	return off
}

// in reports whether [off, off+n) lies inside the arena.
func (k *kernel) in(off, n uint64) bool {
	return off >= 8 && off+n >= off && off+n <= uint64(len(k.mem))
}

type kernelKey struct{}

func kernelFrom(ctx context.Context) *kernel {
	k, _ := ctx.Value(kernelKey{}).(*kernel)
	if k == nil {
		// Only reachable if a guest calls an import outside Instance.Call.
		panic("wasm: kernel call outside a plugin call")
	}
	return k
}

// trap aborts the guest call with an error; wazero turns the panic into the
// call's error and the instance is then discarded by its owner.
func trap(format string, args ...any) {
	panic(fmt.Errorf("wasm: "+format, args...))
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// fn adds a host function that needs only the kernel.
func fn(b wazero.HostModuleBuilder, name string, params, results []api.ValueType, f func(k *kernel, stack []uint64)) {
	b.NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) { f(kernelFrom(ctx), stack) }), params, results).
		Export(name)
}

// instantiateKernel defines the extism:host/env module in rt.
func instantiateKernel(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(envModule)

	fn(b, "alloc", []api.ValueType{i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		s[0] = k.alloc(s[0])
	})
	fn(b, "free", []api.ValueType{i64}, nil, func(k *kernel, s []uint64) {
		// Blocks live until the call ends; freeing early only forgets them.
		delete(k.blocks, s[0])
	})
	fn(b, "length", []api.ValueType{i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		s[0] = k.blocks[s[0]]
	})
	fn(b, "length_unsafe", []api.ValueType{i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		s[0] = k.blocks[s[0]]
	})
	fn(b, "load_u8", []api.ValueType{i64}, []api.ValueType{i32}, func(k *kernel, s []uint64) {
		if !k.in(s[0], 1) {
			trap("load_u8 out of bounds at %d", s[0])
		}
		s[0] = uint64(k.mem[s[0]])
	})
	fn(b, "load_u64", []api.ValueType{i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		if !k.in(s[0], 8) {
			trap("load_u64 out of bounds at %d", s[0])
		}
		s[0] = binary.LittleEndian.Uint64(k.mem[s[0]:])
	})
	fn(b, "store_u8", []api.ValueType{i64, i32}, nil, func(k *kernel, s []uint64) {
		if !k.in(s[0], 1) {
			trap("store_u8 out of bounds at %d", s[0])
		}
		k.mem[s[0]] = byte(s[1])
	})
	fn(b, "store_u64", []api.ValueType{i64, i64}, nil, func(k *kernel, s []uint64) {
		if !k.in(s[0], 8) {
			trap("store_u64 out of bounds at %d", s[0])
		}
		binary.LittleEndian.PutUint64(k.mem[s[0]:], s[1])
	})
	fn(b, "input_length", nil, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		s[0] = k.inLen
	})
	fn(b, "input_offset", nil, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		s[0] = k.inOff
	})
	fn(b, "input_load_u8", []api.ValueType{i64}, []api.ValueType{i32}, func(k *kernel, s []uint64) {
		if s[0] >= k.inLen {
			trap("input_load_u8 past the input at %d", s[0])
		}
		s[0] = uint64(k.mem[k.inOff+s[0]])
	})
	fn(b, "input_load_u64", []api.ValueType{i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		if s[0]+8 > k.inLen || s[0]+8 < s[0] {
			trap("input_load_u64 past the input at %d", s[0])
		}
		s[0] = binary.LittleEndian.Uint64(k.mem[k.inOff+s[0]:])
	})
	fn(b, "output_set", []api.ValueType{i64, i64}, nil, func(k *kernel, s []uint64) {
		if s[0] == 0 && s[1] > 0 {
			trap("output of %d bytes exceeds the kernel memory limit", s[1])
		}
		if !k.in(s[0], s[1]) {
			trap("output_set outside kernel memory")
		}
		k.outOff, k.outLen = s[0], s[1]
	})
	fn(b, "error_set", []api.ValueType{i64}, nil, func(k *kernel, s []uint64) {
		k.errOff = s[0]
	})
	fn(b, "error_get", nil, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		s[0] = k.errOff
	})
	fn(b, "config_get", []api.ValueType{i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		v, ok := k.config[string(k.bytes(s[0]))]
		if !ok {
			s[0] = 0
			return
		}
		s[0] = k.put([]byte(v))
	})
	fn(b, "var_get", []api.ValueType{i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		v, ok := k.vars[string(k.bytes(s[0]))]
		if !ok {
			s[0] = 0
			return
		}
		s[0] = k.put(v)
	})
	fn(b, "var_set", []api.ValueType{i64, i64}, nil, func(k *kernel, s []uint64) {
		name := string(k.bytes(s[0]))
		if s[1] == 0 {
			delete(k.vars, name)
			return
		}
		total := len(name)
		for n, v := range k.vars {
			total += len(n) + len(v)
		}
		v := k.bytes(s[1])
		if total+len(v) > maxVarBytes {
			trap("var_set: plugin variables over %d bytes", maxVarBytes)
		}
		k.vars[name] = append([]byte(nil), v...)
	})
	// Extism's own HTTP client is deliberately not offered: it checks only
	// the first URL's host, follows redirects unchecked and reaches private
	// addresses. Plugins use the http_fetch host function instead.
	fn(b, "http_request", []api.ValueType{i64, i64}, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		trap("http_request is not available in Spywatcher; call the host function http_fetch (see PLUGINS.md)")
	})
	fn(b, "http_status_code", nil, []api.ValueType{i32}, func(k *kernel, s []uint64) { s[0] = 0 })
	fn(b, "http_headers", nil, []api.ValueType{i64}, func(k *kernel, s []uint64) { s[0] = 0 })
	for name, level := range map[string]slog.Level{
		"log_trace": slog.LevelDebug - 4, "log_debug": slog.LevelDebug, "log_info": slog.LevelInfo,
		"log_warn": slog.LevelWarn, "log_error": slog.LevelError,
	} {
		fn(b, name, []api.ValueType{i64}, nil, func(k *kernel, s []uint64) {
			k.log.Log(context.Background(), level, string(k.bytes(s[0])))
		})
	}
	fn(b, "get_log_level", nil, []api.ValueType{i32}, func(k *kernel, s []uint64) {
		s[0] = 1 // debug: the host's logger filters and rate-limits
	})
	fn(b, "memory_bytes", nil, []api.ValueType{i64}, func(k *kernel, s []uint64) {
		s[0] = uint64(len(k.mem))
	})
	fn(b, "reset", nil, nil, func(k *kernel, s []uint64) { k.reset() })

	_, err := b.Instantiate(ctx)
	return err
}

// maxVarBytes bounds Extism plugin variables per instance.
const maxVarBytes = 1 << 20
