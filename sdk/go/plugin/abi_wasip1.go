//go:build wasip1

package plugin

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"unsafe"
)

// A hook call allocates, then drops everything; the default GC target
// (100%) collected several times per score batch, and the collector,
// single-threaded in WebAssembly, cost more than the scoring. A higher
// target trades a few MiB of an instance's memory for that time.
func init() { debug.SetGCPercent(400) }

// The guest side of the Extism ABI, for GOOS=wasip1 builds. Data moves with
// the host's sw_load/sw_store bulk copies rather than Extism's word-at-a-time
// loads and stores.

//go:wasmimport extism:host/env input_offset
func extismInputOffset() uint64

//go:wasmimport extism:host/env length
func extismLength(off uint64) uint64

//go:wasmimport extism:host/env output_set
func extismOutputSet(off, n uint64)

//go:wasmimport extism:host/env error_set
func extismErrorSet(off uint64)

//go:wasmimport extism:host/env config_get
func extismConfigGet(off uint64) uint64

//go:wasmimport extism:host/user sw_load
func swLoad(off uint64, dst unsafe.Pointer)

//go:wasmimport extism:host/user sw_store
func swStore(src unsafe.Pointer, n uint32) uint64

//go:wasmimport extism:host/user kv_get
func hostKVGet(uint64) uint64

//go:wasmimport extism:host/user kv_set
func hostKVSet(uint64) uint64

//go:wasmimport extism:host/user kv_delete
func hostKVDelete(uint64) uint64

//go:wasmimport extism:host/user kv_list
func hostKVList(uint64) uint64

//go:wasmimport extism:host/user log
func hostLog(uint64) uint64

//go:wasmimport extism:host/user metric
func hostMetric(uint64) uint64

//go:wasmimport extism:host/user member_get
func hostMemberGet(uint64) uint64

//go:wasmimport extism:host/user activity_get
func hostActivityGet(uint64) uint64

//go:wasmimport extism:host/user emit
func hostEmit(uint64) uint64

//go:wasmimport extism:host/user http_fetch
func hostHTTPFetch(uint64) uint64

func store(b []byte) uint64 {
	return swStore(unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
}

func load(off uint64) []byte {
	if off == 0 {
		return nil
	}
	b := make([]byte, extismLength(off))
	if len(b) > 0 {
		swLoad(off, unsafe.Pointer(&b[0]))
	}
	return b
}

// inputBuf holds hook input between calls. An instance serves one call at a
// time, and reusing the buffer spares clearing a fresh one, which inside a
// sandbox costs a host check every 8 bytes.
var inputBuf []byte

func loadInput(off uint64) []byte {
	n := int(extismLength(off))
	if cap(inputBuf) < n {
		inputBuf = make([]byte, n, n+n/4)
	}
	b := inputBuf[:n]
	if n > 0 {
		swLoad(off, unsafe.Pointer(&b[0]))
	}
	return b
}

type wasmHost struct{}

func (wasmHost) Call(fn string, req []byte) ([]byte, error) {
	in := store(req)
	if in == 0 {
		return nil, errors.New("request too large for kernel memory")
	}
	var out uint64
	switch fn {
	case "kv_get":
		out = hostKVGet(in)
	case "kv_set":
		out = hostKVSet(in)
	case "kv_delete":
		out = hostKVDelete(in)
	case "kv_list":
		out = hostKVList(in)
	case "log":
		out = hostLog(in)
	case "metric":
		out = hostMetric(in)
	case "member_get":
		out = hostMemberGet(in)
	case "activity_get":
		out = hostActivityGet(in)
	case "emit":
		out = hostEmit(in)
	case "http_fetch":
		out = hostHTTPFetch(in)
	default:
		return nil, fmt.Errorf("unknown host function %q", fn)
	}
	if out == 0 {
		return nil, errors.New("response too large for kernel memory")
	}
	return load(out), nil
}

func (wasmHost) Config(key string) (string, bool) {
	off := extismConfigGet(store([]byte(key)))
	if off == 0 {
		return "", false
	}
	return string(load(off)), true
}

// run serves one hook call. A panicking handler is reported as an error so
// that the instance stays usable.
func run(hook string) (rc int32) {
	defer func() {
		if v := recover(); v != nil {
			extismErrorSet(store([]byte(fmt.Sprintf("panic in %s: %v", hook, v))))
			rc = 1
		}
	}()
	out, err := Serve(wasmHost{}, hook, loadInput(extismInputOffset()))
	if err != nil {
		extismErrorSet(store([]byte(err.Error())))
		return 1
	}
	if len(out) > 0 {
		off := store(out)
		if off == 0 {
			extismErrorSet(store([]byte(fmt.Sprintf("output of %d bytes exceeds the host's kernel memory limit", len(out)))))
			return 1
		}
		extismOutputSet(off, uint64(len(out)))
	}
	return 0
}

// exportHooks tells the host which hooks have a handler, so that installing
// a manifest that promises more fails instead of every call later.
//
//go:wasmexport sw_hooks
func exportHooks() int32 {
	out := []byte(`[` + strings.Join(quoted(Offered()), ",") + `]`)
	extismOutputSet(store(out), uint64(len(out)))
	return 0
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = `"` + s + `"`
	}
	return out
}

//go:wasmexport on_events
func exportOnEvents() int32 { return run(HookEvents) }

//go:wasmexport score
func exportScore() int32 { return run(HookScore) }

//go:wasmexport http
func exportHTTP() int32 { return run(HookHTTP) }

//go:wasmexport tick
func exportTick() int32 { return run(HookTick) }

//go:wasmexport delete_user
func exportDeleteUser() int32 { return run(HookDeleteUser) }
