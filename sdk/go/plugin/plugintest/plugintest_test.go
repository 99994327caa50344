package plugintest_test

import (
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/plugin/plugintest"
)

// lastSeen keeps one entry per message author, tagged with the author, and
// one guild-wide entry.
type lastSeen struct{}

func (lastSeen) OnEvents(ctx *plugin.Context, evs []plugin.Event) error {
	for i := range evs {
		if err := ctx.KVSetUser("seen:"+evs[i].UserID(), []byte(evs[i].At().Format(time.RFC3339)), evs[i].UserID()); err != nil {
			return err
		}
	}
	return ctx.KVSet("total", []byte("n"))
}

func init() { plugin.Register(plugin.Plugin{Events: lastSeen{}}) }

func TestDeleteUserRemovesTaggedEntries(t *testing.T) {
	h := plugintest.New("41771983423143937", nil)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	msg := func(id, user string) event.Event {
		return event.Event{ID: id, Kind: event.KindMessageCreate, GuildID: h.GuildID, UserID: user,
			ChannelID: "41771983423143938", At: at, Data: &event.MessageCreate{MessageID: "41771983423143990"}}
	}
	if err := h.Events(msg("e1", "80351110224678912"), msg("e2", "80351110224678913")); err != nil {
		t.Fatal(err)
	}
	if got := h.KVUsers["seen:80351110224678912"]; got != "80351110224678912" {
		t.Fatalf("entry not tagged with its member: %q", got)
	}
	// The plugin offers no delete_user hook: the host still removes what
	// was stored about the member, and nothing else.
	if err := h.DeleteUser("80351110224678912"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.KV["seen:80351110224678912"]; ok {
		t.Error("entry about the deleted member survived")
	}
	for _, k := range []string{"seen:80351110224678913", "total"} {
		if _, ok := h.KV[k]; !ok {
			t.Errorf("%s was deleted with another member", k)
		}
	}
}
