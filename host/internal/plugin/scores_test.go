package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// TestScoreUpdatesReachSubscribedPlugins publishes scores on the bus topic
// the scoring engine uses and checks they arrive as score.update events only
// where the plugin subscribes and holds events.score.read, and that they
// are not stored as events.
func TestScoreUpdatesReachSubscribedPlugins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", func(m *Manifest) {
		m.Events = append(m.Events, event.KindScoreUpdate)
		m.Permissions = append(m.Permissions, PermissionRequest{Name: PermScoreRead, Reason: "count scores", Optional: true})
	})
	f.enableAll("counter", guildA)
	f.enableAll("counter", guildB)
	f.h.Revoke(ctx, "counter", guildB, []string{PermScoreRead})

	prev := 40.0
	at := time.Now().UTC()
	f.bus.PublishScores(ctx, []bus.ScoreUpdate{
		{ID: "s1", GuildID: guildA, UserID: userA, Scorer: "ghost-score", Score: 71, Previous: &prev, Explanation: "Online 26 h for 2 messages", At: at},
		{ID: "s2", GuildID: guildB, UserID: userA, Scorer: "ghost-score", Score: 12, At: at},
		{ID: "bad", GuildID: guildA, UserID: userA, Scorer: "ghost-score", Score: 400, At: at}, // invalid: dropped
	})
	// Without an ID or a time, the host makes them up.
	f.bus.PublishScores(ctx, []bus.ScoreUpdate{{GuildID: guildA, UserID: userA, Scorer: "lurker-score", Score: 5}})
	f.bus.Publish(ctx, []event.Event{messageEvent(guildB)})
	eventually(t, "the scores in guild A", func() bool { return f.counts("counter", guildA)["score.update"] == 2 })
	// Guild B's message arrives, its score does not (no grant there).
	eventually(t, "guild B's message", func() bool { return f.counts("counter", guildB)["message.create"] == 1 })
	f.bus.Publish(ctx, []event.Event{messageEvent(guildA)})
	eventually(t, "a later message in A", func() bool { return f.counts("counter", guildA)["message.create"] == 1 })
	if c := f.counts("counter", guildA); c["score.update"] != 2 {
		t.Fatalf("invalid score delivered: %v", c)
	}
	if c := f.counts("counter", guildB); c["score.update"] != 0 {
		t.Fatalf("score delivered without events.score.read: %v", c)
	}
	page, err := f.st.ListEvents(ctx, guildA, store.EventQuery{Kinds: []event.Kind{event.KindScoreUpdate}, Limit: 10})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("score.update stored as an event: %+v %v", page, err)
	}
}
