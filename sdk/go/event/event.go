// Package event defines Spywatcher's event envelope and the typed payload of
// every event kind. It is the one wire contract shared by the host and by
// plugins written in Go; sdk/schema/event.schema.json states the same shapes
// for every other language.
//
// The package has no dependencies outside the standard library so that it
// builds for GOOS=wasip1 guests as well as for the host.
package event

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind names what happened. Kinds are dotted: the part before the dot is the
// family ("message"), used by permissions and subscriptions.
type Kind string

// The event kinds. Adding a kind is a compatible change; renaming one is not.
const (
	KindPresenceUpdate Kind = "presence.update"
	KindMessageCreate  Kind = "message.create"
	KindMessageUpdate  Kind = "message.update"
	KindMessageDelete  Kind = "message.delete"
	KindTypingStart    Kind = "typing.start"
	KindMemberJoin     Kind = "member.join"
	KindMemberLeave    Kind = "member.leave"
	KindMemberUpdate   Kind = "member.update"
	KindBanAdd         Kind = "ban.add"
	KindBanRemove      Kind = "ban.remove"
	KindVoiceState     Kind = "voice.state"
	KindGuildUpdate    Kind = "guild.update"
	KindChannelUpdate  Kind = "channel.update"
	// KindScoreUpdate is a member's new score from a scorer plugin. The host
	// derives it when it stores scores and delivers it only to plugins; it
	// is never ingested or stored as an event (see HostKinds).
	KindScoreUpdate Kind = "score.update"
)

// Kinds lists, in a stable order, every kind a source produces (and the
// host ingests and stores). HostKinds are the others.
func Kinds() []Kind {
	return []Kind{
		KindPresenceUpdate,
		KindMessageCreate, KindMessageUpdate, KindMessageDelete,
		KindTypingStart,
		KindMemberJoin, KindMemberLeave, KindMemberUpdate,
		KindBanAdd, KindBanRemove,
		KindVoiceState,
		KindGuildUpdate, KindChannelUpdate,
	}
}

// HostKinds lists the kinds the host derives itself and hands only to
// plugins: they are not accepted from sources and not stored as events.
func HostKinds() []Kind { return []Kind{KindScoreUpdate} }

// AllKinds is Kinds followed by HostKinds.
func AllKinds() []Kind { return append(Kinds(), HostKinds()...) }

// Ingestible reports whether a source may produce events of kind k: a
// known kind that is not one of HostKinds.
func (k Kind) Ingestible() bool { return k.Known() && k != KindScoreUpdate }

// Known reports whether k is one of the kinds this version understands.
func (k Kind) Known() bool {
	_, ok := newData[k]
	return ok
}

// Family returns the part of the kind before the dot ("message" for
// "message.create").
func (k Kind) Family() string {
	for i := 0; i < len(k); i++ {
		if k[i] == '.' {
			return string(k[:i])
		}
	}
	return string(k)
}

// Event is the envelope every source produces and every consumer receives.
//
// ID makes delivery idempotent: a second event with the same ID is a
// duplicate and is dropped by the host. Data holds the kind's payload; its
// dynamic type always matches Kind (see the Data implementations in data.go).
type Event struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	GuildID   string    `json:"guild_id"`
	UserID    string    `json:"user_id,omitempty"`
	ChannelID string    `json:"channel_id,omitempty"`
	At        time.Time `json:"at"`
	Data      Data      `json:"data"`
}

// Data is the typed payload of an event. Each kind has exactly one
// implementation.
type Data interface {
	// EventKind returns the kind this payload belongs to.
	EventKind() Kind
}

// newData maps each kind to a constructor of its empty payload; it is the
// single registry decoding and validation consult.
var newData = map[Kind]func() Data{
	KindPresenceUpdate: func() Data { return &Presence{} },
	KindMessageCreate:  func() Data { return &MessageCreate{} },
	KindMessageUpdate:  func() Data { return &MessageUpdate{} },
	KindMessageDelete:  func() Data { return &MessageDelete{} },
	KindTypingStart:    func() Data { return &TypingStart{} },
	KindMemberJoin:     func() Data { return &MemberJoin{} },
	KindMemberLeave:    func() Data { return &MemberLeave{} },
	KindMemberUpdate:   func() Data { return &MemberUpdate{} },
	KindBanAdd:         func() Data { return &BanAdd{} },
	KindBanRemove:      func() Data { return &BanRemove{} },
	KindVoiceState:     func() Data { return &VoiceState{} },
	KindGuildUpdate:    func() Data { return &GuildUpdate{} },
	KindChannelUpdate:  func() Data { return &ChannelUpdate{} },
	KindScoreUpdate:    func() Data { return &ScoreUpdate{} },
}

// NewData returns an empty payload for kind k, or an error for an unknown kind.
func NewData(k Kind) (Data, error) {
	f, ok := newData[k]
	if !ok {
		return nil, fmt.Errorf("event: unknown kind %q", k)
	}
	return f(), nil
}

// UnmarshalJSON decodes an envelope and its payload into the type its kind
// names. Unknown payload fields are ignored so that newer producers can add
// fields; an unknown kind is an error.
func (e *Event) UnmarshalJSON(b []byte) error {
	type envelope Event
	var raw struct {
		envelope
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = Event(raw.envelope)
	e.Data = nil
	if raw.Kind == "" {
		return nil // reported by Validate with the other missing fields
	}
	d, err := NewData(raw.Kind)
	if err != nil {
		return err
	}
	if len(raw.Data) > 0 && string(raw.Data) != "null" {
		if err := json.Unmarshal(raw.Data, d); err != nil {
			return fmt.Errorf("event: data of %s: %w", raw.Kind, err)
		}
	}
	e.Data = d
	return nil
}

// Subject returns "guild/kind/id", a short identification for logs and errors.
func (e *Event) Subject() string {
	return e.GuildID + "/" + string(e.Kind) + "/" + e.ID
}
