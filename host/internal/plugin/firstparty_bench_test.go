package plugin

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// BenchmarkMessageLoggerPerMessage is what logging one new message costs in
// the host: its share of a batch of 256 creates with content, encoded,
// delivered to the WebAssembly module, and its three key-value writes
// stored (SQLite).
func BenchmarkMessageLoggerPerMessage(b *testing.B) {
	f := newFixture(b)
	f.installFirstParty("message-logger", nil)
	f.enableAll("message-logger", guildA)
	ctx := context.Background()
	l := f.h.snap.Load().plugins["message-logger"]
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := 0
	batch := func() []event.Event {
		evs := make([]event.Event, 256)
		for i := range evs {
			n++
			at := base.Add(time.Duration(n) * time.Millisecond)
			id := event.NewSnowflake(at, 1, uint64(n))
			evs[i] = event.Event{ID: "c" + id, Kind: event.KindMessageCreate, GuildID: guildA, UserID: userA,
				ChannelID: "41771983423143938", At: at,
				Data: &event.MessageCreate{MessageID: id, Content: "a message of typical length, with a few words", Length: 46}}
		}
		return evs
	}
	for b.Loop() {
		in, err := encodeBatch(l.m, guildA, batch(), true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.h.call(ctx, "message-logger", guildA, HookEvents, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256)/1000, "µs/message")
}

// BenchmarkWebhookNotifierPresence is the notifier's cost per presence
// update (most of a guild's events) with a multi-client rule configured:
// a batch of 256 where one in 50 shows two clients and queues a delivery.
func BenchmarkWebhookNotifierPresence(b *testing.B) {
	f := newFixture(b)
	f.installFirstParty("webhook-notifier", nil)
	f.enableAll("webhook-notifier", guildA)
	ctx := context.Background()
	cfg, _ := json.Marshal(map[string]any{
		"webhooks": []any{map[string]any{"id": "mods", "url": "https://discord.com/api/webhooks/1/x"}},
		"rules":    []any{map[string]any{"id": "alts", "on": "multi_client"}},
	})
	if err := f.h.Configure(ctx, "webhook-notifier", guildA, cfg); err != nil {
		b.Fatal(err)
	}
	l := f.h.snap.Load().plugins["webhook-notifier"]
	n := 0
	for b.Loop() {
		evs := make([]event.Event, 256)
		for i := range evs {
			n++
			cs := event.ClientStatus{Desktop: event.StatusOnline}
			if n%50 == 0 {
				cs.Mobile = event.StatusOnline
			}
			evs[i] = event.Event{ID: "p" + event.NewSnowflake(time.Now(), 2, uint64(n)), Kind: event.KindPresenceUpdate,
				GuildID: guildA, UserID: event.NewSnowflake(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), 1, uint64(n)),
				At: time.Now().UTC(), Data: &event.Presence{Status: event.StatusOnline, ClientStatus: cs}}
		}
		in, err := encodeBatch(l.m, guildA, evs, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.h.call(ctx, "webhook-notifier", guildA, HookEvents, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256)/1000, "µs/event")
}
