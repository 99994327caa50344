package discord

import (
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Message types that matter here (Discord's message type enum).
const messageTypeReply = 19

func (c *conv) presenceUpdate() (SkipReason, error) {
	var p wirePresence
	if err := c.decode(&p); err != nil {
		return "", err
	}
	if p.GuildID == "" {
		// Bots have no friends, so every presence they receive is a guild's.
		return "", c.malformed("missing guild_id", nil)
	}
	return "", c.presence("", p.GuildID, &p)
}

// presence adds a presence.update; where prefixes error reasons for list
// entries ("presences[3]: ").
func (c *conv) presence(where, guildID string, p *wirePresence) error {
	if p.User.ID == "" {
		return c.malformed(where+"missing user.id", nil)
	}
	d := &event.Presence{
		Status: status(p.Status),
		ClientStatus: event.ClientStatus{
			Desktop: status(p.ClientStatus.Desktop),
			Mobile:  status(p.ClientStatus.Mobile),
			Web:     status(p.ClientStatus.Web),
		},
	}
	for _, a := range p.Activities {
		t, ok := activityType(a.Type)
		if !ok {
			// A type newer than this code: drop the activity rather than
			// lose the presence.
			continue
		}
		d.Activities = append(d.Activities, event.Activity{
			Type:    t,
			Name:    clip(a.Name, event.MaxNameLen),
			State:   clip(a.State, event.MaxNameLen),
			Details: clip(a.Details, event.MaxNameLen),
			URL:     clip(a.URL, event.MaxNameLen),
		})
	}
	// Presence updates carry a full user only when the user changed; a bare
	// {id} would read as "names unknown", so it is not attached.
	if p.User.Username != "" || p.User.GlobalName != "" || p.User.Avatar != "" {
		d.User = user(&p.User)
	}
	c.add(event.Event{Kind: event.KindPresenceUpdate, GuildID: guildID, UserID: p.User.ID, Data: d}, "")
	return nil
}

func (c *conv) messageCreate() (SkipReason, error) {
	var m wireMessage
	if err := c.decode(&m); err != nil {
		return "", err
	}
	if m.GuildID == "" {
		return SkipDM, nil
	}
	if err := c.messageIDs(&m, true); err != nil {
		return "", err
	}
	at := c.at
	if m.Timestamp != "" {
		var err error
		if at, err = c.parseTime("timestamp", m.Timestamp); err != nil {
			return "", err
		}
	}
	d := &event.MessageCreate{
		MessageID:       m.ID,
		Content:         clip(m.Content, event.MaxContentLen),
		Length:          utf8.RuneCountInString(m.Content),
		Attachments:     len(m.Attachments),
		Embeds:          len(m.Embeds),
		MentionRoles:    nonEmpty(m.MentionRoles),
		MentionEveryone: m.MentionEveryone,
		User:            user(m.Author),
	}
	for _, u := range m.Mentions {
		d.Mentions = append(d.Mentions, u.ID)
	}
	// message_reference also marks crossposts, pins and forwards; only a
	// reply message (type 19) is an answer to the referenced message.
	if m.Type == messageTypeReply && m.Reference != nil {
		d.ReplyTo = m.Reference.MessageID
	}
	c.add(event.Event{
		Kind: event.KindMessageCreate, GuildID: m.GuildID, UserID: m.Author.ID, ChannelID: m.ChannelID,
		At: at, Data: d,
	}, "dc:msg:"+m.ID)
	return "", nil
}

func (c *conv) messageUpdate() (SkipReason, error) {
	var m wireMessage
	if err := c.decode(&m); err != nil {
		return "", err
	}
	if m.GuildID == "" {
		return SkipDM, nil
	}
	if err := c.messageIDs(&m, false); err != nil {
		return "", err
	}
	if m.EditedTimestamp == "" {
		return SkipNotEdit, nil
	}
	edited, err := c.parseTime("edited_timestamp", m.EditedTimestamp)
	if err != nil {
		return "", err
	}
	ev := event.Event{
		Kind: event.KindMessageUpdate, GuildID: m.GuildID, ChannelID: m.ChannelID, At: edited,
		Data: &event.MessageUpdate{
			MessageID:   m.ID,
			Content:     clip(m.Content, event.MaxContentLen),
			Length:      utf8.RuneCountInString(m.Content),
			Attachments: len(m.Attachments),
			Embeds:      len(m.Embeds),
			EditedAt:    edited,
		},
	}
	if m.Author != nil {
		ev.UserID = m.Author.ID
	}
	c.add(ev, "dc:edit:"+m.ID+":"+unixMS(edited))
	return "", nil
}

// messageIDs checks the identifiers every message event needs.
func (c *conv) messageIDs(m *wireMessage, needAuthor bool) error {
	switch {
	case m.ID == "":
		return c.malformed("missing id", nil)
	case m.ChannelID == "":
		return c.malformed("missing channel_id", nil)
	case needAuthor && (m.Author == nil || m.Author.ID == ""):
		return c.malformed("missing author.id", nil)
	}
	return nil
}

func (c *conv) messageDelete() (SkipReason, error) {
	var m wireMessageDelete
	if err := c.decode(&m); err != nil {
		return "", err
	}
	if m.GuildID == "" {
		return SkipDM, nil
	}
	switch {
	case m.ID == "":
		return "", c.malformed("missing id", nil)
	case m.ChannelID == "":
		return "", c.malformed("missing channel_id", nil)
	}
	c.add(event.Event{
		Kind: event.KindMessageDelete, GuildID: m.GuildID, ChannelID: m.ChannelID,
		Data: &event.MessageDelete{MessageID: m.ID},
	}, "dc:del:"+m.ID)
	return "", nil
}

func (c *conv) messageDeleteBulk() (SkipReason, error) {
	var m wireMessageDeleteBulk
	if err := c.decode(&m); err != nil {
		return "", err
	}
	if m.GuildID == "" {
		return SkipDM, nil
	}
	switch {
	case len(m.IDs) == 0:
		return "", c.malformed("missing ids", nil)
	case m.ChannelID == "":
		return "", c.malformed("missing channel_id", nil)
	}
	for _, id := range m.IDs {
		// A message is deleted once, so a bulk deletion shares the ID a
		// single MESSAGE_DELETE of the same message would get.
		c.add(event.Event{
			Kind: event.KindMessageDelete, GuildID: m.GuildID, ChannelID: m.ChannelID,
			Data: &event.MessageDelete{MessageID: id, Bulk: true},
		}, "dc:del:"+id)
	}
	return "", nil
}

func (c *conv) typingStart() (SkipReason, error) {
	var t wireTyping
	if err := c.decode(&t); err != nil {
		return "", err
	}
	if t.GuildID == "" {
		return SkipDM, nil
	}
	switch {
	case t.UserID == "":
		return "", c.malformed("missing user_id", nil)
	case t.ChannelID == "":
		return "", c.malformed("missing channel_id", nil)
	}
	ev := event.Event{
		Kind: event.KindTypingStart, GuildID: t.GuildID, UserID: t.UserID, ChannelID: t.ChannelID,
		Data: &event.TypingStart{},
	}
	id := ""
	if t.Timestamp > 0 {
		ev.At = time.Unix(t.Timestamp, 0).UTC()
		// Clients repeat TYPING_START about every ten seconds, so channel,
		// user and second identify one.
		id = "dc:typing:" + t.ChannelID + ":" + t.UserID + ":" + strconv.FormatInt(t.Timestamp, 10)
	}
	c.add(ev, id)
	return "", nil
}

func (c *conv) memberAdd() (SkipReason, error) {
	var m wireMember
	if err := c.decode(&m); err != nil {
		return "", err
	}
	if m.GuildID == "" {
		return "", c.malformed("missing guild_id", nil)
	}
	id := ""
	if m.JoinedAt != "" && m.User != nil {
		joined, err := c.parseTime("joined_at", m.JoinedAt)
		if err != nil {
			return "", err
		}
		// joined_at tells a rejoin apart from the first join.
		id = "dc:join:" + m.GuildID + ":" + m.User.ID + ":" + unixMS(joined)
	}
	return "", c.memberJoin("", m.GuildID, &m, false, id)
}

// memberJoin adds a member.join and records the member's roles.
func (c *conv) memberJoin(where, guildID string, m *wireMember, backfill bool, id string) error {
	g, u, roles, err := c.memberKeys(where, guildID, m)
	if err != nil {
		return err
	}
	c.n.cache.put(g, u, cachedMember{roles: roles, ident: memberIdent(m.Nick, m.User)})
	c.add(event.Event{
		Kind: event.KindMemberJoin, GuildID: guildID, UserID: m.User.ID,
		Data: &event.MemberJoin{
			User:     user(m.User),
			Nick:     clip(m.Nick, event.MaxNameLen),
			Roles:    formatIDs(roles),
			Pending:  m.Pending,
			Backfill: backfill,
		},
	}, id)
	return nil
}

// memberKeys checks a member's IDs and returns them as cache keys with the
// parsed role list.
func (c *conv) memberKeys(where, guildID string, m *wireMember) (g, u uint64, roles []uint64, err error) {
	if m.User == nil || m.User.ID == "" {
		return 0, 0, nil, c.malformed(where+"missing user.id", nil)
	}
	g, ok := parseID(guildID)
	if !ok {
		return 0, 0, nil, c.malformed(fmt.Sprintf("guild id %q is not a Discord ID", guildID), nil)
	}
	if u, ok = parseID(m.User.ID); !ok {
		return 0, 0, nil, c.malformed(fmt.Sprintf("%suser id %q is not a Discord ID", where, m.User.ID), nil)
	}
	if roles, err = parseRoles(m.Roles); err != nil {
		return 0, 0, nil, c.malformed(where+"bad roles", err)
	}
	return g, u, roles, nil
}

// memberUpdate diffs the full new role list against the member's previous
// roles: from the cache, else from the RoleLookup, else it reports the full
// list without a diff. An update that changes neither roles nor nick nor
// user names (boosts, timeouts, avatar decorations) is skipped, but only
// when the previous state is known from the cache.
func (c *conv) memberUpdate() (SkipReason, error) {
	var m wireMember
	if err := c.decode(&m); err != nil {
		return "", err
	}
	if m.GuildID == "" {
		return "", c.malformed("missing guild_id", nil)
	}
	g, u, roles, err := c.memberKeys("", m.GuildID, &m)
	if err != nil {
		return "", err
	}
	ident := memberIdent(m.Nick, m.User)
	var before []uint64
	prev, known := c.n.cache.get(g, u)
	if known {
		if prev.ident == ident && slices.Equal(prev.roles, roles) {
			return SkipUnchanged, nil
		}
		before = prev.roles
	} else if c.n.lookup != nil {
		// Asked outside the cache lock: the lookup may hit the database.
		rs, ok, err := c.n.lookup.MemberRoles(c.ctx, m.GuildID, m.User.ID)
		if err != nil {
			return "", fmt.Errorf("discord: %s: role lookup %s/%s: %w", c.d.Type, m.GuildID, m.User.ID, err)
		}
		if ok {
			if before, err = parseRoles(rs); err != nil {
				return "", fmt.Errorf("discord: %s: role lookup %s/%s: %w", c.d.Type, m.GuildID, m.User.ID, err)
			}
			known = true
		}
	}
	c.n.cache.put(g, u, cachedMember{roles: roles, ident: ident})
	d := &event.MemberUpdate{
		User:  user(m.User),
		Nick:  clip(m.Nick, event.MaxNameLen),
		Roles: formatIDs(roles),
	}
	if known {
		added, removed := diffRoles(before, roles)
		d.RolesAdded, d.RolesRemoved = formatIDs(added), formatIDs(removed)
	}
	c.add(event.Event{Kind: event.KindMemberUpdate, GuildID: m.GuildID, UserID: m.User.ID, Data: d}, "")
	return "", nil
}

func (c *conv) memberRemove() (SkipReason, error) {
	m, err := c.guildUser()
	if err != nil {
		return "", err
	}
	if g, ok := parseID(m.GuildID); ok {
		if u, ok := parseID(m.User.ID); ok {
			c.n.cache.remove(g, u)
		}
	}
	c.add(event.Event{
		Kind: event.KindMemberLeave, GuildID: m.GuildID, UserID: m.User.ID,
		Data: &event.MemberLeave{User: user(m.User)},
	}, "")
	return "", nil
}

func (c *conv) ban(add bool) (SkipReason, error) {
	m, err := c.guildUser()
	if err != nil {
		return "", err
	}
	ev := event.Event{Kind: event.KindBanRemove, GuildID: m.GuildID, UserID: m.User.ID, Data: &event.BanRemove{}}
	if add {
		// The gateway does not send the ban reason; only the audit log has it.
		ev.Kind, ev.Data = event.KindBanAdd, &event.BanAdd{User: user(m.User)}
	}
	c.add(ev, "")
	return "", nil
}

// guildUser decodes the {guild_id, user} shape and checks both IDs.
func (c *conv) guildUser() (*wireGuildUser, error) {
	var m wireGuildUser
	if err := c.decode(&m); err != nil {
		return nil, err
	}
	switch {
	case m.GuildID == "":
		return nil, c.malformed("missing guild_id", nil)
	case m.User == nil || m.User.ID == "":
		return nil, c.malformed("missing user.id", nil)
	}
	return &m, nil
}

func (c *conv) voiceStateUpdate() (SkipReason, error) {
	var v wireVoiceState
	if err := c.decode(&v); err != nil {
		return "", err
	}
	if v.GuildID == "" {
		return SkipDM, nil // a DM call
	}
	return "", c.voiceState("", v.GuildID, &v)
}

func (c *conv) voiceState(where, guildID string, v *wireVoiceState) error {
	if v.UserID == "" {
		return c.malformed(where+"missing user_id", nil)
	}
	c.add(event.Event{
		Kind: event.KindVoiceState, GuildID: guildID, UserID: v.UserID, ChannelID: v.ChannelID,
		Data: &event.VoiceState{
			SelfMute: v.SelfMute, SelfDeaf: v.SelfDeaf, Mute: v.Mute, Deaf: v.Deaf,
			Streaming: v.SelfStream, Video: v.SelfVideo,
		},
	}, "")
	return nil
}

// guildCreateOrUpdate reports the guild's metadata and, for GUILD_CREATE,
// backfills its channels, threads, members, presences and voice states.
func (c *conv) guildCreateOrUpdate(create bool) (SkipReason, error) {
	var g wireGuild
	if err := c.decode(&g); err != nil {
		return "", err
	}
	if g.ID == "" {
		return "", c.malformed("missing id", nil)
	}
	if g.Unavailable {
		return SkipUnavailable, nil
	}
	c.add(event.Event{
		Kind: event.KindGuildUpdate, GuildID: g.ID,
		Data: &event.GuildUpdate{
			Name:        clip(g.Name, event.MaxNameLen),
			OwnerID:     g.OwnerID,
			Icon:        g.Icon,
			MemberCount: g.MemberCount,
		},
	}, "")
	if !create {
		return "", nil
	}
	for i := range g.Channels {
		c.channelEvent(g.ID, &g.Channels[i], false)
	}
	for i := range g.Threads {
		c.channelEvent(g.ID, &g.Threads[i], false)
	}
	return "", c.backfill(g.ID, g.Members, g.Presences, g.VoiceStates)
}

// backfill adds the member lists of GUILD_CREATE and GUILD_MEMBERS_CHUNK.
func (c *conv) backfill(guildID string, members []wireMember, presences []wirePresence, voice []wireVoiceState) error {
	for i := range members {
		if err := c.memberJoin(fmt.Sprintf("members[%d]: ", i), guildID, &members[i], true, ""); err != nil {
			return err
		}
	}
	for i := range presences {
		if err := c.presence(fmt.Sprintf("presences[%d]: ", i), guildID, &presences[i]); err != nil {
			return err
		}
	}
	for i := range voice {
		if err := c.voiceState(fmt.Sprintf("voice_states[%d]: ", i), guildID, &voice[i]); err != nil {
			return err
		}
	}
	return nil
}

// guildDelete tells an outage (unavailable: true) from the bot being removed
// from the guild; only the latter forgets the guild's members.
func (c *conv) guildDelete() (SkipReason, error) {
	var g wireGuild
	if err := c.decode(&g); err != nil {
		return "", err
	}
	if g.ID == "" {
		return "", c.malformed("missing id", nil)
	}
	if !g.Unavailable {
		if id, ok := parseID(g.ID); ok {
			c.n.cache.dropGuild(id)
		}
	}
	c.add(event.Event{Kind: event.KindGuildUpdate, GuildID: g.ID, Data: &event.GuildUpdate{Removed: !g.Unavailable}}, "")
	return "", nil
}

func (c *conv) membersChunk() (SkipReason, error) {
	var ch wireMembersChunk
	if err := c.decode(&ch); err != nil {
		return "", err
	}
	if ch.GuildID == "" {
		return "", c.malformed("missing guild_id", nil)
	}
	if err := c.backfill(ch.GuildID, ch.Members, ch.Presences, nil); err != nil {
		return "", err
	}
	if len(c.evs) == 0 {
		return SkipEmpty, nil // every requested member was not_found
	}
	return "", nil
}

// channel handles CHANNEL_* and THREAD_*. Channels without a guild are DMs;
// threads always belong to a guild.
func (c *conv) channel(deleted, thread bool) (SkipReason, error) {
	var ch wireChannel
	if err := c.decode(&ch); err != nil {
		return "", err
	}
	if ch.GuildID == "" {
		if thread {
			return "", c.malformed("missing guild_id", nil)
		}
		return SkipDM, nil
	}
	if ch.ID == "" {
		return "", c.malformed("missing id", nil)
	}
	if !c.channelEvent(ch.GuildID, &ch, deleted) {
		return SkipChannelType, nil
	}
	return "", nil
}

// channelEvent adds a channel.update and reports false for a channel type
// that is not tracked.
func (c *conv) channelEvent(guildID string, ch *wireChannel, deleted bool) bool {
	t, ok := channelType(ch.Type)
	if !ok {
		return false
	}
	c.add(event.Event{
		Kind: event.KindChannelUpdate, GuildID: guildID, ChannelID: ch.ID,
		Data: &event.ChannelUpdate{
			Name:     clip(ch.Name, event.MaxNameLen),
			Type:     t,
			ParentID: ch.ParentID,
			Position: ch.Position,
			NSFW:     ch.NSFW,
			Deleted:  deleted,
		},
	}, "")
	return true
}

func user(u *wireUser) *event.User {
	if u == nil {
		return nil
	}
	return &event.User{
		ID:         u.ID,
		Username:   clip(u.Username, event.MaxNameLen),
		GlobalName: clip(u.GlobalName, event.MaxNameLen),
		Avatar:     clip(u.Avatar, event.MaxNameLen),
		Bot:        u.Bot,
	}
}

// status maps Discord's status strings; others only ever see "invisible" as
// offline, so a stray one is reported as such.
func status(s string) event.Status {
	if s == "invisible" {
		return event.StatusOffline
	}
	return event.Status(s)
}

func activityType(t int) (event.ActivityType, bool) {
	switch t {
	case 0:
		return event.ActivityPlaying, true
	case 1:
		return event.ActivityStreaming, true
	case 2:
		return event.ActivityListening, true
	case 3:
		return event.ActivityWatching, true
	case 4:
		return event.ActivityCustom, true
	case 5:
		return event.ActivityCompeting, true
	}
	return "", false
}

// channelType maps Discord's guild channel types; DM (1), group DM (3) and
// directory (14) channels are not tracked.
func channelType(t int) (event.ChannelType, bool) {
	switch t {
	case 0:
		return event.ChannelText, true
	case 2:
		return event.ChannelVoice, true
	case 4:
		return event.ChannelCategory, true
	case 5:
		return event.ChannelAnnouncement, true
	case 10, 11, 12: // announcement, public and private threads
		return event.ChannelThread, true
	case 13:
		return event.ChannelStage, true
	case 15, 16: // forum and media (a forum of media posts)
		return event.ChannelForum, true
	}
	return "", false
}

// clip cuts s to at most max bytes on a rune boundary. Discord's limits are
// in characters (100 for a channel name, 128 for activity details), which in
// UTF-8 can exceed the event's byte limits; a cut name beats a lost event.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
