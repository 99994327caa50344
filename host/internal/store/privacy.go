package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Tracking says which kinds of activity a guild collects. Guild and channel
// metadata (names, counts) are always kept; everything about members needs
// a switch.
type Tracking struct {
	Presence bool `json:"presence"` // presence.update: status, clients, sessions
	Messages bool `json:"messages"` // message.create|update|delete metadata (never content)
	Typing   bool `json:"typing"`   // typing.start
	Voice    bool `json:"voice"`    // voice.state
	Members  bool `json:"members"`  // member.join|leave|update, ban.add|remove
}

// Retention says how many days each kind of data is kept; 0 keeps it
// until the guild or the member is deleted.
type Retention struct {
	EventsDays     int `json:"events_days"`      // the raw event log, role and membership history
	PresenceDays   int `json:"presence_days"`    // presence sessions
	MessagesDays   int `json:"messages_days"`    // message metadata and typing
	ScoresDays     int `json:"scores_days"`      // score history (tables registered under "scores")
	PluginDataDays int `json:"plugin_data_days"` // plugin values tied to a member, since last written
	AggregatesDays int `json:"aggregates_days"`  // hourly activity totals; 0 (default) keeps them
}

// DefaultRetention is what a guild keeps until its admin says otherwise.
func DefaultRetention() Retention {
	return Retention{EventsDays: 30, PresenceDays: 90, MessagesDays: 90, ScoresDays: 90, PluginDataDays: 90}
}

// GuildSettings is what a guild collects and keeps.
type GuildSettings struct {
	GuildID string `json:"guild_id"`
	// Configured is false for a guild whose admin never saved settings: it
	// collects nothing but guild and channel metadata.
	Configured    bool      `json:"configured"`
	Timezone      string    `json:"timezone"`
	Tracking      Tracking  `json:"tracking"`
	Retention     Retention `json:"retention"`
	DeleteOnLeave bool      `json:"delete_on_leave"`
	// RemovalRequestedAt is set when an admin asked to delete the guild's
	// data; it happens after the grace period unless cancelled.
	RemovalRequestedAt *time.Time `json:"removal_requested_at,omitempty"`
	UpdatedBy          string     `json:"updated_by,omitempty"`
	UpdatedAt          *time.Time `json:"updated_at,omitempty"`
}

const settingsCols = `s.guild_id, s.track_presence, s.track_messages, s.track_typing, s.track_voice, s.track_members,
	s.events_days, s.presence_days, s.messages_days, s.scores_days, s.plugin_data_days, s.aggregates_days,
	s.delete_on_leave, s.removal_requested_at, s.updated_by, s.updated_at, COALESCE(g.timezone, 'UTC')`

func scanSettings(sc interface{ Scan(...any) error }) (GuildSettings, error) {
	var g GuildSettings
	var removal sql.NullInt64
	var updated int64
	t, r := &g.Tracking, &g.Retention
	err := sc.Scan(&g.GuildID, &t.Presence, &t.Messages, &t.Typing, &t.Voice, &t.Members,
		&r.EventsDays, &r.PresenceDays, &r.MessagesDays, &r.ScoresDays, &r.PluginDataDays, &r.AggregatesDays,
		&g.DeleteOnLeave, &removal, &g.UpdatedBy, &updated, &g.Timezone)
	g.Configured = true
	g.RemovalRequestedAt = nullMS(removal)
	u := fromMS(updated)
	g.UpdatedAt = &u
	return g, err
}

// GetGuildSettings returns a guild's settings. A guild never configured
// gets the defaults with Configured false (it collects nothing).
func (s *Store) GetGuildSettings(ctx context.Context, guildID string) (GuildSettings, error) {
	g, err := scanSettings(s.r.QueryRowContext(ctx, s.q(`SELECT `+settingsCols+`
		FROM guild_settings s LEFT JOIN guilds g ON g.id = s.guild_id WHERE s.guild_id = ?`), guildID))
	if errors.Is(err, sql.ErrNoRows) {
		g = GuildSettings{GuildID: guildID, Timezone: "UTC", Retention: DefaultRetention()}
		err = s.r.QueryRowContext(ctx, s.q(`SELECT timezone FROM guilds WHERE id = ?`), guildID).Scan(&g.Timezone)
		if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	}
	if err != nil {
		return g, fmt.Errorf("store: guild settings %s: %w", guildID, err)
	}
	return g, nil
}

