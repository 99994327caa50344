package store

import (
	"context"
	"fmt"
	"sort"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// The analytics aggregates (migration 00005) are derived in the same pass
// and transaction as everything else a batch changes, from the same loaded
// member state, so they cost a few map updates per event and one upsert per
// member-hour (presence) or member-day (messages) per batch.

const dayMS = 24 * hourMS

// maxPresenceStretch bounds the time one presence change can account for: a
// member who seems connected for longer (the host missed their going
// offline) is not credited beyond it.
const maxPresenceStretch = 7 * dayMS

type presenceTotals struct {
	online, multi int64
	clients       [3]int64 // event.Clients order
}

type rhythmTotals struct {
	messages, gaps, peak int64
	gapSum, gapSumSq     float64
}

type channelDayKey struct {
	guild, user, channel string
	day                  int64
}

// accountPresence runs before a presence change at time at is applied,
// with next the clients connected afterwards. When the set of connected
// clients changes, the member is credited with the time since the last
// change (presence_mark), split by UTC hour. Changes that keep the set (an
// idle toggle, a new activity) cost nothing here.
func (d *derivation) accountPresence(guild, user string, m *memberState, at int64, next [3]bool) {
	var on [3]bool
	n := 0
	for i, c := range m.pres.clients {
		if c.status != "" {
			on[i] = true
			n++
		}
	}
	if on == next {
		return
	}
	from := m.pres.mark
	if from <= 0 {
		for _, c := range m.pres.clients {
			from = max(from, c.since)
		}
	}
	m.pres.mark = at
	if n == 0 || from <= 0 || at <= from {
		return
	}
	if at-from > maxPresenceStretch {
		from = at - maxPresenceStretch
	}
	for t := from; t < at; {
		hour := t - t%hourMS
		end := min(at, hour+hourMS)
		dur := end - t
		for _, u := range [2]string{user, ""} {
			k := activityKey{guild, u, hour}
			p := d.presence[k]
			if p == nil {
				p = &presenceTotals{}
				d.presence[k] = p
			}
			p.online += dur
			if n >= 2 {
				p.multi += dur
			}
			for i := range on {
				if on[i] {
					p.clients[i] += dur
				}
			}
		}
		t = end
	}
}

// messageRhythm records a new message's gap since the member's previous
// message, its clock-minute count and its channel. It runs before the
// message updates the member row.
func (d *derivation) messageRhythm(ev *event.Event, m *memberState, at int64) {
	day := at - at%dayMS
	k := activityKey{ev.GuildID, ev.UserID, day}
	r := d.rhythm[k]
	if r == nil {
		r = &rhythmTotals{}
		d.rhythm[k] = r
	}
	r.messages++
	last := m.row.lastMessageAt
	switch {
	case last > 0 && at >= last:
		gap := float64(at-last) / 1000
		r.gaps++
		r.gapSum += gap
		r.gapSumSq += gap * gap
		if at/60000 == last/60000 {
			m.row.lastMinuteCount++
		} else {
			m.row.lastMinuteCount = 1
		}
		r.peak = max(r.peak, m.row.lastMinuteCount)
	case last == 0:
		m.row.lastMinuteCount = 1
		r.peak = max(r.peak, 1)
	default:
		// Older than the member's latest message: counted, but it says
		// nothing reliable about gaps.
		r.peak = max(r.peak, 1)
	}
	if m.row.firstMessageAt == 0 || at < m.row.firstMessageAt {
		m.row.firstMessageAt = at
	}
	if ev.ChannelID != "" {
		d.chanMsgs[channelDayKey{ev.GuildID, ev.UserID, ev.ChannelID, day}]++
	}
}

func sortedKeys[V any](m map[activityKey]V) []activityKey {
	keys := make([]activityKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// A fixed order keeps concurrent writers from deadlocking on PostgreSQL.
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.guild != b.guild {
			return a.guild < b.guild
		}
		if a.user != b.user {
			return a.user < b.user
		}
		return a.hour < b.hour
	})
	return keys
}

