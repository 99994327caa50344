package ws

import (
	"encoding/json"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// category says who may see a message; a subscription holds a mask of them.
type category uint8

const (
	catPresence category = 1 << iota // presence.update: presence/read
	catEvents                        // every other event kind and plugin events: events/read
	catScores                        // score updates: scores/read
)

// Message kinds that are not event kinds.
const (
	KindScoreUpdate = "score.update"
	KindPlugin      = "plugin.event"
)

// Message is one server message. A frame is a JSON array of them.
//
// type "event" carries an event, a score update (kind "score.update") or a
// plugin event (kind "plugin.event"), each with its id. Control types:
// "hello" (after the upgrade), "subscribed", "unsubscribed", "resync" (the
// asked-for event id is no longer buffered: refetch through REST), "error".
type Message struct {
	Type      string          `json:"type"`
	GuildID   string          `json:"guild_id,omitempty"`
	ID        string          `json:"id,omitempty"`
	Kind      string          `json:"kind,omitempty"`
	At        *time.Time      `json:"at,omitempty"`
	UserID    string          `json:"user_id,omitempty"`
	ChannelID string          `json:"channel_id,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`

	// Control messages.
	Scope    string `json:"scope,omitempty"`    // subscribed: "full" or "presence"
	Replayed *int   `json:"replayed,omitempty"` // subscribed: messages replayed after "since"
	Code     string `json:"code,omitempty"`
	Text     string `json:"message,omitempty"`
	Subject  string `json:"subject,omitempty"` // hello: who the connection is
}

// ClientMessage is what a client sends: subscribe or unsubscribe to a guild,
// optionally resuming after the last event id it saw.
type ClientMessage struct {
	Type  string `json:"type"`
	Guild string `json:"guild_id"`
	Since string `json:"since,omitempty"`
}

// item is one encoded message and who may see it; batch is a guild's items
// as they travel (through Redis too).
type item struct {
	ID  string          `json:"id"`
	Cat category        `json:"c"`
	Msg json.RawMessage `json:"m"`
}

type batch struct {
	Guild string `json:"g"`
	Items []item `json:"i"`
}

// eventItem encodes a stored event for the dashboard: message content is
// never sent (only metadata), since the stream is not a message log.
func eventItem(ev event.Event) (item, error) {
	data := ev.Data
	switch d := data.(type) {
	case *event.MessageCreate:
		c := *d
		c.Content = ""
		data = &c
	case *event.MessageUpdate:
		c := *d
		c.Content = ""
		data = &c
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return item{}, err
	}
	at := ev.At
	m := Message{Type: "event", GuildID: ev.GuildID, ID: ev.ID, Kind: string(ev.Kind), At: &at,
		UserID: ev.UserID, ChannelID: ev.ChannelID, Data: raw}
	b, err := json.Marshal(m)
	if err != nil {
		return item{}, err
	}
	cat := catEvents
	if ev.Kind == event.KindPresenceUpdate {
		cat = catPresence
	}
	return item{ID: ev.ID, Cat: cat, Msg: b}, nil
}

func scoreItem(s bus.ScoreUpdate) (item, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return item{}, err
	}
	at := s.At
	b, err := json.Marshal(Message{Type: "event", GuildID: s.GuildID, ID: s.ID, Kind: KindScoreUpdate, At: &at, UserID: s.UserID, Data: raw})
	if err != nil {
		return item{}, err
	}
	return item{ID: s.ID, Cat: catScores, Msg: b}, nil
}

func pluginItem(p bus.PluginEvent) (item, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return item{}, err
	}
	at := p.At
	b, err := json.Marshal(Message{Type: "event", GuildID: p.GuildID, ID: p.ID, Kind: KindPlugin, At: &at, Data: raw})
	if err != nil {
		return item{}, err
	}
	return item{ID: p.ID, Cat: catEvents, Msg: b}, nil
}

func control(m Message) []byte {
	b, _ := json.Marshal(m) // a Message always encodes
	return b
}
