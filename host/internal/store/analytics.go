package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// HourValue is one UTC hour of an hourly metric.
type HourValue struct {
	Hour  time.Time
	Value float64
}

// Hourly metrics HourlySeries answers.
const (
	MetricMessages = "messages"
	MetricTyping   = "typing"
	MetricPresence = "presence" // hours online (member-hours for a guild)
)

// HourlySeries returns the non-empty hours of a metric over [from, to) for
// a guild (userID "") or one member, from the hourly aggregates. Presence
// includes the stretch still open at now.
func (s *Store) HourlySeries(ctx context.Context, guildID, userID, metric string, from, to, now time.Time) ([]HourValue, error) {
	a, b := ms(from)-ms(from)%hourMS, ms(to)
	var q string
	switch metric {
	case MetricMessages, MetricTyping:
		q = `SELECT hour, ` + metric + ` FROM activity_hourly WHERE guild_id = ? AND user_id = ? AND hour >= ? AND hour < ? ORDER BY hour`
	case MetricPresence:
		hs, err := s.PresenceHours(ctx, guildID, userID, from, to, now)
		if err != nil {
			return nil, err
		}
		out := make([]HourValue, 0, len(hs))
		for _, h := range hs {
			out = append(out, HourValue{Hour: h.Hour, Value: float64(h.OnlineMS) / float64(hourMS)})
		}
		return out, nil
	default:
		return nil, fmt.Errorf("store: unknown metric %q", metric)
	}
	rs, err := s.r.QueryContext(ctx, s.q(q), guildID, userID, a, b)
	if err != nil {
		return nil, fmt.Errorf("store: hourly %s: %w", metric, err)
	}
	defer rs.Close()
	var out []HourValue
	for rs.Next() {
		var h int64
		var v float64
		if err := rs.Scan(&h, &v); err != nil {
			return nil, fmt.Errorf("store: hourly %s: %w", metric, err)
		}
		out = append(out, HourValue{Hour: fromMS(h), Value: v})
	}
	return out, rs.Err()
}

// PresenceHour is time online in one UTC hour, in milliseconds.
type PresenceHour struct {
	Hour                       time.Time
	OnlineMS, MultiMS          int64
	DesktopMS, MobileMS, WebMS int64
}

