package event

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on event fields. They bound what one event can make the host store.
const (
	MaxIDLen         = 128
	MaxNameLen       = 256  // user names, channel and guild names, activity fields
	MaxContentLen    = 8000 // bytes of message content (Discord allows 4000 characters)
	MaxReasonLen     = 512
	MaxListLen       = 250 // roles, mentions, activities
	MaxMessageLength = 1 << 20
	MaxScorerLen     = 63   // a scorer is a plugin ID
	MaxExplanation   = 1000 // bytes of a score's explanation
)

// FieldError is one problem with one field, named by its JSON path
// ("data.client_status.mobile").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in an event.
type ValidationError struct {
	Fields []FieldError `json:"fields"`
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("event: invalid: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

type checker struct{ errs []FieldError }

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) snowflake(field, v string, required bool) {
	if v == "" {
		if required {
			c.add(field, "required")
		}
		return
	}
	if !IsSnowflake(v) {
		c.add(field, "must be a Discord ID (decimal digits, at most 20)")
	}
}

func (c *checker) text(field, v string, max int) {
	if len(v) > max {
		c.add(field, "longer than %d bytes", max)
	} else if !utf8.ValidString(v) {
		c.add(field, "not valid UTF-8")
	}
}

func (c *checker) ids(field string, vs []string) {
	if len(vs) > MaxListLen {
		c.add(field, "more than %d entries", MaxListLen)
		return
	}
	for i, v := range vs {
		c.snowflake(fmt.Sprintf("%s[%d]", field, i), v, true)
	}
}

func (c *checker) user(field string, u *User, envelopeUser string) {
	if u == nil {
		return
	}
	c.snowflake(field+".id", u.ID, true)
	if u.ID != "" && envelopeUser != "" && u.ID != envelopeUser {
		c.add(field+".id", "differs from user_id %q", envelopeUser)
	}
	c.text(field+".username", u.Username, MaxNameLen)
	c.text(field+".global_name", u.GlobalName, MaxNameLen)
	c.text(field+".avatar", u.Avatar, MaxNameLen)
}

// needs says which envelope fields a kind requires.
var needs = map[Kind]struct{ user, channel bool }{
	KindPresenceUpdate: {user: true},
	KindMessageCreate:  {user: true, channel: true},
	KindMessageUpdate:  {channel: true},
	KindMessageDelete:  {channel: true},
	KindTypingStart:    {user: true, channel: true},
	KindMemberJoin:     {user: true},
	KindMemberLeave:    {user: true},
	KindMemberUpdate:   {user: true},
	KindBanAdd:         {user: true},
	KindBanRemove:      {user: true},
	KindVoiceState:     {user: true},
	KindGuildUpdate:    {},
	KindChannelUpdate:  {channel: true},
	KindScoreUpdate:    {user: true},
}

// Validate checks the envelope and the payload and returns a
// *ValidationError naming every bad field, or nil.
func (e *Event) Validate() error {
	var c checker
	switch {
	case e.ID == "":
		c.add("id", "required")
	case len(e.ID) > MaxIDLen:
		c.add("id", "longer than %d bytes", MaxIDLen)
	case !printableASCII(e.ID):
		c.add("id", "must be printable ASCII without spaces")
	}
	need, known := needs[e.Kind]
	switch {
	case e.Kind == "":
		c.add("kind", "required")
	case !known:
		c.add("kind", "unknown kind %q", e.Kind)
	}
	c.snowflake("guild_id", e.GuildID, true)
	c.snowflake("user_id", e.UserID, need.user)
	c.snowflake("channel_id", e.ChannelID, need.channel)
	if e.At.IsZero() {
		c.add("at", "required")
	} else if y := e.At.Year(); y < 2015 || y > 9999 {
		c.add("at", "outside the years Discord existed")
	}
	if known {
		switch {
		case e.Data == nil:
			c.add("data", "required for %s", e.Kind)
		case e.Data.EventKind() != e.Kind:
			c.add("data", "is a %s payload, not %s", e.Data.EventKind(), e.Kind)
		default:
			validateData(&c, e)
		}
	}
	if len(c.errs) > 0 {
		return &ValidationError{Fields: c.errs}
	}
	return nil
}

func validateData(c *checker, e *Event) {
	switch d := e.Data.(type) {
	case *Presence:
		if !d.Status.Valid() {
			c.add("data.status", "must be online, idle, dnd or offline")
		}
		for _, cl := range Clients() {
			if s := d.ClientStatus.Get(cl); s != "" && !s.Valid() {
				c.add("data.client_status."+string(cl), "must be online, idle, dnd or offline")
			}
		}
		if d.Status == StatusOffline && d.ClientStatus.OnlineCount() > 0 {
			c.add("data.client_status", "a client is online while status is offline")
		}
		if len(d.Activities) > MaxListLen {
			c.add("data.activities", "more than %d entries", MaxListLen)
		} else {
			for i, a := range d.Activities {
				p := fmt.Sprintf("data.activities[%d]", i)
				switch a.Type {
				case ActivityPlaying, ActivityStreaming, ActivityListening, ActivityWatching, ActivityCustom, ActivityCompeting:
				default:
					c.add(p+".type", "unknown activity type %q", a.Type)
				}
				c.text(p+".name", a.Name, MaxNameLen)
				c.text(p+".state", a.State, MaxNameLen)
				c.text(p+".details", a.Details, MaxNameLen)
				c.text(p+".url", a.URL, MaxNameLen)
			}
		}
		c.user("data.user", d.User, e.UserID)
	case *MessageCreate:
		c.snowflake("data.message_id", d.MessageID, true)
		c.text("data.content", d.Content, MaxContentLen)
		messageCounts(c, d.Length, d.Attachments, d.Embeds)
		c.ids("data.mentions", d.Mentions)
		c.ids("data.mention_roles", d.MentionRoles)
		c.snowflake("data.reply_to", d.ReplyTo, false)
		c.user("data.user", d.User, e.UserID)
	case *MessageUpdate:
		c.snowflake("data.message_id", d.MessageID, true)
		c.text("data.content", d.Content, MaxContentLen)
		messageCounts(c, d.Length, d.Attachments, d.Embeds)
	case *MessageDelete:
		c.snowflake("data.message_id", d.MessageID, true)
	case *MemberJoin:
		c.user("data.user", d.User, e.UserID)
		c.text("data.nick", d.Nick, MaxNameLen)
		c.ids("data.roles", d.Roles)
	case *MemberLeave:
		c.user("data.user", d.User, e.UserID)
	case *MemberUpdate:
		c.user("data.user", d.User, e.UserID)
		c.text("data.nick", d.Nick, MaxNameLen)
		c.ids("data.roles_added", d.RolesAdded)
		c.ids("data.roles_removed", d.RolesRemoved)
		c.ids("data.roles", d.Roles)
	case *BanAdd:
		c.text("data.reason", d.Reason, MaxReasonLen)
		c.user("data.user", d.User, e.UserID)
	case *GuildUpdate:
		c.text("data.name", d.Name, MaxNameLen)
		c.snowflake("data.owner_id", d.OwnerID, false)
		c.text("data.icon", d.Icon, MaxNameLen)
		if d.MemberCount < 0 {
			c.add("data.member_count", "must not be negative")
		}
	case *ChannelUpdate:
		c.text("data.name", d.Name, MaxNameLen)
		switch d.Type {
		case ChannelText, ChannelVoice, ChannelCategory, ChannelAnnouncement, ChannelThread, ChannelStage, ChannelForum:
		default:
			c.add("data.type", "unknown channel type %q", d.Type)
		}
		c.snowflake("data.parent_id", d.ParentID, false)
	case *ScoreUpdate:
		if d.Scorer == "" {
			c.add("data.scorer", "required")
		} else if len(d.Scorer) > MaxScorerLen || !printableASCII(d.Scorer) {
			c.add("data.scorer", "must be a plugin ID (printable ASCII, at most %d bytes)", MaxScorerLen)
		}
		if !(d.Score >= 0 && d.Score <= 100) {
			c.add("data.score", "must be between 0 and 100")
		}
		if d.Previous != nil && !(*d.Previous >= 0 && *d.Previous <= 100) {
			c.add("data.previous", "must be between 0 and 100")
		}
		c.text("data.explanation", d.Explanation, MaxExplanation)
	case *TypingStart, *BanRemove, *VoiceState:
		// Nothing beyond the envelope.
	}
}

func messageCounts(c *checker, length, attachments, embeds int) {
	if length < 0 || length > MaxMessageLength {
		c.add("data.length", "must be between 0 and %d", MaxMessageLength)
	}
	if attachments < 0 || attachments > MaxListLen {
		c.add("data.attachments", "must be between 0 and %d", MaxListLen)
	}
	if embeds < 0 || embeds > MaxListLen {
		c.add("data.embeds", "must be between 0 and %d", MaxListLen)
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
