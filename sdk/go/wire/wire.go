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
//	event   = size:u32 kind:str8 at:i64 user:u64 channel:u64 id:str16 data:str32
//	strN    = length:uN bytes
//
// size counts the bytes of the event after the size field, so a reader can
// skip events it does not understand. at is unix milliseconds. A zero user
// or channel means none. guild, user and channel are Discord IDs as numbers.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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

// Event is one event as a plugin receives it: the envelope decoded, the
// payload still JSON until Data is called.
type Event struct {
	ID        string
	Kind      event.Kind
	GuildID   string
	UserID    string
	ChannelID string
	At        time.Time
	// Raw is the payload as JSON.
	Raw  []byte
	data event.Data
}

// Data decodes the payload into the type its kind names.
func (e *Event) Data() (event.Data, error) {
	if e.data != nil {
		return e.data, nil
	}
	d, err := event.NewData(e.Kind)
	if err != nil {
		return nil, err
	}
	if len(e.Raw) > 0 {
		if err := json.Unmarshal(e.Raw, d); err != nil {
			return nil, fmt.Errorf("wire: payload of %s: %w", e.ID, err)
		}
	}
	e.data = d
	return d, nil
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
		size := 1 + len(ev.Kind) + 8 + 8 + 8 + 2 + len(ev.ID) + 4 + len(payload)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(size))
		dst = append(dst, byte(len(ev.Kind)))
		dst = append(dst, ev.Kind...)
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

// Decode reads a batch in either encoding.
func Decode(b []byte) (guildID string, evs []Event, err error) {
	if len(b) >= 4 && string(b[:4]) == Magic {
		return decodeBinary(b)
	}
	var jb JSONBatch
	if err := json.Unmarshal(b, &jb); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	evs = make([]Event, 0, len(jb.Events))
	for _, raw := range jb.Events {
		var env struct {
			ID        string          `json:"id"`
			Kind      event.Kind      `json:"kind"`
			GuildID   string          `json:"guild_id"`
			UserID    string          `json:"user_id"`
			ChannelID string          `json:"channel_id"`
			At        time.Time       `json:"at"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		evs = append(evs, Event{ID: env.ID, Kind: env.Kind, GuildID: env.GuildID, UserID: env.UserID,
			ChannelID: env.ChannelID, At: env.At, Raw: env.Data})
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

func (r *reader) u8() int { v := r.take(1); return int(at(v, 0)) }
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

func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// kindOf returns the constant for known kinds, so decoding allocates no
// kind strings.
func kindOf(b []byte) event.Kind {
	for _, k := range event.Kinds() {
		if string(k) == string(b) {
			return k
		}
	}
	return event.Kind(b)
}

func decodeBinary(b []byte) (string, []Event, error) {
	r := &reader{b: b[4:]}
	n := r.u32()
	guild := idString(r.u64())
	if r.bad || n > len(b)/30 { // an event takes at least 30 bytes
		return "", nil, ErrFormat
	}
	evs := make([]Event, 0, n)
	for i := 0; i < n; i++ {
		size := r.u32()
		rec := &reader{b: r.take(size)}
		if r.bad {
			return "", nil, fmt.Errorf("%w: event %d truncated", ErrFormat, i)
		}
		ev := Event{GuildID: guild}
		ev.Kind = kindOf(rec.take(rec.u8()))
		ev.At = time.UnixMilli(int64(rec.u64())).UTC()
		ev.UserID = idString(rec.u64())
		ev.ChannelID = idString(rec.u64())
		ev.ID = string(rec.take(rec.u16()))
		ev.Raw = rec.take(rec.u32())
		if rec.bad {
			return "", nil, fmt.Errorf("%w: event %d malformed", ErrFormat, i)
		}
		evs = append(evs, ev)
	}
	return guild, evs, nil
}
