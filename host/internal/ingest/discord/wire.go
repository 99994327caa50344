package discord

// The wire types below are the subset of Discord's gateway payloads (API v10)
// that Spywatcher reads. They are deliberately private: Discord's shapes stop
// at this package and only event.Event leaves it. Nullable strings decode to
// "" because encoding/json leaves a string untouched on null.

type wireUser struct {
	ID         string `json:"id"`
	Username   string `json:"username"`
	GlobalName string `json:"global_name"`
	Avatar     string `json:"avatar"`
	Bot        bool   `json:"bot"`
}

type wireActivity struct {
	Type    int    `json:"type"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Details string `json:"details"`
	URL     string `json:"url"`
}

type wireClientStatus struct {
	Desktop string `json:"desktop"`
	Mobile  string `json:"mobile"`
	Web     string `json:"web"`
}

// wirePresence is PRESENCE_UPDATE and the entries of presences[] in
// GUILD_CREATE and GUILD_MEMBERS_CHUNK (which omit guild_id).
type wirePresence struct {
	User         wireUser         `json:"user"`
	GuildID      string           `json:"guild_id"`
	Status       string           `json:"status"`
	Activities   []wireActivity   `json:"activities"`
	ClientStatus wireClientStatus `json:"client_status"`
}

type wireMessageRef struct {
	MessageID string `json:"message_id"`
}

// wireMessage is MESSAGE_CREATE and MESSAGE_UPDATE (v10 sends the full
// message object on update). Attachments and embeds are only counted, so
// their elements decode into empty structs.
type wireMessage struct {
	ID              string          `json:"id"`
	Type            int             `json:"type"`
	ChannelID       string          `json:"channel_id"`
	GuildID         string          `json:"guild_id"`
	Author          *wireUser       `json:"author"`
	Content         string          `json:"content"`
	Timestamp       string          `json:"timestamp"`
	EditedTimestamp string          `json:"edited_timestamp"`
	Attachments     []struct{}      `json:"attachments"`
	Embeds          []struct{}      `json:"embeds"`
	Mentions        []wireUser      `json:"mentions"`
	MentionRoles    []string        `json:"mention_roles"`
	MentionEveryone bool            `json:"mention_everyone"`
	Reference       *wireMessageRef `json:"message_reference"`
}

type wireMessageDelete struct {
	ID        string `json:"id"`
	ChannelID string `json:"channel_id"`
	GuildID   string `json:"guild_id"`
}

type wireMessageDeleteBulk struct {
	IDs       []string `json:"ids"`
	ChannelID string   `json:"channel_id"`
	GuildID   string   `json:"guild_id"`
}

type wireTyping struct {
	ChannelID string `json:"channel_id"`
	GuildID   string `json:"guild_id"`
	UserID    string `json:"user_id"`
	Timestamp int64  `json:"timestamp"`
}

// wireMember is a guild member object; GUILD_MEMBER_ADD and
// GUILD_MEMBER_UPDATE send its fields inline next to guild_id.
type wireMember struct {
	GuildID  string    `json:"guild_id"`
	User     *wireUser `json:"user"`
	Nick     string    `json:"nick"`
	Roles    []string  `json:"roles"`
	JoinedAt string    `json:"joined_at"`
	Pending  bool      `json:"pending"`
}

// wireGuildUser is GUILD_MEMBER_REMOVE, GUILD_BAN_ADD and GUILD_BAN_REMOVE.
type wireGuildUser struct {
	GuildID string    `json:"guild_id"`
	User    *wireUser `json:"user"`
}

type wireVoiceState struct {
	GuildID    string `json:"guild_id"`
	ChannelID  string `json:"channel_id"`
	UserID     string `json:"user_id"`
	SelfMute   bool   `json:"self_mute"`
	SelfDeaf   bool   `json:"self_deaf"`
	Mute       bool   `json:"mute"`
	Deaf       bool   `json:"deaf"`
	SelfStream bool   `json:"self_stream"`
	SelfVideo  bool   `json:"self_video"`
}

type wireChannel struct {
	ID       string `json:"id"`
	GuildID  string `json:"guild_id"`
	Name     string `json:"name"`
	Type     int    `json:"type"`
	ParentID string `json:"parent_id"`
	Position int    `json:"position"`
	NSFW     bool   `json:"nsfw"`
}

// wireGuild is GUILD_CREATE, GUILD_UPDATE and GUILD_DELETE (the last only
// carries id and unavailable).
type wireGuild struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	OwnerID     string           `json:"owner_id"`
	Icon        string           `json:"icon"`
	MemberCount int              `json:"member_count"`
	Unavailable bool             `json:"unavailable"`
	Channels    []wireChannel    `json:"channels"`
	Threads     []wireChannel    `json:"threads"`
	Members     []wireMember     `json:"members"`
	Presences   []wirePresence   `json:"presences"`
	VoiceStates []wireVoiceState `json:"voice_states"`
}

type wireMembersChunk struct {
	GuildID   string         `json:"guild_id"`
	Members   []wireMember   `json:"members"`
	Presences []wirePresence `json:"presences"`
}