// writeAnalytics upserts the batch's additions to the analytics aggregates.
func (d *derivation) writeAnalytics(ctx context.Context, s *Store, bt *batchTx) error {
	if len(d.roleChange) > 0 {
		type roleDay struct {
			guild, role string
			day         int64
			added       bool
		}
		type memberDay struct {
			guild, user string
			day         int64
		}
		roles, members := map[roleDay]int64{}, map[memberDay]int64{}
		for _, r := range d.roleChange {
			day := r.at - r.at%dayMS
			roles[roleDay{r.guild, r.role, day, r.added}]++
			members[memberDay{r.guild, r.user, day}]++
		}
		args := make([]any, 0, len(roles)*5)
		for k, n := range roles {
			args = append(args, k.guild, k.day, k.role, k.added, n)
		}
		if err := s.bulk(ctx, bt, "role_changes_daily", `guild_id, day, role_id, added, changes`,
			`ON CONFLICT (guild_id, day, role_id, added) DO UPDATE SET changes = role_changes_daily.changes + excluded.changes`, args); err != nil {
			return fmt.Errorf("role changes per day: %w", err)
		}
		args = make([]any, 0, len(members)*4)
		for k, n := range members {
			args = append(args, k.guild, k.day, k.user, n)
		}
		if err := s.bulk(ctx, bt, "role_members_daily", `guild_id, day, user_id, changes`,
			`ON CONFLICT (guild_id, day, user_id) DO UPDATE SET changes = role_members_daily.changes + excluded.changes`, args); err != nil {
			return fmt.Errorf("role members per day: %w", err)
		}
	}
	if len(d.presence) > 0 {
		args := make([]any, 0, len(d.presence)*8)
		for _, k := range sortedKeys(d.presence) {
			p := d.presence[k]
			args = append(args, k.guild, k.user, k.hour, p.online, p.multi, p.clients[0], p.clients[1], p.clients[2])
		}
		if err := s.bulk(ctx, bt, "presence_hourly", `guild_id, user_id, hour, online_ms, multi_ms, desktop_ms, mobile_ms, web_ms`,
			`ON CONFLICT (guild_id, user_id, hour) DO UPDATE SET
			online_ms = presence_hourly.online_ms + excluded.online_ms,
			multi_ms = presence_hourly.multi_ms + excluded.multi_ms,
			desktop_ms = presence_hourly.desktop_ms + excluded.desktop_ms,
			mobile_ms = presence_hourly.mobile_ms + excluded.mobile_ms,
			web_ms = presence_hourly.web_ms + excluded.web_ms`, args); err != nil {
			return fmt.Errorf("presence hours: %w", err)
		}
	}
	if len(d.rhythm) > 0 {
		args := make([]any, 0, len(d.rhythm)*8)
		for _, k := range sortedKeys(d.rhythm) {
			r := d.rhythm[k]
			args = append(args, k.guild, k.user, k.hour, r.messages, r.gaps, r.gapSum, r.gapSumSq, r.peak)
		}
		if err := s.bulk(ctx, bt, "message_rhythm_daily", `guild_id, user_id, day, messages, gaps, gap_sum, gap_sumsq, peak_per_minute`,
			`ON CONFLICT (guild_id, user_id, day) DO UPDATE SET
			messages = message_rhythm_daily.messages + excluded.messages,
			gaps = message_rhythm_daily.gaps + excluded.gaps,
			gap_sum = message_rhythm_daily.gap_sum + excluded.gap_sum,
			gap_sumsq = message_rhythm_daily.gap_sumsq + excluded.gap_sumsq,
			peak_per_minute = `+d.greatest+`(message_rhythm_daily.peak_per_minute, excluded.peak_per_minute)`, args); err != nil {
			return fmt.Errorf("message rhythm: %w", err)
		}
	}
	if len(d.chanMsgs) > 0 {
		keys := make([]channelDayKey, 0, len(d.chanMsgs))
		for k := range d.chanMsgs {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := keys[i], keys[j]
			if a.guild != b.guild {
				return a.guild < b.guild
			}
			if a.user != b.user {
				return a.user < b.user
			}
			if a.day != b.day {
				return a.day < b.day
			}
			return a.channel < b.channel
		})
		args := make([]any, 0, len(keys)*5)
		for _, k := range keys {
			args = append(args, k.guild, k.user, k.day, k.channel, d.chanMsgs[k])
		}
		if err := s.bulk(ctx, bt, "channel_messages_daily", `guild_id, user_id, day, channel_id, messages`,
			`ON CONFLICT (guild_id, user_id, day, channel_id) DO UPDATE SET
			messages = channel_messages_daily.messages + excluded.messages`, args); err != nil {
			return fmt.Errorf("channel messages: %w", err)
		}
	}
	return nil
}
