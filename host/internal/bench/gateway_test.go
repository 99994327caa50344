package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway"
	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
	"github.com/spywatcher/spywatcher/host/internal/lease"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// discardWriter stands in for the store to measure the gateway path alone.
type discardWriter struct{ n atomic.Int64 }

func (w *discardWriter) Ingest(_ context.Context, evs []event.Event) (store.IngestResult, error) {
	w.n.Add(int64(len(evs)))
	return store.IngestResult{}, nil
}

// gatewayTraffic returns n raw dispatches of one guild, shaped like Discord's:
// 80% presence updates, 12% messages, 5% typing, 3% member updates, from
// members users. round makes message IDs unique across rounds.
func gatewayTraffic(guild, channel string, n, members, round int) (types []string, data [][]byte) {
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	user := func(i int) string { return event.NewSnowflake(base.Add(-24*time.Hour), 1, uint64(i%members)) }
	statuses := []string{"online", "idle", "dnd"}
	for i := range n {
		u := user(i * 7919)
		var typ string
		var d []byte
		switch r := i % 100; {
		case r < 80:
			typ = "PRESENCE_UPDATE"
			st := statuses[i%3]
			d = fmt.Appendf(nil, `{"user":{"id":"%s"},"status":"%s","guild_id":"%s","client_status":{"desktop":"%s","mobile":"%s"},"activities":[{"type":0,"name":"Game %d","created_at":1767571200000,"timestamps":{"start":1767571200000},"application_id":"356869127241072640"},{"type":4,"name":"Custom Status","state":"working on it","created_at":1767571200000}]}`,
				u, st, guild, st, st, i%37)
		case r < 92:
			typ = "MESSAGE_CREATE"
			at := base.Add(time.Duration(i) * time.Millisecond)
			id := event.NewSnowflake(at, uint64(round%1024), uint64(i))
			d = fmt.Appendf(nil, `{"type":0,"tts":false,"timestamp":"%s","pinned":false,"nonce":"%d","mentions":[],"mention_roles":[],"mention_everyone":false,"member":{"roles":[],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2025-06-01T10:00:00.000000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null},"id":"%s","flags":0,"embeds":[],"edited_timestamp":null,"content":"","components":[],"channel_id":"%s","author":{"username":"member%d","public_flags":0,"id":"%s","global_name":"Member %d","discriminator":"0","avatar":"a1b2c3d4e5f60718293a4b5c6d7e8f90"},"attachments":[],"guild_id":"%s"}`,
				at.Format(time.RFC3339Nano), i, id, channel, i%members, u, i%members, guild)
		case r < 97:
			typ = "TYPING_START"
			d = fmt.Appendf(nil, `{"user_id":"%s","timestamp":%d,"member":{"user":{"username":"member","public_flags":0,"id":"%s","global_name":null,"discriminator":"0","avatar":null},"roles":[],"pending":false,"nick":null,"mute":false,"joined_at":"2025-06-01T10:00:00.000000+00:00","flags":0,"deaf":false,"avatar":null},"channel_id":"%s","guild_id":"%s"}`,
				u, base.Unix()+int64(i), u, channel, guild)
		default:
			typ = "GUILD_MEMBER_UPDATE"
			d = fmt.Appendf(nil, `{"user":{"username":"member","public_flags":0,"id":"%s","global_name":null,"discriminator":"0","avatar":null},"roles":["%s"],"premium_since":null,"pending":false,"nick":"nick %d","mute":false,"joined_at":"2025-06-01T10:00:00.000000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null,"guild_id":"%s"}`,
				u, channel, i, guild)
		}
		types, data = append(types, typ), append(data, d)
	}
	return types, data
}

