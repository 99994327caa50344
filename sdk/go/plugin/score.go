package plugin

import "time"

// ScoreRequest is the input of the score hook: statistics per member over a
// window, computed by the host from its aggregates.
type ScoreRequest struct {
	GuildID string        `json:"guild_id"`
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Members []MemberStats `json:"members"`
}

// MemberStats describes one member over the window of a ScoreRequest. Times
// are seconds; absent means unknown.
type MemberStats struct {
	UserID string `json:"user_id"`
	Bot    bool   `json:"bot,omitempty"`
	// AccountAgeDays is the account's age at the end of the window.
	AccountAgeDays float64 `json:"account_age_days"`
	// JoinedDaysAgo is how long ago the member joined, at the end of the window.
	JoinedDaysAgo *float64 `json:"joined_days_ago,omitempty"`
	// OnlineSeconds is time online on any client; ByClient splits it.
	OnlineSeconds      int64            `json:"online_seconds"`
	ByClient           map[string]int64 `json:"by_client,omitempty"`
	MultiClientSeconds int64            `json:"multi_client_seconds"`
	Messages           int64            `json:"messages"`
	MessagesTotal      int64            `json:"messages_total"`
	// SecondsSinceLastMessage is nil when the member never posted.
	SecondsSinceLastMessage *int64 `json:"seconds_since_last_message,omitempty"`
	// FirstMessageAfterJoinSeconds is nil when unknown or never posted.
	FirstMessageAfterJoinSeconds *int64 `json:"first_message_after_join_seconds,omitempty"`
	Channels                     int    `json:"channels"`
	// ActiveHours counts messages per hour of day (0–23) in the guild's
	// time zone.
	ActiveHours [24]int64 `json:"active_hours"`
	// MessageIntervalCV is the coefficient of variation of the gaps between
	// messages (low: machine-like regularity); nil with fewer than 3 messages.
	MessageIntervalCV *float64 `json:"message_interval_cv,omitempty"`
	// MaxMessagesPerMinute is the largest number of messages in one minute.
	MaxMessagesPerMinute int64 `json:"max_messages_per_minute"`
	RoleChanges          int64 `json:"role_changes"`
}

// ScoreResponse is the output of the score hook.
type ScoreResponse struct {
	Scores []Score `json:"scores"`
}

// Score is one member's score from 0 to 100 with the factors that made it.
type Score struct {
	UserID      string   `json:"user_id"`
	Score       float64  `json:"score"`
	Factors     []Factor `json:"factors"`
	Explanation string   `json:"explanation"`
}

// Factor is a named contribution to a score, in score points.
type Factor struct {
	Name         string  `json:"name"`
	Contribution float64 `json:"contribution"`
	Value        any     `json:"value,omitempty"`
}