// ListGuildSettings returns the settings of every configured guild.
func (s *Store) ListGuildSettings(ctx context.Context) ([]GuildSettings, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT `+settingsCols+` FROM guild_settings s LEFT JOIN guilds g ON g.id = s.guild_id ORDER BY s.guild_id`)
	if err != nil {
		return nil, fmt.Errorf("store: list guild settings: %w", err)
	}
	defer rs.Close()
	var out []GuildSettings
	for rs.Next() {
		g, err := scanSettings(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list guild settings: %w", err)
		}
		out = append(out, g)
	}
	return out, rs.Err()
}

// PutGuildSettings saves a guild's settings (and its timezone, on the
// guilds row, created if the guild was not seen yet). RemovalRequestedAt is
// not changed here: see RequestGuildRemoval.
func (s *Store) PutGuildSettings(ctx context.Context, g GuildSettings) error {
	now := ms(s.now())
	if g.Timezone == "" {
		g.Timezone = "UTC"
	}
	t, r := g.Tracking, g.Retention
	err := s.privacyTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO guilds (id, timezone, first_seen, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET timezone = excluded.timezone`), g.GuildID, g.Timezone, now, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO guild_settings (guild_id, track_presence, track_messages, track_typing,
			track_voice, track_members, events_days, presence_days, messages_days, scores_days, plugin_data_days,
			aggregates_days, delete_on_leave, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (guild_id) DO UPDATE SET track_presence = excluded.track_presence, track_messages = excluded.track_messages,
			track_typing = excluded.track_typing, track_voice = excluded.track_voice, track_members = excluded.track_members,
			events_days = excluded.events_days, presence_days = excluded.presence_days, messages_days = excluded.messages_days,
			scores_days = excluded.scores_days, plugin_data_days = excluded.plugin_data_days,
			aggregates_days = excluded.aggregates_days, delete_on_leave = excluded.delete_on_leave,
			updated_by = excluded.updated_by, updated_at = excluded.updated_at`),
			g.GuildID, t.Presence, t.Messages, t.Typing, t.Voice, t.Members, r.EventsDays, r.PresenceDays, r.MessagesDays,
			r.ScoresDays, r.PluginDataDays, r.AggregatesDays, g.DeleteOnLeave, g.UpdatedBy, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put guild settings %s: %w", g.GuildID, err)
	}
	return nil
}

// RequestGuildRemoval marks a guild's data for deletion after the grace
// period (at == nil cancels). While marked, nothing is ingested for it.
func (s *Store) RequestGuildRemoval(ctx context.Context, guildID, by string, at *time.Time) error {
	var v any
	if at != nil {
		v = ms(*at)
	}
	err := s.privacyTx(ctx, func(tx *sql.Tx) error {
		now := ms(s.now())
		// A guild never configured gets a row that collects nothing.
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO guild_settings (guild_id, updated_by, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (guild_id) DO NOTHING`), guildID, by, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`UPDATE guild_settings SET removal_requested_at = ?, updated_by = ?, updated_at = ? WHERE guild_id = ?`),
			v, by, now, guildID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: guild removal %s: %w", guildID, err)
	}
	return nil
}

// GuildsToPurge returns the guilds whose data is due for deletion: the bot
// left them (guilds.removed_at) or an admin asked, before cutoff.
func (s *Store) GuildsToPurge(ctx context.Context, cutoff time.Time) ([]string, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT id FROM guilds WHERE removed_at IS NOT NULL AND removed_at < ?
		UNION SELECT guild_id FROM guild_settings WHERE removal_requested_at IS NOT NULL AND removal_requested_at < ?`), ms(cutoff), ms(cutoff))
	if err != nil {
		return nil, fmt.Errorf("store: guilds to purge: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: guilds to purge: %w", err)
		}
		out = append(out, id)
	}
	return out, rs.Err()
}

// OptOut is a person who asked not to be tracked, in one guild or (GuildID
// "") in all of them.
type OptOut struct {
	UserID    string    `json:"user_id"`
	GuildID   string    `json:"guild_id"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// AddOptOut records an opt-out (again is a no-op).
func (s *Store) AddOptOut(ctx context.Context, o OptOut) error {
	err := s.privacyTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO opt_outs (user_id, guild_id, created_by, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, guild_id) DO NOTHING`), o.UserID, o.GuildID, o.CreatedBy, ms(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: add opt-out: %w", err)
	}
	return nil
}

// RemoveOptOut lifts an opt-out; ErrNotFound if there was none.
func (s *Store) RemoveOptOut(ctx context.Context, userID, guildID string) error {
	var n int64
	err := s.privacyTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM opt_outs WHERE user_id = ? AND guild_id = ?`), userID, guildID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrNotFound // nothing changed: roll back the version bump
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: remove opt-out: %w", err)
	}
	return nil
}

