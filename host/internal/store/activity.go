package store

import (
	"context"
	"fmt"
	"time"
)

// ActivityHour is what happened in one hour.
type ActivityHour struct {
	Hour            time.Time `json:"hour"`
	Messages        int64     `json:"messages"`
	Edits           int64     `json:"edits"`
	Deletes         int64     `json:"deletes"`
	Typing          int64     `json:"typing"`
	PresenceUpdates int64     `json:"presence_updates"`
	VoiceUpdates    int64     `json:"voice_updates"`
	Joins           int64     `json:"joins"`
	Leaves          int64     `json:"leaves"`
}

// Activity returns the hourly series of a guild (userID "") or of one member
// over [from, to), one entry per hour including empty hours.
func (s *Store) Activity(ctx context.Context, guildID, userID string, from, to time.Time) ([]ActivityHour, error) {
	a := ms(from) - ms(from)%hourMS
	b := ms(to)
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT hour, messages, edits, deletes, typing, presence_updates, voice_updates, joins, leaves
		FROM activity_hourly WHERE guild_id = ? AND user_id = ? AND hour >= ? AND hour < ? ORDER BY hour`), guildID, userID, a, b)
	if err != nil {
		return nil, fmt.Errorf("store: activity: %w", err)
	}
	defer rs.Close()
	byHour := map[int64]ActivityHour{}
	for rs.Next() {
		var h ActivityHour
		var hour int64
		if err := rs.Scan(&hour, &h.Messages, &h.Edits, &h.Deletes, &h.Typing, &h.PresenceUpdates, &h.VoiceUpdates, &h.Joins, &h.Leaves); err != nil {
			return nil, fmt.Errorf("store: activity: %w", err)
		}
		h.Hour = fromMS(hour)
		byHour[hour] = h
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: activity: %w", err)
	}
	out := make([]ActivityHour, 0, (b-a)/hourMS+1)
	for h := a; h < b; h += hourMS {
		v, ok := byHour[h]
		if !ok {
			v.Hour = fromMS(h)
		}
		out = append(out, v)
	}
	return out, nil
}
