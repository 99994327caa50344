package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	"github.com/spywatcher/spywatcher/host/internal/plugin/process"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/wire"
)

// The same plugin three ways: native Go in the host's process (the SDK's
// Serve called directly, no runtime boundary), WebAssembly, and a process
// plugin. nativeBench is testdata/guests/bench's handler.
type nativeBench struct {
	kinds map[string]int
	users map[uint64]int
}

func (b *nativeBench) OnEvents(ctx *sdk.Context, events []sdk.Event) error {
	_ = ctx.ConfigString("mode", "") // as the guest does
	for i := range events {
		b.kinds[string(events[i].Kind())]++
		b.users[events[i].User()]++
	}
	return nil
}

func (b *nativeBench) ServeHTTP(ctx *sdk.Context, req *sdk.Request) (*sdk.Response, error) {
	return &sdk.Response{Status: 200}, nil
}

var registerNative = sync.OnceFunc(func() {
	b := &nativeBench{kinds: map[string]int{}, users: map[uint64]int{}}
	sdk.Register(sdk.Plugin{Events: b, HTTP: b})
})

// nativeHost is the host side of a native call: configuration only.
type nativeHost map[string]string

func (h nativeHost) Call(string, []byte) ([]byte, error) { return []byte(`{"result":{}}`), nil }
func (h nativeHost) Config(k string) (string, bool)      { v, ok := h[k]; return v, ok }

// runtimeCaller returns a function calling hook with input in the given
// runtime, after warming it up, and the host (nil for native).
func runtimeCaller(b *testing.B, rt string) (func(hook string, in []byte), *Host) {
	ctx := context.Background()
	if rt == "native" {
		registerNative()
		h := nativeHost(instanceConfig("bench", guildA, "{}", ""))
		return func(hook string, in []byte) {
			if _, err := sdk.Serve(h, hook, in); err != nil {
				b.Fatal(err)
			}
		}, nil
	}
	f := newFixture(b)
	mutate := func(m *Manifest) {
		m.Hooks = []string{HookEvents, HookHTTP}
		m.Events = []event.Kind{event.KindPresenceUpdate, event.KindMessageCreate}
		m.EventEncoding = wire.EncodingBinary
		m.ConfigSchema = nil
		m.Limits = Limits{BatchEvents: 4096}
	}
	var opts []EnableOption
	if rt == RuntimeProcess {
		f.installProcess("bench", "1.0.0", "bench", mutate)
		opts = append(opts, TrustProcess(true))
	} else {
		code := guest(b, "bench")
		if _, err := f.h.Install(ctx, manifest(b, "bench", "1.0.0", code, mutate), code); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.h.GrantAll(ctx, "bench", guildA, "admin"); err != nil {
		b.Fatal(err)
	}
	if err := f.h.SetEnabled(ctx, "bench", guildA, true, opts...); err != nil {
		b.Fatal(err)
	}
	call := func(hook string, in []byte) {
		if _, err := f.h.call(ctx, "bench", guildA, hook, in); err != nil {
			b.Fatal(err)
		}
	}
	call(HookHTTP, []byte(`{"method":"GET","path":"/ping"}`))
	return call, f.h
}

var runtimes = []string{"native", RuntimeWasm, RuntimeProcess}

// BenchmarkRuntimeHookCall is the round trip of one hook call — on_events
// with one event, and http with a tiny request — in each runtime, with its
// median and 99th percentile.
func BenchmarkRuntimeHookCall(b *testing.B) {
	m := &Manifest{EventEncoding: wire.EncodingBinary}
	for _, rt := range runtimes {
		for _, hook := range []string{HookEvents, HookHTTP} {
			b.Run(rt+"/"+hook, func(b *testing.B) {
				call, _ := runtimeCaller(b, rt)
				in := []byte(`{"method":"GET","path":"/ping"}`)
				evs := benchEvents(1)
				ds := make([]time.Duration, 0, 1<<16)
				for b.Loop() {
					t := time.Now()
					if hook == HookEvents {
						in, _ = encodeBatch(m, guildA, evs, false)
					}
					call(hook, in)
					ds = append(ds, time.Since(t))
				}
				slices.Sort(ds)
				b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds())/1000, "p50_µs")
				b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds())/1000, "p99_µs")
			})
		}
	}
}

// BenchmarkRuntimePerEvent is the amortised cost of one event delivered in
// batches of 256 — encoding, the call, the plugin decoding and counting
// every event — in each runtime.
func BenchmarkRuntimePerEvent(b *testing.B) {
	m := &Manifest{EventEncoding: wire.EncodingBinary}
	for _, rt := range runtimes {
		b.Run(rt, func(b *testing.B) {
			call, h := runtimeCaller(b, rt)
			evs := benchEvents(256)
			for b.Loop() {
				in, err := encodeBatch(m, guildA, evs, false)
				if err != nil {
					b.Fatal(err)
				}
				call(HookEvents, in)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
			if h != nil {
				// Linear and kernel memory of a WebAssembly instance; the
				// resident memory of a process.
				if idle, bytes := h.pool.stats(); idle > 0 {
					b.ReportMetric(float64(bytes)/float64(idle)/(1<<20), "MiB/instance")
				}
			}
		})
	}
}

// BenchmarkProcessStart is the cost of starting a process plugin: spawn,
// checksum, handshake with AutoMTLS, Start over the broker; and stopping it.
func BenchmarkProcessStart(b *testing.B) {
	f := newFixture(b)
	path := guesttest.BuildProcess(b, "host/internal/plugin/testdata/guests/bench")
	code, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(code)
	mod, err := f.h.procs.Load(path, hex.EncodeToString(sum[:]), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var start, stop time.Duration
	for b.Loop() {
		t := time.Now()
		in, err := mod.Instantiate(ctx, process.InstanceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		start += time.Since(t)
		t = time.Now()
		in.Close(ctx)
		stop += time.Since(t)
	}
	b.ReportMetric(float64(start.Milliseconds())/float64(b.N), "start_ms")
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "stop_ms")
}
