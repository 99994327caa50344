package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// EventQuery filters a guild's timeline. Zero fields do not filter.
type EventQuery struct {
	Kinds   []event.Kind
	UserID  string
	Channel string
	From    time.Time // inclusive
	To      time.Time // exclusive
	Asc     bool      // oldest first; the default is newest first
	Limit   int
	Cursor  string
}

// EventPage is one page of the timeline.
type EventPage struct {
	Events []event.Event `json:"events"`
	Next   string        `json:"next_cursor,omitempty"`
}

// ListEvents returns a page of a guild's stored events.
func (s *Store) ListEvents(ctx context.Context, guildID string, eq EventQuery) (EventPage, error) {
	page := EventPage{Events: []event.Event{}}
	limit := clampLimit(eq.Limit)
	dir, cmp := "DESC", "<"
	if eq.Asc {
		dir, cmp = "ASC", ">"
	}
	scope := "events:" + dir
	where := []string{"guild_id = ?"}
	args := []any{guildID}
	if eq.UserID != "" {
		where = append(where, "user_id = ?")
		args = append(args, eq.UserID)
	}
	if eq.Channel != "" {
		where = append(where, "channel_id = ?")
		args = append(args, eq.Channel)
	}
	if len(eq.Kinds) > 0 {
		where = append(where, "kind IN ("+inList(len(eq.Kinds))+")")
		for _, k := range eq.Kinds {
			args = append(args, string(k))
		}
	}
	if !eq.From.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, ms(eq.From))
	}
	if !eq.To.IsZero() {
		where = append(where, "at < ?")
		args = append(args, ms(eq.To))
	}
	if eq.Cursor != "" {
		c, err := decodeCursor(eq.Cursor, scope)
		if err != nil {
			return page, err
		}
		where = append(where, "(at "+cmp+" ? OR (at = ? AND id "+cmp+" ?))")
		args = append(args, c.Int, c.Int, c.ID)
	}
	q := `SELECT id, kind, guild_id, user_id, channel_id, at, data FROM events WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY at ` + dir + `, id ` + dir + ` LIMIT ?`
	args = append(args, limit+1)
	rs, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return page, fmt.Errorf("store: list events: %w", err)
	}
	defer rs.Close()
	var last cursor
	for rs.Next() {
		var ev event.Event
		var at int64
		var data []byte
		if err := rs.Scan(&ev.ID, &ev.Kind, &ev.GuildID, &ev.UserID, &ev.ChannelID, &at, &data); err != nil {
			return page, fmt.Errorf("store: list events: %w", err)
		}
		if len(page.Events) == limit {
			page.Next = last.encode()
			break
		}
		ev.At = fromMS(at)
		if ev.Data, err = event.NewData(ev.Kind); err == nil {
			err = json.Unmarshal(data, ev.Data)
		}
		if err != nil {
			return page, fmt.Errorf("store: decode event %s: %w", ev.ID, err)
		}
		page.Events = append(page.Events, ev)
		last = cursor{Scope: scope, Int: at, ID: ev.ID}
	}
	return page, rs.Err()
}

// CountEvents returns how many events of a guild are stored. It scans an
// index, so it is for tools and tests, not request paths.
func (s *Store) CountEvents(ctx context.Context, guildID string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM events WHERE guild_id = ?`), guildID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count events: %w", err)
	}
	return n, nil
}
