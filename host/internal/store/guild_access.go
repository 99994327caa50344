package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// GuildAccess is a guild's access settings: whether plain members may see it
// (as viewers) and which Discord roles make someone a moderator.
type GuildAccess struct {
	GuildID        string    `json:"guild_id"`
	MemberAccess   bool      `json:"member_access"`
	ModeratorRoles []string  `json:"moderator_roles"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// GetGuildAccess returns a guild's settings; a guild never configured gets
// the defaults (no member access, no moderator roles).
func (s *Store) GetGuildAccess(ctx context.Context, guildID string) (GuildAccess, error) {
	ga := GuildAccess{GuildID: guildID, ModeratorRoles: []string{}}
	var roles string
	var updated int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT member_access, moderator_roles, updated_at FROM guild_access WHERE guild_id = ?`), guildID).
		Scan(&ga.MemberAccess, &roles, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return ga, nil
	}
	if err != nil {
		return ga, fmt.Errorf("store: guild access %s: %w", guildID, err)
	}
	if roles != "" {
		ga.ModeratorRoles = strings.Split(roles, ",")
	}
	ga.UpdatedAt = fromMS(updated)
	return ga, nil
}

// SetGuildAccess stores a guild's settings.
func (s *Store) SetGuildAccess(ctx context.Context, ga GuildAccess) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO guild_access (guild_id, member_access, moderator_roles, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (guild_id) DO UPDATE SET member_access = excluded.member_access, moderator_roles = excluded.moderator_roles, updated_at = excluded.updated_at`),
		ga.GuildID, ga.MemberAccess, strings.Join(ga.ModeratorRoles, ","), ms(s.now()))
	if err != nil {
		return fmt.Errorf("store: set guild access %s: %w", ga.GuildID, err)
	}
	return nil
}
