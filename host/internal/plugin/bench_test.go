package plugin

import (
	"context"
	"encoding/json"
	"os"
	"strconv"

	"slices"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/wire"
)

func benchFixture(b *testing.B, encoding string) *fixture {
	f := newFixture(b)
	code := guest(b, "bench")
	_, err := f.h.Install(context.Background(), manifest(b, "bench", "1.0.0", code, func(m *Manifest) {
		m.Hooks = []string{HookEvents, HookHTTP}
		m.Events = []event.Kind{event.KindPresenceUpdate, event.KindMessageCreate}
		m.EventEncoding = encoding
		m.ConfigSchema = nil
		m.Limits = Limits{BatchEvents: 4096}
	}), code)
	if err != nil {
		b.Fatal(err)
	}
	f.enableAll("bench", guildA)
	return f
}

func benchEvents(n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		if i%5 == 0 {
			evs[i] = messageEvent(guildA)
		} else {
			evs[i] = presenceEvent(guildA)
		}
		evs[i].UserID = event.NewSnowflake(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), 1, uint64(i%1000))
	}
	return evs
}

// BenchmarkDispatchPerEvent is the amortised cost of delivering one event
// to a WebAssembly plugin in batches of 256: encoding the batch, the call,
// and the guest decoding it and looking at every event.
func BenchmarkDispatchPerEvent(b *testing.B) {
	size := 256
	if v, err := strconv.Atoi(os.Getenv("BENCH_BATCH")); err == nil {
		size = v
	}
	for _, enc := range []string{wire.EncodingBinary, wire.EncodingJSON} {
		b.Run(enc, func(b *testing.B) {
			f := benchFixture(b, enc)
			if m := os.Getenv("BENCH_MODE"); m != "" {
				f.h.Configure(context.Background(), "bench", guildA, json.RawMessage(`{"mode":"`+m+`"}`))
			}
			ctx := context.Background()
			evs := benchEvents(size)
			l := f.h.snap.Load().plugins["bench"]
			// Warm the pool.
			in, _ := encodeBatch(l.m, guildA, evs, false)
			if _, err := f.h.call(ctx, "bench", guildA, HookEvents, in); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				in, err := encodeBatch(l.m, guildA, evs, false)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.h.call(ctx, "bench", guildA, HookEvents, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
		})
	}
}

// BenchmarkHookCall measures single calls — on_events with one event (the
// hook the host calls most) and http with a tiny request — and reports their
// median and 99th percentile.
func BenchmarkHookCall(b *testing.B) {
	for _, hook := range []string{HookEvents, HookHTTP} {
		b.Run(hook, func(b *testing.B) {
			f := benchFixture(b, wire.EncodingBinary)
			ctx := context.Background()
			l := f.h.snap.Load().plugins["bench"]
			in := []byte(`{"method":"GET","path":"/ping"}`)
			evs := benchEvents(1)
			if hook == HookEvents {
				in, _ = encodeBatch(l.m, guildA, evs, false)
			}
			if _, err := f.h.call(ctx, "bench", guildA, hook, in); err != nil {
				b.Fatal(err)
			}
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t := time.Now()
				if hook == HookEvents {
					in, _ = encodeBatch(l.m, guildA, evs, false)
				}
				if _, err := f.h.call(ctx, "bench", guildA, hook, in); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t))
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds())/1000, "p50_µs")
			b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds())/1000, "p99_µs")
		})
	}
}

// BenchmarkInstanceMemory reports the memory of one pooled instance of a
// Go-built plugin after it has served calls.
func BenchmarkInstanceMemory(b *testing.B) {
	f := benchFixture(b, wire.EncodingBinary)
	ctx := context.Background()
	evs := benchEvents(256)
	l := f.h.snap.Load().plugins["bench"]
	in, _ := encodeBatch(l.m, guildA, evs, false)
	for b.Loop() {
		if _, err := f.h.call(ctx, "bench", guildA, HookEvents, in); err != nil {
			b.Fatal(err)
		}
	}
	idle, bytes := f.h.pool.stats()
	if idle == 0 {
		b.Fatal("no pooled instance")
	}
	b.ReportMetric(float64(bytes)/float64(idle)/(1<<20), "MiB/instance")
}

// BenchmarkEncodeBatch is the host's share of dispatch: encoding a batch.
func BenchmarkEncodeBatch(b *testing.B) {
	evs := benchEvents(256)
	m := &Manifest{EventEncoding: wire.EncodingBinary}
	for b.Loop() {
		if _, err := encodeBatch(m, guildA, evs, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