// BenchmarkGateway measures sustained ingest from a (fake, loopback) Discord
// gateway through the real discordgo client, the shard buffer, the
// normaliser and the pipeline:
//
//   - pipeline: as fast as the fake can send, into a pipeline whose writer
//     discards, with a shard buffer that holds the whole round, so that the
//     number is the gateway path's throughput rather than how much it sheds;
//   - pipeline-paced: the default shard buffer, the fake sending at
//     SPYWATCHER_BENCH_GATEWAY_RATE dispatches/s (default 25,000); "shed"
//     should stay 0, showing that rate is sustained with default settings;
//   - sqlite, postgres: as "pipeline" with the real store behind it, whose
//     write speed then bounds the rate: the pipeline sheds presence (counted),
//     and "kept/s" is what was stored.
//
// Sizes: SPYWATCHER_BENCH_DISPATCHES per round (default 200,000) from
// SPYWATCHER_BENCH_MEMBERS members (default 10,000).
func BenchmarkGateway(b *testing.B) {
	n := envInt("SPYWATCHER_BENCH_DISPATCHES", 200_000)
	members := envInt("SPYWATCHER_BENCH_MEMBERS", 10_000)
	rate := envInt("SPYWATCHER_BENCH_GATEWAY_RATE", 25_000)
	discard := func(*testing.B) (pipeline.Writer, func()) { return &discardWriter{}, func() {} }
	type run struct {
		name   string
		open   func(b *testing.B) (pipeline.Writer, func())
		rate   int // dispatches/s the fake sends; 0 as fast as it can
		buffer int // shard buffer; 0 the default
	}
	runs := []run{{"pipeline", discard, 0, n}, {"pipeline-paced", discard, rate, 0}}
	for _, tg := range targets(b) {
		runs = append(runs, run{tg.name, func(b *testing.B) (pipeline.Writer, func()) {
			st, err := store.Open(context.Background(), tg.dsn(b), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return st, func() { st.Close() }
		}, 0, n})
	}
	for _, r := range runs {
		b.Run(r.name, func(b *testing.B) {
			for round := range b.N {
				benchGateway(b, r.open, n, members, round, r.rate, r.buffer)
			}
		})
	}
}

func benchGateway(b *testing.B, open func(*testing.B) (pipeline.Writer, func()), n, members, round, rate, buffer int) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	token := gatewaytest.Token("1100000000000000042")
	fake := gatewaytest.New(gatewaytest.Options{Token: token, KeepDispatches: 10_000})
	defer fake.Close()
	guild := event.NewSnowflake(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), 0, 1)
	channel := event.NewSnowflake(time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC), 0, 2)
	if err := fake.AddGuild(map[string]any{"id": guild, "name": "Bench", "member_count": 1,
		"channels": []any{map[string]any{"id": channel, "type": 0, "name": "general"}}}); err != nil {
		b.Fatal(err)
	}
	types, data := gatewayTraffic(guild, channel, n, members, round)

	w, closeWriter := open(b)
	defer closeWriter()
	reg := prometheus.NewRegistry()
	p, err := pipeline.New(pipeline.Config{MaxFuture: 100 * 365 * 24 * time.Hour}, w, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- p.Run(context.Background()) }()
	in, err := gateway.NewIngest(discord.NewNormalizer(nil), p, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	src, err := gateway.New(gateway.Config{Token: token, Handler: in, Leaser: &lease.Local{},
		APIURL: fake.APIURL(), Registerer: reg, Buffer: buffer})
	if err != nil {
		b.Fatal(err)
	}
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx) }()
	// guild.update and channel.update from GUILD_CREATE.
	received := func() float64 { return gathered(b, reg, "spywatcher_pipeline_events_received_total") }
	for received() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	runtime.GC()

	b.StartTimer()
	start := time.Now()
	for i := range data {
		if rate > 0 && i%100 == 0 {
			// Pace in steps of 100: wait until the schedule reaches i.
			if ahead := time.Duration(i)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		if err := fake.DispatchRaw(0, types[i], data[i]); err != nil {
			b.Fatal(err)
		}
	}
	sent := time.Since(start)
	// Every dispatch is stored or shed (counted) by the time Run ends.
	want := float64(n + 2)
	var accounted float64
	for {
		stored := gathered(b, reg, "spywatcher_pipeline_events_stored_total")
		if _, ok := w.(*discardWriter); ok {
			stored = float64(w.(*discardWriter).n.Load())
		}
		accounted = stored + gathered(b, reg, "spywatcher_pipeline_events_shed_total") +
			gathered(b, reg, "spywatcher_gateway_dispatches_shed_total") + gathered(b, reg, "spywatcher_pipeline_events_duplicate_total")
		if accounted >= want {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()

	shed := gathered(b, reg, "spywatcher_pipeline_events_shed_total") + gathered(b, reg, "spywatcher_gateway_dispatches_shed_total")
	cancel()
	if err := <-srcDone; err != nil {
		b.Fatal(err)
	}
	p.Close()
	if err := <-pipeDone; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/took.Seconds(), "dispatches/s")
	b.ReportMetric((float64(n)-shed)/took.Seconds(), "kept/s")
	b.ReportMetric(shed, "shed")
	b.ReportMetric(float64((took - sent).Milliseconds()), "ms-lag")
	b.Logf("%d dispatches (80%% presence) sent in %s, all handled %s later: %.0f dispatches/s; presence shed by the pipeline %.0f, by the shard buffer %.0f",
		n, sent.Round(time.Millisecond), (took - sent).Round(time.Millisecond), float64(n)/took.Seconds(),
		gathered(b, reg, "spywatcher_pipeline_events_shed_total"), gathered(b, reg, "spywatcher_gateway_dispatches_shed_total"))
}

// gathered sums a counter's series in reg.
func gathered(b *testing.B, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
