// Package wire defines how the host hands a batch of events to a plugin's
// on_events hook. Two encodings exist, chosen by the plugin's manifest
// ("event_encoding"):
//
//   - "json" (the default, readable by any language):
//     {"guild_id":"…","events":[<event>, …]} with events as in
//     sdk/schema/event.schema.json;
//   - "binary", a compact layout that a guest can walk without a JSON parser
//     (decoding JSON with reflection is the dominant cost of a Go guest in
//     WebAssembly). Each event's payload stays JSON and is decoded only if
//     the plugin asks for it.
//
// Binary layout, all integers little-endian:
//
//	batch   = "SWB1" count:u32 guild:u64 event*
//	event   = size:u32 code:u8 [kind:str8 if code = 0] at:i64 user:u64 channel:u64 id:str16 data:str32
//	strN    = length:uN bytes
//
// size counts the bytes of the event after the size field, so a reader can
// skip events it does not understand. code is the kind's number in
// KindCodes (numbers are never reused or reassigned); 0 means the kind
// follows as a string. Comparing strings is a loop, and every loop iteration
// of a sandboxed guest costs a check with the host, so known kinds travel as
// numbers. at is unix milliseconds. A zero user or channel means none.
// guild, user and channel are Discord IDs as numbers.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Magic starts every binary batch.
const Magic = "SWB1"

// Encodings a manifest may choose.
const (
	EncodingJSON   = "json"
	EncodingBinary = "binary"
)

// Event is one event as a plugin receives it. Reading it is cheap: the
// envelope's identifiers are kept as numbers or as slices of the batch and
// turned into strings only when asked for, and the payload stays JSON until
// Data is called. An Event is valid only during the call that delivered it;
// copy what must outlive the call.
type Event struct {
	kind                 event.Kind
	atMS                 int64
	guild, user, channel uint64
	id                   []byte
	// Raw is the payload as JSON.
	Raw  []byte
	data event.Data
}

// Kind is what happened.
func (e *Event) Kind() event.Kind { return e.kind }

// ID is the event's unique ID.
func (e *Event) ID() string { return string(e.id) }

// At is when it happened.
func (e *Event) At() time.Time { return time.UnixMilli(e.atMS).UTC() }

// AtMillis is At as unix milliseconds.
func (e *Event) AtMillis() int64 { return e.atMS }

// GuildID is the guild's Discord ID.
func (e *Event) GuildID() string { return idString(e.guild) }

// UserID is the user's Discord ID, or "" when the event has none.
func (e *Event) UserID() string { return idString(e.user) }

// ChannelID is the channel's Discord ID, or "" when the event has none.
func (e *Event) ChannelID() string { return idString(e.channel) }

// User is the user's Discord ID as a number (0 for none); as a map key it
// costs no allocation.
func (e *Event) User() uint64 { return e.user }

// Channel is the channel's Discord ID as a number (0 for none).
func (e *Event) Channel() uint64 { return e.channel }

// Data decodes the payload into the type its kind names.
func (e *Event) Data() (event.Data, error) {
	if e.data != nil {
		return e.data, nil
	}
	d, err := event.NewData(e.kind)
	if err != nil {
		return nil, err
	}
	if len(e.Raw) > 0 {
		if err := json.Unmarshal(e.Raw, d); err != nil {
			return nil, fmt.Errorf("wire: payload of %s: %w", e.id, err)
		}
	}
	e.data = d
	return d, nil
}

// KindCodes numbers the kinds for the binary encoding. Append only.
var KindCodes = [...]event.Kind{
	1: event.KindPresenceUpdate, 2: event.KindMessageCreate, 3: event.KindMessageUpdate,
	4: event.KindMessageDelete, 5: event.KindTypingStart, 6: event.KindMemberJoin,
	7: event.KindMemberLeave, 8: event.KindMemberUpdate, 9: event.KindBanAdd,
	10: event.KindBanRemove, 11: event.KindVoiceState, 12: event.KindGuildUpdate,
	13: event.KindChannelUpdate, 14: event.KindScoreUpdate,
}

func codeOf(k event.Kind) byte {
	for i, c := range KindCodes {
		if i > 0 && c == k {
			return byte(i)
		}
	}
	return 0
}

