package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Dispatch is one gateway dispatch (op 0) as received.
type Dispatch struct {
	// Type is the dispatch name, Discord's "t" (for example "PRESENCE_UPDATE").
	Type string
	// Seq is Discord's sequence number "s" (0 if unknown).
	Seq int64
	// Data is the raw "d" object, byte for byte as received: hash-derived
	// event IDs are computed over it, so a recorder must store it verbatim.
	Data json.RawMessage
	// RecordedAt, when not zero, is mixed into hash-derived event IDs. The
	// live gateway sets it to the receive time, because Discord restarts
	// sequence numbers with every session and two identical presence updates
	// with the same s would otherwise share an ID; replay sets it from the
	// line's "at" so a recording reproduces the live IDs. Replay leaves it
	// zero for lines without "at", which keeps IDs independent of the
	// fallback time the caller chooses.
	RecordedAt time.Time
}

// SkipReason says why a dispatch produced no events.
type SkipReason string

// Reasons for skipping a dispatch. Skips are not errors: callers count them.
const (
	// SkipDM marks a dispatch without a guild (direct messages, DM channels,
	// DM calls): Spywatcher only watches guilds.
	SkipDM SkipReason = "dm"
	// SkipUnhandled marks a dispatch type the normaliser has no mapping for
	// (READY, reactions, unknown future types, ...).
	SkipUnhandled SkipReason = "unhandled type"
	// SkipUnchanged marks a GUILD_MEMBER_UPDATE that changed none of roles,
	// nick or user names (for example only the boost or timeout state).
	SkipUnchanged SkipReason = "unchanged"
	// SkipNotEdit marks a MESSAGE_UPDATE without edited_timestamp: Discord
	// sends those when embeds unfurl or a message is pinned, which are not
	// edits by the author.
	SkipNotEdit SkipReason = "not an edit"
	// SkipUnavailable marks a GUILD_CREATE for a guild in an outage, which
	// carries nothing but its id.
	SkipUnavailable SkipReason = "guild unavailable"
	// SkipEmpty marks a GUILD_MEMBERS_CHUNK without members or presences.
	SkipEmpty SkipReason = "empty"
	// SkipChannelType marks a channel of a type Spywatcher does not track
	// (DM, group DM, directory).
	SkipChannelType SkipReason = "untracked channel type"
)

// Result is what one dispatch normalised to: either events or, when Events
// is empty, the reason it was skipped.
type Result struct {
	Events []event.Event
	Skip   SkipReason
}

// MalformedError reports a dispatch that cannot be turned into valid events:
// bad JSON, a missing guild or user ID, a field that fails validation.
type MalformedError struct {
	Type   string // dispatch type
	Reason string // what is wrong
	Err    error  // underlying error, if any
}

func (e *MalformedError) Error() string {
	s := "discord: malformed " + e.Type + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *MalformedError) Unwrap() error { return e.Err }

// RoleLookup supplies a member's roles when the Normalizer has not seen the
// member yet (for example after a restart); the host backs it with its store.
// ok is false when the member is unknown there too.
type RoleLookup interface {
	MemberRoles(ctx context.Context, guildID, userID string) (roles []string, ok bool, err error)
}

// Normalizer converts dispatches into events. It keeps a cache of every
// member's roles so that GUILD_MEMBER_UPDATE, which carries only the new
// role list, can be turned into roles added and removed.
//
// A Normalizer is safe for concurrent use: the gateway calls it from one
// goroutine per shard. It relies on the events of one guild arriving in
// order from one goroutine, as they do from a shard. The zero value is a
// Normalizer without a RoleLookup.
type Normalizer struct {
	lookup RoleLookup
	cache  roleCache
}

// NewNormalizer returns a Normalizer. lookup may be nil; then a member update
// for a member not seen since start carries the full role list without a
// diff.
func NewNormalizer(lookup RoleLookup) *Normalizer {
	return &Normalizer{lookup: lookup}
}

