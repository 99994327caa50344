package ws

import (
	"encoding/json"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/ws/wsproto"
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

// Message is one server message. A frame is a JSON array of them; a
// presence update, the high-rate kind, is sent in its compact form instead
// (see presenceItem).
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
	ID  string   `json:"id"`
	Cat category `json:"c"`
	// Msg is the message; for a Compact one (a presence update) its tuple
	// in a presence batch without dt, with At its time (Unix ms).
	Msg     json.RawMessage `json:"m"`
	Compact bool            `json:"p,omitempty"`
	At      int64           `json:"a,omitempty"`
}

type batch struct {
	Guild string `json:"g"`
	Items []item `json:"i"`
}

// eventItem encodes a stored event for the dashboard: message content is
// never sent (only metadata), since the stream is not a message log.
func eventItem(ev event.Event) (item, error) {
	if p, ok := ev.Data.(*event.Presence); ok && ev.Kind == event.KindPresenceUpdate {
		if it, ok := presenceItem(ev, p); ok {
			return it, nil
		}
	}
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

// PresenceTag opens a presence batch, the compact form of a run of
// presence updates (the high-rate kind, most of the stream) in a frame:
//
//	["p", guild_id, at0, [dt, id, user_id, "sdmw"], ...]
//
// at0 is the first update's time in Unix milliseconds and dt each one's
// offset from it (ms). "sdmw" is four letters, the status and the status on
// desktop, mobile and web: o online, i idle, d dnd, f offline, - absent.
// An update is about a third of the size of its full message (activities
// and the user object are left out: the dashboard shows the status only).
const PresenceTag = "p"

var statusLetters = map[event.Status]byte{event.StatusOnline: 'o', event.StatusIdle: 'i', event.StatusDND: 'd', event.StatusOffline: 'f', "": '-'}

// presenceItem encodes a presence update for a presence batch: Msg is
// ["id","user_id","sdmw"], valid JSON so that it crosses the fan-out; dt is
// put in front when the batch is built. An update with a status without a letter keeps the full form.
func presenceItem(ev event.Event, p *event.Presence) (item, bool) {
	var st [4]byte
	for i, s := range []event.Status{p.Status, p.ClientStatus.Desktop, p.ClientStatus.Mobile, p.ClientStatus.Web} {
		l, ok := statusLetters[s]
		if !ok {
			return item{}, false
		}
		st[i] = l
	}
	b, err := json.Marshal([]string{ev.ID, ev.UserID, string(st[:])})
	if err != nil {
		return item{}, false
	}
	return item{ID: ev.ID, Cat: catPresence, At: ev.At.UnixMilli(), Compact: true, Msg: b}, true
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

// control encodes a control message as a frame of its own.
func control(m Message) []byte {
	b, _ := json.Marshal([]Message{m}) // a Message always encodes
	return wsproto.AppendFrame(make([]byte, 0, len(b)+wsproto.MaxHeader), wsproto.OpText, b)
}
