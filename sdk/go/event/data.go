package event

import "time"

// Status is a member's presence status.
type Status string

// Presence statuses. Discord's "invisible" is reported to others as offline.
const (
	StatusOnline  Status = "online"
	StatusIdle    Status = "idle"
	StatusDND     Status = "dnd"
	StatusOffline Status = "offline"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusOnline, StatusIdle, StatusDND, StatusOffline:
		return true
	}
	return false
}

// Online reports whether s counts as present (anything but offline or empty).
func (s Status) Online() bool { return s != StatusOffline && s != "" }

// Client is one of the Discord clients a member can be connected with.
type Client string

// The clients Discord reports per-client status for.
const (
	ClientDesktop Client = "desktop"
	ClientMobile  Client = "mobile"
	ClientWeb     Client = "web"
)

// Clients lists the clients in a stable order.
func Clients() []Client { return []Client{ClientDesktop, ClientMobile, ClientWeb} }

// ClientStatus is the status per client; an empty field means "not connected
// with that client", the same as offline.
type ClientStatus struct {
	Desktop Status `json:"desktop,omitempty"`
	Mobile  Status `json:"mobile,omitempty"`
	Web     Status `json:"web,omitempty"`
}

// Get returns the status on client c.
func (cs ClientStatus) Get(c Client) Status {
	switch c {
	case ClientDesktop:
		return cs.Desktop
	case ClientMobile:
		return cs.Mobile
	case ClientWeb:
		return cs.Web
	}
	return ""
}

// OnlineCount returns how many clients are connected and not offline.
func (cs ClientStatus) OnlineCount() int {
	n := 0
	for _, c := range Clients() {
		if cs.Get(c).Online() {
			n++
		}
	}
	return n
}

// User is what the source knows about a Discord account. Sources attach it
// when they have it so the host can keep names current.
type User struct {
	ID         string `json:"id"`
	Username   string `json:"username,omitempty"`
	GlobalName string `json:"global_name,omitempty"`
	Avatar     string `json:"avatar,omitempty"`
	Bot        bool   `json:"bot,omitempty"`
}

// ActivityType is what an activity is (Discord's activity types).
type ActivityType string

// Activity types.
const (
	ActivityPlaying   ActivityType = "playing"
	ActivityStreaming ActivityType = "streaming"
	ActivityListening ActivityType = "listening"
	ActivityWatching  ActivityType = "watching"
	ActivityCustom    ActivityType = "custom"
	ActivityCompeting ActivityType = "competing"
)

// Activity is one entry of a member's rich presence.
type Activity struct {
	Type    ActivityType `json:"type"`
	Name    string       `json:"name"`
	State   string       `json:"state,omitempty"`
	Details string       `json:"details,omitempty"`
	URL     string       `json:"url,omitempty"`
}

// Presence is the payload of presence.update: the member's overall status,
// the status on each client and their activities, all as of Event.At.
type Presence struct {
	Status       Status       `json:"status"`
	ClientStatus ClientStatus `json:"client_status"`
	Activities   []Activity   `json:"activities,omitempty"`
	User         *User        `json:"user,omitempty"`
}

// MessageCreate is the payload of message.create. Content is present only
// when the source was allowed to read it; the host never stores it itself.
type MessageCreate struct {
	MessageID       string   `json:"message_id"`
	Content         string   `json:"content,omitempty"`
	Length          int      `json:"length"`
	Attachments     int      `json:"attachments,omitempty"`
	Embeds          int      `json:"embeds,omitempty"`
	Mentions        []string `json:"mentions,omitempty"`
	MentionRoles    []string `json:"mention_roles,omitempty"`
	MentionEveryone bool     `json:"mention_everyone,omitempty"`
	ReplyTo         string   `json:"reply_to,omitempty"`
	User            *User    `json:"user,omitempty"`
}

// MessageUpdate is the payload of message.update (an edit).
type MessageUpdate struct {
	MessageID   string    `json:"message_id"`
	Content     string    `json:"content,omitempty"`
	Length      int       `json:"length"`
	Attachments int       `json:"attachments,omitempty"`
	Embeds      int       `json:"embeds,omitempty"`
	EditedAt    time.Time `json:"edited_at,omitzero"`
}

// MessageDelete is the payload of message.delete. Bulk marks a deletion that
// was part of a bulk delete.
type MessageDelete struct {
	MessageID string `json:"message_id"`
	Bulk      bool   `json:"bulk,omitempty"`
}

// TypingStart is the payload of typing.start; the envelope carries everything.
type TypingStart struct{}