// ListOptOuts returns the opt-outs that apply in guildID (its own and the
// instance-wide ones); guildID "" returns every opt-out.
func (s *Store) ListOptOuts(ctx context.Context, guildID string) ([]OptOut, error) {
	q, args := `SELECT user_id, guild_id, created_by, created_at FROM opt_outs ORDER BY guild_id, user_id`, []any{}
	if guildID != "" {
		q, args = `SELECT user_id, guild_id, created_by, created_at FROM opt_outs WHERE guild_id IN (?, '') ORDER BY guild_id, user_id`, []any{guildID}
	}
	rs, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list opt-outs: %w", err)
	}
	defer rs.Close()
	out := []OptOut{}
	for rs.Next() {
		var o OptOut
		var at int64
		if err := rs.Scan(&o.UserID, &o.GuildID, &o.CreatedBy, &at); err != nil {
			return nil, fmt.Errorf("store: list opt-outs: %w", err)
		}
		o.CreatedAt = fromMS(at)
		out = append(out, o)
	}
	return out, rs.Err()
}

// PrivacyVersion changes whenever guild settings or opt-outs change, in
// this process or another.
func (s *Store) PrivacyVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, `SELECT version FROM privacy_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: privacy version: %w", err)
	}
	return v, nil
}

func (s *Store) privacyTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := f(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE privacy_state SET version = version + 1 WHERE id = 1`)
		return err
	})
}

// PrivacyRequest is the record of one export or deletion.
type PrivacyRequest struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"` // export | delete | guild_delete
	UserID      string          `json:"user_id,omitempty"`
	GuildID     string          `json:"guild_id,omitempty"` // "" for every guild
	RequestedBy string          `json:"requested_by"`
	Reason      string          `json:"reason,omitempty"`
	Status      string          `json:"status"` // done | partial | failed
	Detail      json.RawMessage `json:"detail"`
	CreatedAt   time.Time       `json:"created_at"`
	CompletedAt *time.Time      `json:"completed_at,omitempty"`
}

// AddPrivacyRequest records a request; ID and CreatedAt are filled in when
// empty.
func (s *Store) AddPrivacyRequest(ctx context.Context, r *PrivacyRequest) error {
	if r.ID == "" {
		b := make([]byte, 8)
		rand.Read(b) //nolint:errcheck // crypto/rand does not fail
		r.ID = "pr_" + hex.EncodeToString(b)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	if len(r.Detail) == 0 {
		r.Detail = json.RawMessage("{}")
	}
	var done any
	if r.CompletedAt != nil {
		done = ms(*r.CompletedAt)
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO privacy_requests (id, kind, user_id, guild_id, requested_by, reason, status, detail, created_at, completed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), r.ID, r.Kind, r.UserID, r.GuildID, r.RequestedBy, truncate(r.Reason, 512), r.Status,
		string(r.Detail), ms(r.CreatedAt), done)
	if err != nil {
		return fmt.Errorf("store: add privacy request: %w", err)
	}
	return nil
}

// ListPrivacyRequests returns the newest requests about guildID (with
// guildID "", every request), at most limit.
func (s *Store) ListPrivacyRequests(ctx context.Context, guildID string, limit int) ([]PrivacyRequest, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := `SELECT id, kind, user_id, guild_id, requested_by, reason, status, detail, created_at, completed_at FROM privacy_requests`
	args := []any{}
	if guildID != "" {
		q += ` WHERE guild_id = ?`
		args = append(args, guildID)
	}
	q += ` ORDER BY created_at DESC, id LIMIT ?`
	args = append(args, limit)
	rs, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list privacy requests: %w", err)
	}
	defer rs.Close()
	out := []PrivacyRequest{}
	for rs.Next() {
		var r PrivacyRequest
		var detail string
		var at int64
		var done sql.NullInt64
		if err := rs.Scan(&r.ID, &r.Kind, &r.UserID, &r.GuildID, &r.RequestedBy, &r.Reason, &r.Status, &detail, &at, &done); err != nil {
			return nil, fmt.Errorf("store: list privacy requests: %w", err)
		}
		r.Detail, r.CreatedAt, r.CompletedAt = json.RawMessage(detail), fromMS(at), nullMS(done)
		out = append(out, r)
	}
	return out, rs.Err()
}

// LeftMembers returns up to limit members who left the guild and still
// have a members row (for guilds that delete leavers' data).
func (s *Store) LeftMembers(ctx context.Context, guildID string, limit int) ([]string, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT user_id FROM members WHERE guild_id = ? AND left_at IS NOT NULL ORDER BY user_id LIMIT ?`), guildID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: left members: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var u string
		if err := rs.Scan(&u); err != nil {
			return nil, fmt.Errorf("store: left members: %w", err)
		}
		out = append(out, u)
	}
	return out, rs.Err()
}