// PresenceHours returns the non-empty hours of presence time over [from,
// to) of a guild (userID "": the sum over members) or of one member, plus
// the stretch that is still open (connected clients since the last change,
// up to now).
func (s *Store) PresenceHours(ctx context.Context, guildID, userID string, from, to, now time.Time) ([]PresenceHour, error) {
	a, b := ms(from)-ms(from)%hourMS, ms(to)
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT hour, online_ms, multi_ms, desktop_ms, mobile_ms, web_ms FROM presence_hourly
		WHERE guild_id = ? AND user_id = ? AND hour >= ? AND hour < ? ORDER BY hour`), guildID, userID, a, b)
	if err != nil {
		return nil, fmt.Errorf("store: presence hours: %w", err)
	}
	byHour := map[int64]*PresenceHour{}
	var order []int64
	for rs.Next() {
		var h int64
		p := &PresenceHour{}
		if err := rs.Scan(&h, &p.OnlineMS, &p.MultiMS, &p.DesktopMS, &p.MobileMS, &p.WebMS); err != nil {
			rs.Close()
			return nil, fmt.Errorf("store: presence hours: %w", err)
		}
		p.Hour = fromMS(h)
		byHour[h] = p
		order = append(order, h)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: presence hours: %w", err)
	}
	open, err := s.openPresence(ctx, guildID, userID)
	if err != nil {
		return nil, err
	}
	end := min(b, ms(now))
	for _, o := range open {
		addStretch(byHour, &order, o, max(a, o.mark), end)
	}
	out := make([]PresenceHour, 0, len(order))
	sortInt64(order)
	for _, h := range order {
		out = append(out, *byHour[h])
	}
	return out, nil
}

// openStretch is a member's set of connected clients since mark.
type openStretch struct {
	user    string
	mark    int64
	clients [3]bool
}

// openPresence returns the open stretches of one member, or of every
// connected member of the guild when userID is "".
func (s *Store) openPresence(ctx context.Context, guildID, userID string) ([]openStretch, error) {
	q := `SELECT user_id, presence_mark, desktop, mobile, web FROM member_presence WHERE guild_id = ? AND status <> 'offline'`
	args := []any{guildID}
	if userID != "" {
		q += ` AND user_id = ?`
		args = append(args, userID)
	}
	rs, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: open presence: %w", err)
	}
	defer rs.Close()
	var out []openStretch
	for rs.Next() {
		var o openStretch
		var d, m, w string
		if err := rs.Scan(&o.user, &o.mark, &d, &m, &w); err != nil {
			return nil, fmt.Errorf("store: open presence: %w", err)
		}
		o.clients = [3]bool{d != "", m != "", w != ""}
		if o.mark > 0 && o.clients != [3]bool{} {
			out = append(out, o)
		}
	}
	return out, rs.Err()
}

// addStretch credits an open stretch over [from, end) to hourly buckets.
func addStretch(byHour map[int64]*PresenceHour, order *[]int64, o openStretch, from, end int64) {
	n := 0
	for _, c := range o.clients {
		if c {
			n++
		}
	}
	for t := from; t < end; {
		hour := t - t%hourMS
		e := min(end, hour+hourMS)
		d := e - t
		p := byHour[hour]
		if p == nil {
			p = &PresenceHour{Hour: fromMS(hour)}
			byHour[hour] = p
			*order = append(*order, hour)
		}
		p.OnlineMS += d
		if n >= 2 {
			p.MultiMS += d
		}
		if o.clients[0] {
			p.DesktopMS += d
		}
		if o.clients[1] {
			p.MobileMS += d
		}
		if o.clients[2] {
			p.WebMS += d
		}
		t = e
	}
}

func sortInt64(v []int64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// RoleCount is how often a role was gained or lost.
type RoleCount struct {
	RoleID string `json:"role_id"`
	Count  int64  `json:"count"`
}

// RoleChange is one role gained or lost by a member.
type RoleChange struct {
	At     time.Time `json:"at"`
	UserID string    `json:"user_id"`
	RoleID string    `json:"role_id"`
	Added  bool      `json:"-"`
}

// RoleDrift is what happened to roles over a window.
type RoleDrift struct {
	Gained, Lost   []RoleCount
	MembersChanged int64
	Members        int64 // members present now (the churn rate's denominator)
	Timeline       []RoleChange
	Next           string
}

// RoleDrift summarises role changes in [from, to) of a guild or one member,
// with a page of the timeline, newest first.
func (s *Store) RoleDrift(ctx context.Context, guildID, userID string, from, to time.Time, limit int, after string) (RoleDrift, error) {
	var out RoleDrift
	where := `guild_id = ? AND at >= ? AND at < ?`
	args := []any{guildID, ms(from), ms(to)}
	// Counts: a member's few changes straight from role_changes; a guild's
	// from the per-day aggregates for the whole UTC days of the window and
	// role_changes for the partial days at its ends.
	counts := `SELECT role_id, added, COUNT(*) AS n FROM role_changes WHERE ` + where + ` AND user_id = ? GROUP BY role_id, added`
	distinct := `SELECT COUNT(DISTINCT user_id) FROM role_changes WHERE ` + where + ` AND user_id = ?`
	cargs := append(append([]any(nil), args...), userID)
	if userID != "" {
		where += ` AND user_id = ?`
		args = append(args, userID)
	} else {
		a, b := ms(from), ms(to)
		d0, d1 := (a+dayMS-1)/dayMS*dayMS, b/dayMS*dayMS // whole days [d0, d1)
		if d0 >= d1 {
			d0, d1 = b, b // no whole day: everything from role_changes
		}
		edges := `guild_id = ? AND ((at >= ? AND at < ?) OR (at >= ? AND at < ?))`
		counts = `SELECT role_id, added, CAST(SUM(n) AS BIGINT) AS n FROM (
			SELECT role_id, added, changes AS n FROM role_changes_daily WHERE guild_id = ? AND day >= ? AND day < ?
			UNION ALL SELECT role_id, added, 1 FROM role_changes WHERE ` + edges + `) x GROUP BY role_id, added`
		distinct = `SELECT COUNT(*) FROM (SELECT user_id FROM role_members_daily WHERE guild_id = ? AND day >= ? AND day < ?
			UNION SELECT user_id FROM role_changes WHERE ` + edges + `) x`
		cargs = []any{guildID, d0, d1, guildID, a, min(d0, b), d1, b}
	}
	rs, err := s.r.QueryContext(ctx, s.q(counts+` ORDER BY n DESC, role_id`), cargs...)
	if err != nil {
		return out, fmt.Errorf("store: role drift: %w", err)
	}
	out.Gained, out.Lost = []RoleCount{}, []RoleCount{}
	for rs.Next() {
		var rc RoleCount
		var added bool
		if err := rs.Scan(&rc.RoleID, &added, &rc.Count); err != nil {
			rs.Close()
			return out, fmt.Errorf("store: role drift: %w", err)
		}
		if added {
			out.Gained = append(out.Gained, rc)
		} else {
			out.Lost = append(out.Lost, rc)
		}
	}
	rs.Close()
	if err := s.r.QueryRowContext(ctx, s.q(distinct), cargs...).Scan(&out.MembersChanged); err != nil {
		return out, fmt.Errorf("store: role drift: %w", err)
	}
	if userID == "" {
		err = s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM members WHERE guild_id = ? AND left_at IS NULL`), guildID).Scan(&out.Members)
	} else {
		out.Members = 1
	}
	if err != nil {
		return out, fmt.Errorf("store: role drift: %w", err)
	}
	// Timeline, newest first, keyed by (at, event_id, role_id).
	tq := `SELECT at, user_id, role_id, added, event_id FROM role_changes WHERE ` + where
	targs := append([]any(nil), args...)
	if after != "" {
		c, err := decodeCursor(after, "roles")
		if err != nil {
			return out, err
		}
		tq += ` AND (at < ? OR (at = ? AND (event_id < ? OR (event_id = ? AND role_id < ?))))`
		targs = append(targs, c.Int, c.Int, c.ID, c.ID, c.Str)
	}
	tq += ` ORDER BY at DESC, event_id DESC, role_id DESC LIMIT ?`
	targs = append(targs, limit+1)
	rs, err = s.r.QueryContext(ctx, s.q(tq), targs...)
	if err != nil {
		return out, fmt.Errorf("store: role timeline: %w", err)
	}
	defer rs.Close()
	out.Timeline = []RoleChange{}
	var last cursor
	for rs.Next() {
		var at int64
		var c RoleChange
		var ev string
		if err := rs.Scan(&at, &c.UserID, &c.RoleID, &c.Added, &ev); err != nil {
			return out, fmt.Errorf("store: role timeline: %w", err)
		}
		if len(out.Timeline) == limit {
			out.Next = last.encode()
			break
		}
		c.At = fromMS(at)
		out.Timeline = append(out.Timeline, c)
		last = cursor{Scope: "roles", Int: at, ID: ev, Str: c.RoleID}
	}
	return out, rs.Err()
}

