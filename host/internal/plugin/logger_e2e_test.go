package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// TestMessageLoggerEndToEnd runs plugins/message-logger as a WebAssembly
// module in the host: events from the bus, edit and delete history through
// its routes, content only while granted, retention purge on tick.
func TestMessageLoggerEndToEnd(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installFirstParty("message-logger", nil)
	f.enableAll("message-logger", guildA)
	f.h.Configure(ctx, "message-logger", guildA, json.RawMessage(`{"retention_days": 7}`))

	const channel = "41771983423143938"
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	msg := event.NewSnowflake(t0, 1, 1)
	f.bus.Publish(ctx, []event.Event{
		{ID: "c1", Kind: event.KindMessageCreate, GuildID: guildA, UserID: userA, ChannelID: channel, At: t0,
			Data: &event.MessageCreate{MessageID: msg, Content: "first draft", Length: 11}},
		{ID: "u1", Kind: event.KindMessageUpdate, GuildID: guildA, UserID: userA, ChannelID: channel, At: t0.Add(time.Minute),
			Data: &event.MessageUpdate{MessageID: msg, Content: "final text", Length: 10}},
		{ID: "d1", Kind: event.KindMessageDelete, GuildID: guildA, ChannelID: channel, At: t0.Add(2 * time.Minute),
			Data: &event.MessageDelete{MessageID: msg}},
	})
	type rec struct {
		MessageID string `json:"message_id"`
		History   []struct {
			Content         string `json:"content"`
			ContentRecorded bool   `json:"content_recorded"`
		} `json:"history"`
		DeletedAt *time.Time `json:"deleted_at"`
	}
	type pageT struct {
		Messages       []rec  `json:"messages"`
		ContentGranted bool   `json:"content_granted"`
		ContentNote    string `json:"content_note"`
	}
	read := func(path string) pageT {
		t.Helper()
		res, err := f.route("message-logger", guildA, path)
		if err != nil || res.Status != 200 {
			t.Fatalf("%s: %v %+v", path, err, res)
		}
		var p pageT
		json.Unmarshal(res.Body, &p)
		return p
	}
	eventually(t, "the deletion logged", func() bool { return len(read("/deleted").Messages) == 1 })
	p := read("/deleted")
	r := p.Messages[0]
	if r.MessageID != msg || len(r.History) != 2 || r.History[0].Content != "first draft" || r.History[1].Content != "final text" || r.DeletedAt == nil || !p.ContentGranted {
		t.Fatalf("deleted message with history: %+v", p)
	}
	if p := read("/edited"); len(p.Messages) != 1 {
		t.Fatalf("edited: %+v", p)
	}

	// Revoking message.content.read: new messages are logged without text,
	// and the routes say why (the plugin's instances learn the new grants).
	if err := f.h.Revoke(ctx, "message-logger", guildA, []string{PermContentRead}); err != nil {
		t.Fatal(err)
	}
	msg2 := event.NewSnowflake(t0.Add(3*time.Minute), 1, 2)
	f.bus.Publish(ctx, []event.Event{{ID: "c2", Kind: event.KindMessageCreate, GuildID: guildA, UserID: userA, ChannelID: channel,
		At: t0.Add(3 * time.Minute), Data: &event.MessageCreate{MessageID: msg2, Content: "private", Length: 7}}})
	eventually(t, "the second message", func() bool { return len(read("/channels/"+channel+"/messages").Messages) == 2 })
	p = read("/channels/" + channel + "/messages")
	if p.ContentGranted || !strings.Contains(p.ContentNote, "not granted") || p.Messages[0].MessageID != msg2 ||
		p.Messages[0].History[0].ContentRecorded || p.Messages[0].History[0].Content != "" {
		t.Fatalf("without content: %+v", p)
	}

	// Retention: 7 days after the last change everything goes.
	f.tick("message-logger", guildA, t0.Add(6*24*time.Hour).Format(time.RFC3339))
	if p := read("/channels/" + channel + "/messages"); len(p.Messages) != 2 {
		t.Fatalf("purged before the retention ended: %+v", p)
	}
	f.tick("message-logger", guildA, t0.Add(8*24*time.Hour).Format(time.RFC3339))
	if p := read("/channels/" + channel + "/messages"); len(p.Messages) != 0 {
		t.Fatalf("not purged after the retention: %+v", p)
	}
	if n, err := f.st.KVUsage(ctx, "message-logger", guildA); err != nil || n != 0 {
		t.Fatalf("%d bytes left after the purge (%v)", n, err)
	}
}