// MemberJoin is the payload of member.join.
type MemberJoin struct {
	User    *User    `json:"user,omitempty"`
	Nick    string   `json:"nick,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	Pending bool     `json:"pending,omitempty"`
	// Backfill marks a join reconstructed from a member list (for example a
	// gateway member chunk) rather than observed as it happened.
	Backfill bool `json:"backfill,omitempty"`
}

// MemberLeave is the payload of member.leave.
type MemberLeave struct {
	User *User `json:"user,omitempty"`
}

// MemberUpdate is the payload of member.update: the roles added and removed
// by this change and, when the source knows it, the complete role list after.
type MemberUpdate struct {
	User         *User    `json:"user,omitempty"`
	Nick         string   `json:"nick,omitempty"`
	RolesAdded   []string `json:"roles_added,omitempty"`
	RolesRemoved []string `json:"roles_removed,omitempty"`
	Roles        []string `json:"roles,omitempty"`
}

// BanAdd is the payload of ban.add.
type BanAdd struct {
	Reason string `json:"reason,omitempty"`
	User   *User  `json:"user,omitempty"`
}

// BanRemove is the payload of ban.remove.
type BanRemove struct{}

// VoiceState is the payload of voice.state. The envelope's ChannelID is the
// voice channel the member is in now; empty means they left voice.
type VoiceState struct {
	SelfMute  bool `json:"self_mute,omitempty"`
	SelfDeaf  bool `json:"self_deaf,omitempty"`
	Mute      bool `json:"mute,omitempty"`
	Deaf      bool `json:"deaf,omitempty"`
	Streaming bool `json:"streaming,omitempty"`
	Video     bool `json:"video,omitempty"`
}

// GuildUpdate is the payload of guild.update: the guild's current metadata.
// Removed is set when the bot no longer has access to the guild.
type GuildUpdate struct {
	Name        string `json:"name,omitempty"`
	OwnerID     string `json:"owner_id,omitempty"`
	Icon        string `json:"icon,omitempty"`
	MemberCount int    `json:"member_count,omitempty"`
	Removed     bool   `json:"removed,omitempty"`
}

// ChannelType is the kind of a guild channel.
type ChannelType string

// Channel types.
const (
	ChannelText         ChannelType = "text"
	ChannelVoice        ChannelType = "voice"
	ChannelCategory     ChannelType = "category"
	ChannelAnnouncement ChannelType = "announcement"
	ChannelThread       ChannelType = "thread"
	ChannelStage        ChannelType = "stage"
	ChannelForum        ChannelType = "forum"
)

// ChannelUpdate is the payload of channel.update: the channel named by the
// envelope's ChannelID as it is now. Deleted marks a removed channel.
type ChannelUpdate struct {
	Name     string      `json:"name,omitempty"`
	Type     ChannelType `json:"type"`
	ParentID string      `json:"parent_id,omitempty"`
	Position int         `json:"position,omitempty"`
	NSFW     bool        `json:"nsfw,omitempty"`
	Deleted  bool        `json:"deleted,omitempty"`
}

// ScoreUpdate is the payload of score.update: the member named by the
// envelope's UserID got a new score from a scorer plugin. Previous is the
// member's score from the same scorer before, nil for the first one.
type ScoreUpdate struct {
	Scorer      string   `json:"scorer"`
	Score       float64  `json:"score"`
	Previous    *float64 `json:"previous,omitempty"`
	Explanation string   `json:"explanation,omitempty"`
}

// EventKind implementations tie each payload to its kind.

func (*Presence) EventKind() Kind      { return KindPresenceUpdate }
func (*MessageCreate) EventKind() Kind { return KindMessageCreate }
func (*MessageUpdate) EventKind() Kind { return KindMessageUpdate }
func (*MessageDelete) EventKind() Kind { return KindMessageDelete }
func (*TypingStart) EventKind() Kind   { return KindTypingStart }
func (*MemberJoin) EventKind() Kind    { return KindMemberJoin }
func (*MemberLeave) EventKind() Kind   { return KindMemberLeave }
func (*MemberUpdate) EventKind() Kind  { return KindMemberUpdate }
func (*BanAdd) EventKind() Kind        { return KindBanAdd }
func (*BanRemove) EventKind() Kind     { return KindBanRemove }
func (*VoiceState) EventKind() Kind    { return KindVoiceState }
func (*GuildUpdate) EventKind() Kind   { return KindGuildUpdate }
func (*ChannelUpdate) EventKind() Kind { return KindChannelUpdate }
func (*ScoreUpdate) EventKind() Kind   { return KindScoreUpdate }

// UserOf returns the user attached to an event's payload, if any.
func UserOf(d Data) *User {
	switch v := d.(type) {
	case *Presence:
		return v.User
	case *MessageCreate:
		return v.User
	case *MemberJoin:
		return v.User
	case *MemberLeave:
		return v.User
	case *MemberUpdate:
		return v.User
	case *BanAdd:
		return v.User
	}
	return nil
}

// WithoutContent returns d with any message content removed, copying the
// payload rather than changing it. The host stores events this way and hands
// them so to plugins that were not granted message.content.read.
func WithoutContent(d Data) Data {
	switch v := d.(type) {
	case *MessageCreate:
		if v.Content != "" {
			c := *v
			c.Content = ""
			return &c
		}
	case *MessageUpdate:
		if v.Content != "" {
			c := *v
			c.Content = ""
			return &c
		}
	}
	return d
}