// ScoringMember is what the host knows about a member for scoring over a
// window; see analytics.BuildStats.
type ScoringMember struct {
	UserID              string
	Name                string
	Bot                 bool
	AccountCreated      time.Time
	JoinedAt            int64 // 0: unknown
	FirstMessageAt      int64 // 0: never
	LastMessageAt       int64 // 0: never
	MessagesTotal       int64
	OnlineMS, MultiMS   int64
	DesktopMS, MobileMS int64
	WebMS               int64
	Messages            int64
	Gaps                int64
	GapSum, GapSumSq    float64
	PeakPerMinute       int64
	Channels            int64
	RoleChanges         int64
	MessageHours        map[int64]int64 // UTC hour -> messages
}

// ScoringMembers returns every member present in the guild with their
// aggregates over [from, to), reading each aggregate once for the whole
// guild. Presence still open at now is included.
func (s *Store) ScoringMembers(ctx context.Context, guildID string, from, to, now time.Time) ([]*ScoringMember, error) {
	a, b := ms(from), ms(to)
	ha, da := a-a%hourMS, a-a%dayMS
	byUser := map[string]*ScoringMember{}
	var out []*ScoringMember
	err := s.each(ctx, `SELECT m.user_id, m.name, COALESCE(u.bot, false), COALESCE(u.created_at, 0), m.joined_at, m.first_message_at,
		m.last_message_at, m.message_count FROM members m LEFT JOIN users u ON u.id = m.user_id
		WHERE m.guild_id = ? AND m.left_at IS NULL ORDER BY m.user_id`, []any{guildID}, func(rs *sql.Rows) error {
		m := &ScoringMember{}
		var created int64
		if err := rs.Scan(&m.UserID, &m.Name, &m.Bot, &created, &m.JoinedAt, &m.FirstMessageAt, &m.LastMessageAt, &m.MessagesTotal); err != nil {
			return err
		}
		m.AccountCreated = fromMS(created)
		byUser[m.UserID] = m
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scoring members: %w", err)
	}
	err = s.each(ctx, `SELECT user_id, SUM(online_ms), SUM(multi_ms), SUM(desktop_ms), SUM(mobile_ms), SUM(web_ms) FROM presence_hourly
		WHERE guild_id = ? AND user_id <> '' AND hour >= ? AND hour < ? GROUP BY user_id`, []any{guildID, ha, b}, func(rs *sql.Rows) error {
		var u string
		var on, mu, d, mo, w int64
		if err := rs.Scan(&u, &on, &mu, &d, &mo, &w); err != nil {
			return err
		}
		if m := byUser[u]; m != nil {
			m.OnlineMS, m.MultiMS, m.DesktopMS, m.MobileMS, m.WebMS = on, mu, d, mo, w
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scoring presence: %w", err)
	}
	open, err := s.openPresence(ctx, guildID, "")
	if err != nil {
		return nil, err
	}
	end := min(b, ms(now))
	for _, o := range open {
		m := byUser[o.user]
		if m == nil {
			continue
		}
		hours := map[int64]*PresenceHour{}
		var order []int64
		addStretch(hours, &order, o, max(ha, o.mark), end)
		for _, h := range hours {
			m.OnlineMS += h.OnlineMS
			m.MultiMS += h.MultiMS
			m.DesktopMS += h.DesktopMS
			m.MobileMS += h.MobileMS
			m.WebMS += h.WebMS
		}
	}
	err = s.each(ctx, `SELECT user_id, SUM(messages), SUM(gaps), SUM(gap_sum), SUM(gap_sumsq), MAX(peak_per_minute) FROM message_rhythm_daily
		WHERE guild_id = ? AND day >= ? AND day < ? GROUP BY user_id`, []any{guildID, da, b}, func(rs *sql.Rows) error {
		var u string
		var r ScoringMember
		if err := rs.Scan(&u, &r.Messages, &r.Gaps, &r.GapSum, &r.GapSumSq, &r.PeakPerMinute); err != nil {
			return err
		}
		if m := byUser[u]; m != nil {
			m.Messages, m.Gaps, m.GapSum, m.GapSumSq, m.PeakPerMinute = r.Messages, r.Gaps, r.GapSum, r.GapSumSq, r.PeakPerMinute
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scoring rhythm: %w", err)
	}
	err = s.each(ctx, `SELECT user_id, COUNT(DISTINCT channel_id) FROM channel_messages_daily
		WHERE guild_id = ? AND day >= ? AND day < ? GROUP BY user_id`, []any{guildID, da, b}, func(rs *sql.Rows) error {
		var u string
		var n int64
		if err := rs.Scan(&u, &n); err != nil {
			return err
		}
		if m := byUser[u]; m != nil {
			m.Channels = n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scoring channels: %w", err)
	}
	err = s.each(ctx, `SELECT user_id, COUNT(*) FROM role_changes WHERE guild_id = ? AND at >= ? AND at < ? GROUP BY user_id`,
		[]any{guildID, a, b}, func(rs *sql.Rows) error {
			var u string
			var n int64
			if err := rs.Scan(&u, &n); err != nil {
				return err
			}
			if m := byUser[u]; m != nil {
				m.RoleChanges = n
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: scoring roles: %w", err)
	}
	err = s.each(ctx, `SELECT user_id, hour, messages FROM activity_hourly
		WHERE guild_id = ? AND user_id <> '' AND hour >= ? AND hour < ? AND messages > 0`, []any{guildID, ha, b}, func(rs *sql.Rows) error {
		var u string
		var h, n int64
		if err := rs.Scan(&u, &h, &n); err != nil {
			return err
		}
		if m := byUser[u]; m != nil {
			if m.MessageHours == nil {
				m.MessageHours = map[int64]int64{}
			}
			m.MessageHours[h] += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scoring hours: %w", err)
	}
	return out, nil
}

// each runs a read query and calls scan per row.
func (s *Store) each(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	rs, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := scan(rs); err != nil {
			return err
		}
	}
	return rs.Err()
}

// SetGuildTimezone sets the IANA time zone analytics fold hours into.
func (s *Store) SetGuildTimezone(ctx context.Context, guildID, tz string) error {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE guilds SET timezone = ? WHERE id = ?`), tz, guildID)
	if err != nil {
		return fmt.Errorf("store: set guild %s timezone: %w", guildID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// EnsureGuildTimezone creates the guild if it is unknown (first seen at
// firstSeen) and sets its time zone.
func (s *Store) EnsureGuildTimezone(ctx context.Context, guildID string, firstSeen time.Time, tz string) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO guilds (id, first_seen, updated_at, timezone) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET timezone = excluded.timezone`), guildID, ms(firstSeen), ms(firstSeen), tz)
	if err != nil {
		return fmt.Errorf("store: guild %s timezone: %w", guildID, err)
	}
	return nil
}
