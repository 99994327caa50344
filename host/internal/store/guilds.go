package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Guild is a Discord guild the host has seen events for.
type Guild struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	OwnerID     string     `json:"owner_id,omitempty"`
	Icon        string     `json:"icon,omitempty"`
	MemberCount int        `json:"member_count"` // as Discord reports it
	Members     int        `json:"members"`      // members tracked here and still in the guild
	Online      int        `json:"online"`
	Timezone    string     `json:"timezone"`
	FirstSeen   time.Time  `json:"first_seen"`
	UpdatedAt   time.Time  `json:"updated_at"`
	RemovedAt   *time.Time `json:"removed_at,omitempty"`
}

// The counts match the partial indexes members_present and
// member_presence_online, which makes them index-only. A member who leaves
// is set offline, so the online count needs no join.
const guildCols = `g.id, g.name, g.owner_id, g.icon, g.member_count, g.timezone, g.first_seen, g.updated_at, g.removed_at,
	(SELECT COUNT(*) FROM members m WHERE m.guild_id = g.id AND m.left_at IS NULL),
	(SELECT COUNT(*) FROM member_presence p WHERE p.guild_id = g.id AND p.status <> 'offline')`

func scanGuild(sc interface{ Scan(...any) error }) (Guild, error) {
	var g Guild
	var first, updated int64
	var removed sql.NullInt64
	err := sc.Scan(&g.ID, &g.Name, &g.OwnerID, &g.Icon, &g.MemberCount, &g.Timezone, &first, &updated, &removed, &g.Members, &g.Online)
	g.FirstSeen, g.UpdatedAt, g.RemovedAt = fromMS(first), fromMS(updated), nullMS(removed)
	return g, err
}

// ListGuilds returns every guild, by name.
func (s *Store) ListGuilds(ctx context.Context) ([]Guild, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT `+guildCols+` FROM guilds g ORDER BY g.name, g.id`)
	if err != nil {
		return nil, fmt.Errorf("store: list guilds: %w", err)
	}
	defer rs.Close()
	out := []Guild{}
	for rs.Next() {
		g, err := scanGuild(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list guilds: %w", err)
		}
		out = append(out, g)
	}
	return out, rs.Err()
}

// GetGuild returns one guild or ErrNotFound.
func (s *Store) GetGuild(ctx context.Context, id string) (Guild, error) {
	g, err := scanGuild(s.r.QueryRowContext(ctx, s.q(`SELECT `+guildCols+` FROM guilds g WHERE g.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("store: guild %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("store: get guild %s: %w", id, err)
	}
	return g, nil
}

// GuildExists reports whether the host knows the guild; it is the cheap
// check before a guild's sub-resources are read.
func (s *Store) GuildExists(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM guilds WHERE id = ?`), id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: guild %s: %w", id, err)
	}
	return n > 0, nil
}

// LatestEventAt returns the time of the newest stored event of a guild, or
// the zero time when it has none.
func (s *Store) LatestEventAt(ctx context.Context, guildID string) (time.Time, error) {
	var v sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT MAX(at) FROM events WHERE guild_id = ?`), guildID).Scan(&v)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: latest event of %s: %w", guildID, err)
	}
	if !v.Valid {
		return time.Time{}, nil
	}
	return fromMS(v.Int64), nil
}

// Channel is a guild channel as last reported.
type Channel struct {
	ID        string     `json:"id"`
	GuildID   string     `json:"guild_id"`
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	ParentID  string     `json:"parent_id,omitempty"`
	Position  int        `json:"position"`
	NSFW      bool       `json:"nsfw"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// ListChannels returns a guild's channels by position.
func (s *Store) ListChannels(ctx context.Context, guildID string) ([]Channel, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT id, guild_id, name, type, parent_id, position, nsfw, deleted_at
		FROM channels WHERE guild_id = ? ORDER BY position, name, id`), guildID)
	if err != nil {
		return nil, fmt.Errorf("store: list channels: %w", err)
	}
	defer rs.Close()
	out := []Channel{}
	for rs.Next() {
		var c Channel
		var del sql.NullInt64
		if err := rs.Scan(&c.ID, &c.GuildID, &c.Name, &c.Type, &c.ParentID, &c.Position, &c.NSFW, &del); err != nil {
			return nil, fmt.Errorf("store: list channels: %w", err)
		}
		c.DeletedAt = nullMS(del)
		out = append(out, c)
	}
	return out, rs.Err()
}