// AppendBinary appends the binary encoding of a batch of one guild's events
// to dst. data returns each event's payload as JSON (the host strips
// message content the plugin may not read before it gets here).
func AppendBinary(dst []byte, guildID string, evs []event.Event, data func(*event.Event) ([]byte, error)) ([]byte, error) {
	dst = append(dst, Magic...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(evs)))
	dst = binary.LittleEndian.AppendUint64(dst, id64(guildID))
	for i := range evs {
		ev := &evs[i]
		payload, err := data(ev)
		if err != nil {
			return nil, err
		}
		if len(ev.Kind) > 255 || len(ev.ID) > 65535 {
			return nil, fmt.Errorf("wire: event %s: kind or id too long", ev.ID)
		}
		code := codeOf(ev.Kind)
		size := 1 + 8 + 8 + 8 + 2 + len(ev.ID) + 4 + len(payload)
		if code == 0 {
			size += 1 + len(ev.Kind)
		}
		dst = binary.LittleEndian.AppendUint32(dst, uint32(size))
		dst = append(dst, code)
		if code == 0 {
			dst = append(dst, byte(len(ev.Kind)))
			dst = append(dst, ev.Kind...)
		}
		dst = binary.LittleEndian.AppendUint64(dst, uint64(ev.At.UnixMilli()))
		dst = binary.LittleEndian.AppendUint64(dst, id64(ev.UserID))
		dst = binary.LittleEndian.AppendUint64(dst, id64(ev.ChannelID))
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(ev.ID)))
		dst = append(dst, ev.ID...)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
		dst = append(dst, payload...)
	}
	return dst, nil
}

func id64(s string) uint64 {
	if s == "" {
		return 0
	}
	n, _ := strconv.ParseUint(s, 10, 64) // validated snowflakes always parse
	return n
}

func idString(n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(n, 10)
}

// JSONBatch is the JSON encoding of a batch.
type JSONBatch struct {
	GuildID string            `json:"guild_id"`
	Events  []json.RawMessage `json:"events"`
}

// ErrFormat is returned for input that is neither encoding.
var ErrFormat = errors.New("wire: malformed batch")

// Decode reads a batch in either encoding, reusing buf's storage for the
// events.
func Decode(b []byte, buf []Event) (guildID string, evs []Event, err error) {
	if len(b) >= 4 && string(b[:4]) == Magic {
		return decodeBinary(b, buf[:0])
	}
	var jb JSONBatch
	if err := json.Unmarshal(b, &jb); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	evs = buf[:0]
	for _, raw := range jb.Events {
		var env struct {
			ID        string          `json:"id"`
			Kind      event.Kind      `json:"kind"`
			UserID    string          `json:"user_id"`
			ChannelID string          `json:"channel_id"`
			At        time.Time       `json:"at"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		evs = append(evs, Event{id: []byte(env.ID), kind: env.Kind, guild: id64(jb.GuildID), user: id64(env.UserID),
			channel: id64(env.ChannelID), atMS: env.At.UnixMilli(), Raw: env.Data})
	}
	return jb.GuildID, evs, nil
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	if r.bad || len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return int(v)
}

func (r *reader) u16() int {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return int(binary.LittleEndian.Uint16(v))
}

func (r *reader) u32() int {
	v := r.take(4)
	if v == nil {
		return 0
	}
	return int(binary.LittleEndian.Uint32(v))
}

func (r *reader) u64() uint64 {
	v := r.take(8)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(v)
}

func decodeBinary(b []byte, evs []Event) (string, []Event, error) {
	r := &reader{b: b[4:]}
	n := r.u32()
	guild := r.u64()
	if r.bad || n > len(b)/35 { // an event takes at least 35 bytes
		return "", nil, ErrFormat
	}
	evs = slices.Grow(evs, n)
	for i := 0; i < n; i++ {
		size := r.u32()
		rec := reader{b: r.take(size)}
		if r.bad {
			return "", nil, fmt.Errorf("%w: event %d truncated", ErrFormat, i)
		}
		var ev Event
		ev.guild = guild
		if code := rec.u8(); code > 0 && code < len(KindCodes) {
			ev.kind = KindCodes[code]
		} else {
			ev.kind = event.Kind(rec.take(rec.u8()))
		}
		ev.atMS = int64(rec.u64())
		ev.user = rec.u64()
		ev.channel = rec.u64()
		ev.id = rec.take(rec.u16())
		ev.Raw = rec.take(rec.u32())
		if rec.bad {
			return "", nil, fmt.Errorf("%w: event %d malformed", ErrFormat, i)
		}
		evs = append(evs, ev)
	}
	return idString(guild), evs, nil
}
