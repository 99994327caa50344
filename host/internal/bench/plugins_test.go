package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/ingest/simulate"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

func TestMain(m *testing.M) {
	code := m.Run()
	guesttest.Cleanup()
	os.Exit(code)
}

// BenchmarkIngestWithPlugins compares end-to-end ingest into SQLite with no
// plugin and with three WebAssembly plugins (each counting every event of
// the stream) enabled for the guild. Plugins run on the same two cores.
func BenchmarkIngestWithPlugins(b *testing.B) {
	n := envInt("SPYWATCHER_BENCH_EVENTS", 500_000)
	members := envInt("SPYWATCHER_BENCH_MEMBERS", 10_000)
	code := guesttest.Build(b, "host/internal/plugin/testdata/guests/bench")
	sim, err := simulate.New(simulate.Config{Seed: 7, Members: members})
	if err != nil {
		b.Fatal(err)
	}
	evs, _ := generate(b, sim, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), n)
	guild := sim.Truth().GuildID
	var base float64
	for _, plugins := range []int{0, 3} {
		b.Run(fmt.Sprintf("plugins=%d", plugins), func(b *testing.B) {
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				dir := b.TempDir()
				st, err := store.Open(ctx, filepath.Join(dir, "bench.db"), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				reg := prometheus.NewRegistry()
				bs := bus.NewLocal()
				enf, err := authz.New(ctx, st, authz.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer enf.Close()
				h, err := plugin.New(ctx, plugin.Config{Dir: filepath.Join(dir, "plugins"), CacheDir: filepath.Join(guesttest.Dir(b), "cache")},
					st, enf, safehttp.New(safehttp.Options{}), bs, reg)
				if err != nil {
					b.Fatal(err)
				}
				for i := range plugins {
					id := fmt.Sprintf("counter-%d", i)
					sum := sha256.Sum256(code)
					manifest := fmt.Sprintf(`{"id":%q,"name":"Counter","version":"1.0.0","runtime":"wasm","abi_version":1,
						"artifact":{"path":"p.wasm","sha256":%q},"hooks":["on_events"],"event_encoding":"binary",
						"events":["presence.update","message.create","message.update","message.delete","typing.start","member.join","member.leave","member.update","voice.state"],
						"permissions":[{"name":"events.presence.read","reason":"r"},{"name":"events.message.read","reason":"r"},
						{"name":"events.typing.read","reason":"r"},{"name":"events.member.read","reason":"r"},{"name":"events.voice.read","reason":"r"}]}`,
						id, hex.EncodeToString(sum[:]))
					if _, err := h.Install(ctx, []byte(manifest), code); err != nil {
						b.Fatal(err)
					}
					if err := h.GrantAll(ctx, id, guild, "bench"); err != nil {
						b.Fatal(err)
					}
					if err := h.SetEnabled(ctx, id, guild, true); err != nil {
						b.Fatal(err)
					}
				}
				sub := bs.Subscribe(4096)
				hostDone := make(chan struct{})
				go func() { h.Start(ctx, sub); close(hostDone) }()
				p, err := pipeline.New(pipeline.Config{MaxFuture: 100 * 365 * 24 * time.Hour}, st, bs, reg)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				took := ingestWith(b, p, reg, evs)
				rate := float64(len(evs)) / took.Seconds()
				var delivered, shed float64
				if plugins > 0 {
					// Let the plugins finish what is queued, for the report.
					deadline := time.Now().Add(2 * time.Minute)
					for time.Now().Before(deadline) {
						delivered = sumCounter(reg, "spywatcher_plugin_events_delivered_total")
						shed = sumCounter(reg, "spywatcher_plugin_events_shed_total")
						if delivered+shed >= float64(plugins)*subscribed(evs)*0.999 {
							break
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
				cancel()
				<-hostDone
				h.Close(context.Background())
				st.Close()
				if plugins == 0 {
					base = rate
				}
				b.ReportMetric(rate, "events/s")
				if base > 0 {
					b.ReportMetric(100*rate/base, "%_of_no_plugins")
				}
				b.Logf("%d plugins: %d events in %s = %.0f events/s; plugins got %.0f deliveries, %.0f shed, bus drops %d",
					plugins, len(evs), took.Round(time.Millisecond), rate, delivered, shed, sub.Dropped())
			}
		})
	}
}

// subscribed counts the events the benchmark plugins subscribe to.
func subscribed(evs []event.Event) float64 {
	n := 0
	for i := range evs {
		switch evs[i].Kind.Family() {
		case "presence", "message", "typing", "member", "voice":
			n++
		}
	}
	return float64(n)
}

func sumCounter(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