// Normalize converts one dispatch received at receivedAt into events. It
// returns a *MalformedError for a dispatch it cannot convert, the lookup's
// error when the RoleLookup fails, and a Result with a Skip reason (and a nil
// error) for dispatches that carry nothing Spywatcher records.
//
// Event.At is the receive time, except for message.create (the message's
// timestamp), message.update (edited_timestamp) and typing.start (Discord's
// timestamp); all times are UTC truncated to milliseconds. Every returned
// event passes event.Validate.
func (n *Normalizer) Normalize(ctx context.Context, d Dispatch, receivedAt time.Time) (Result, error) {
	if receivedAt.IsZero() {
		return Result{}, errors.New("discord: normalize: zero receive time")
	}
	c := &conv{n: n, ctx: ctx, d: d, at: msUTC(receivedAt)}
	var skip SkipReason
	var err error
	switch d.Type {
	case "PRESENCE_UPDATE":
		skip, err = c.presenceUpdate()
	case "MESSAGE_CREATE":
		skip, err = c.messageCreate()
	case "MESSAGE_UPDATE":
		skip, err = c.messageUpdate()
	case "MESSAGE_DELETE":
		skip, err = c.messageDelete()
	case "MESSAGE_DELETE_BULK":
		skip, err = c.messageDeleteBulk()
	case "TYPING_START":
		skip, err = c.typingStart()
	case "GUILD_MEMBER_ADD":
		skip, err = c.memberAdd()
	case "GUILD_MEMBER_UPDATE":
		skip, err = c.memberUpdate()
	case "GUILD_MEMBER_REMOVE":
		skip, err = c.memberRemove()
	case "GUILD_BAN_ADD", "GUILD_BAN_REMOVE":
		skip, err = c.ban(d.Type == "GUILD_BAN_ADD")
	case "VOICE_STATE_UPDATE":
		skip, err = c.voiceStateUpdate()
	case "GUILD_CREATE", "GUILD_UPDATE":
		skip, err = c.guildCreateOrUpdate(d.Type == "GUILD_CREATE")
	case "GUILD_DELETE":
		skip, err = c.guildDelete()
	case "GUILD_MEMBERS_CHUNK":
		skip, err = c.membersChunk()
	case "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE":
		skip, err = c.channel(d.Type == "CHANNEL_DELETE", false)
	case "THREAD_CREATE", "THREAD_UPDATE", "THREAD_DELETE":
		skip, err = c.channel(d.Type == "THREAD_DELETE", true)
	default:
		skip = SkipUnhandled
	}
	if err != nil {
		return Result{}, err
	}
	if len(c.evs) == 0 {
		if skip == "" {
			// Every handler names its reason; this guards against a new
			// handler forgetting to, so callers can always count the skip.
			skip = SkipUnhandled
		}
		return Result{Skip: skip}, nil
	}
	if err := c.finish(); err != nil {
		return Result{}, err
	}
	return Result{Events: c.evs}, nil
}

// msUTC is the form of every Event.At this package produces.
func msUTC(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// conv holds the state of converting one dispatch.
type conv struct {
	n   *Normalizer
	ctx context.Context
	d   Dispatch
	at  time.Time

	evs    []event.Event
	hashed []bool // evs[i] needs a hash-derived ID
}

// add appends an event; id "" asks for a hash-derived ID in finish.
func (c *conv) add(ev event.Event, id string) {
	ev.ID = id
	if ev.At.IsZero() {
		ev.At = c.at
	}
	c.evs = append(c.evs, ev)
	c.hashed = append(c.hashed, id == "")
}

// finish assigns hash-derived IDs and validates every event, so a dispatch
// either converts completely or is reported malformed.
func (c *conv) finish() error {
	var h string
	for i := range c.evs {
		ev := &c.evs[i]
		if c.hashed[i] {
			if h == "" {
				h = dispatchHash(c.d)
			}
			ev.ID = hashID(ev.Kind, h, i, len(c.evs))
		}
		if err := ev.Validate(); err != nil {
			return c.malformed(fmt.Sprintf("event %d (%s)", i, ev.Kind), err)
		}
	}
	return nil
}

func (c *conv) malformed(reason string, err error) error {
	return &MalformedError{Type: c.d.Type, Reason: reason, Err: err}
}

// decode unmarshals the dispatch data into v.
func (c *conv) decode(v any) error {
	if len(c.d.Data) == 0 {
		return c.malformed("missing d", nil)
	}
	if err := json.Unmarshal(c.d.Data, v); err != nil {
		return c.malformed("bad JSON", err)
	}
	return nil
}

// parseTime parses one of Discord's ISO 8601 timestamps.
func (c *conv) parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, c.malformed("bad "+field, err)
	}
	return msUTC(t), nil
}
