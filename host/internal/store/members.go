package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Member is a user in a guild as the host knows them.
type Member struct {
	GuildID        string             `json:"guild_id"`
	UserID         string             `json:"user_id"`
	Username       string             `json:"username,omitempty"`
	Name           string             `json:"name"`
	Nick           string             `json:"nick,omitempty"`
	Bot            bool               `json:"bot"`
	AccountCreated time.Time          `json:"account_created"`
	JoinedAt       *time.Time         `json:"joined_at,omitempty"`
	LeftAt         *time.Time         `json:"left_at,omitempty"`
	Banned         bool               `json:"banned"`
	FirstSeen      time.Time          `json:"first_seen"`
	LastSeen       time.Time          `json:"last_seen"`
	LastMessageAt  *time.Time         `json:"last_message_at,omitempty"`
	MessageCount   int64              `json:"message_count"`
	Status         string             `json:"status"`
	ClientStatus   event.ClientStatus `json:"client_status"`
	Roles          []string           `json:"roles,omitempty"`
}

// MemberSorts are the orderings ListMembers accepts.
var MemberSorts = []string{"name", "joined", "first_seen", "last_seen", "last_message", "messages"}

// sortColumn maps a sort name to its SQL expression and whether it is text.
func sortColumn(name string) (expr string, text bool, ok bool) {
	switch name {
	case "name":
		return "m.name", true, true
	case "joined":
		return "m.joined_at", false, true
	case "first_seen":
		return "m.first_seen", false, true
	case "last_seen":
		return "p.last_seen", false, true
	case "last_message":
		return "m.last_message_at", false, true
	case "messages":
		return "m.message_count", false, true
	}
	return "", false, false
}

// MemberQuery selects and orders a page of members.
type MemberQuery struct {
	Search      string // part of the name or username, or an exact user ID
	Status      string // "online" (anything but offline) or "offline"; "" for all
	Role        string // only members holding this role
	IncludeLeft bool   // include members who left
	Sort        string // one of MemberSorts; default "name"
	Desc        bool
	Limit       int
	Cursor      string
}

// MemberPage is one page of members and the cursor of the next, empty at the end.
type MemberPage struct {
	Members []Member `json:"members"`
	Next    string   `json:"next_cursor,omitempty"`
}

const memberCols = `m.guild_id, m.user_id, m.username, m.name, m.nick, COALESCE(u.bot, false), m.joined_at, m.left_at, m.banned,
	m.first_seen, p.last_seen, m.last_message_at, m.message_count, p.status, p.desktop, p.mobile, p.web`

// memberFrom joins what a Member is read from; every member has a presence row.
const memberFrom = ` FROM members m JOIN member_presence p ON p.guild_id = m.guild_id AND p.user_id = m.user_id
	LEFT JOIN users u ON u.id = m.user_id`

func scanMember(sc interface{ Scan(...any) error }, extra ...any) (Member, error) {
	var m Member
	var left sql.NullInt64
	var joined, lastMsg, first, last int64
	var desktop, mobile, web string
	dest := []any{&m.GuildID, &m.UserID, &m.Username, &m.Name, &m.Nick, &m.Bot, &joined, &left, &m.Banned,
		&first, &last, &lastMsg, &m.MessageCount, &m.Status, &desktop, &mobile, &web}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return m, err
	}
	m.JoinedAt, m.LeftAt, m.LastMessageAt = zeroMS(joined), nullMS(left), zeroMS(lastMsg)
	m.FirstSeen, m.LastSeen = fromMS(first), fromMS(last)
	m.ClientStatus = event.ClientStatus{Desktop: event.Status(desktop), Mobile: event.Status(mobile), Web: event.Status(web)}
	m.AccountCreated, _ = event.SnowflakeTime(m.UserID)
	return m, nil
}

// likePattern escapes s for a LIKE ... ESCAPE '\' substring match.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// ListMembers returns a page of a guild's members.
func (s *Store) ListMembers(ctx context.Context, guildID string, mq MemberQuery) (MemberPage, error) {
	page := MemberPage{Members: []Member{}}
	if mq.Sort == "" {
		mq.Sort = "name"
	}
	expr, text, ok := sortColumn(mq.Sort)
	if !ok {
		return page, fmt.Errorf("store: unknown member sort %q", mq.Sort)
	}
	limit := clampLimit(mq.Limit)
	dir, cmp := "ASC", ">"
	if mq.Desc {
		dir, cmp = "DESC", "<"
	}
	scope := "members:" + mq.Sort + ":" + dir
	// The tiebreak is the user ID of the sorted table, so that its index
	// (guild, column, user) gives the order without a sort.
	tiebreak := "m.user_id"
	if strings.HasPrefix(expr, "p.") {
		tiebreak = "p.user_id"
	}
	where := []string{"m.guild_id = ?", "p.guild_id = ?"}
	args := []any{guildID, guildID}
	if !mq.IncludeLeft {
		where = append(where, "m.left_at IS NULL")
	}
	switch mq.Status {
	case "":
	case "online":
		where = append(where, "p.status <> 'offline'")
	case "offline":
		where = append(where, "p.status = 'offline'")
	default:
		return page, fmt.Errorf("store: unknown status filter %q", mq.Status)
	}
	if mq.Search != "" {
		like := "LIKE"
		if s.dialect == Postgres {
			like = "ILIKE"
		}
		p := likePattern(mq.Search)
		where = append(where, "(m.name "+like+" ? ESCAPE '\\' OR m.username "+like+" ? ESCAPE '\\' OR m.user_id = ?)")
		args = append(args, p, p, mq.Search)
	}
	if mq.Role != "" {
		where = append(where, "EXISTS (SELECT 1 FROM member_roles r WHERE r.guild_id = m.guild_id AND r.user_id = m.user_id AND r.role_id = ?)")
		args = append(args, mq.Role)
	}
	if mq.Cursor != "" {
		c, err := decodeCursor(mq.Cursor, scope)
		if err != nil {
			return page, err
		}
		var v any = c.Int
		if text {
			v = c.Str
		}
		where = append(where, "("+expr+" "+cmp+" ? OR ("+expr+" = ? AND "+tiebreak+" "+cmp+" ?))")
		args = append(args, v, v, c.ID)
	}
	q := `SELECT ` + memberCols + `, ` + expr + memberFrom + `
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + expr + ` ` + dir + `, ` + tiebreak + ` ` + dir + ` LIMIT ?`
	args = append(args, limit+1)
	rs, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return page, fmt.Errorf("store: list members: %w", err)
	}
	defer rs.Close()
	var last cursor
	for rs.Next() {
		var sortStr sql.NullString
		var sortInt sql.NullInt64
		var key any = &sortInt
		if text {
			key = &sortStr
		}
		m, err := scanMember(rs, key)
		if err != nil {
			return page, fmt.Errorf("store: list members: %w", err)
		}
		if len(page.Members) == limit {
			page.Next = last.encode()
			break
		}
		page.Members = append(page.Members, m)
		last = cursor{Scope: scope, Int: sortInt.Int64, Str: sortStr.String, ID: m.UserID}
	}
	return page, rs.Err()
}

// GetMember returns one member with their roles, or ErrNotFound.
func (s *Store) GetMember(ctx context.Context, guildID, userID string) (Member, error) {
	m, err := scanMember(s.r.QueryRowContext(ctx, s.q(`SELECT `+memberCols+memberFrom+`
		WHERE m.guild_id = ? AND m.user_id = ?`), guildID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("store: member %s/%s: %w", guildID, userID, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("store: get member: %w", err)
	}
	m.Roles, err = s.MemberRoles(ctx, guildID, userID)
	return m, err
}

// MemberRoles returns the roles a member holds now, sorted.
func (s *Store) MemberRoles(ctx context.Context, guildID, userID string) ([]string, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT role_id FROM member_roles WHERE guild_id = ? AND user_id = ? ORDER BY role_id`), guildID, userID)
	if err != nil {
		return nil, fmt.Errorf("store: member roles: %w", err)
	}
	defer rs.Close()
	roles := []string{}
	for rs.Next() {
		var r string
		if err := rs.Scan(&r); err != nil {
			return nil, fmt.Errorf("store: member roles: %w", err)
		}
		roles = append(roles, r)
	}
	return roles, rs.Err()
}

// MemberStats are counts over a window for one member.
type MemberStats struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Messages int64     `json:"messages"`
	// Presence is the time connected per client, and per client per status,
	// in seconds.
	Presence map[string]PresenceTime `json:"presence"`
}

// PresenceTime is the time spent connected with one client.
type PresenceTime struct {
	Seconds  int64            `json:"seconds"`
	ByStatus map[string]int64 `json:"by_status"`
}

// MemberStats sums a member's presence per client and their messages over
// [from, to). The open stretch of each client counts up to now.
func (s *Store) MemberStats(ctx context.Context, guildID, userID string, from, to time.Time) (MemberStats, error) {
	st := MemberStats{From: from, To: to, Presence: map[string]PresenceTime{}}
	for _, c := range event.Clients() {
		st.Presence[string(c)] = PresenceTime{ByStatus: map[string]int64{}}
	}
	a, b := ms(from), ms(to)
	add := func(client, status string, start, end int64) {
		start, end = max(start, a), min(end, b)
		if end <= start {
			return
		}
		p := st.Presence[client]
		if p.ByStatus == nil {
			p.ByStatus = map[string]int64{}
		}
		p.Seconds += (end - start) / 1000
		p.ByStatus[status] += (end - start) / 1000
		st.Presence[client] = p
	}
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT client, status, started_at, ended_at FROM presence_sessions
		WHERE guild_id = ? AND user_id = ? AND ended_at > ? AND started_at < ?`), guildID, userID, a, b)
	if err != nil {
		return st, fmt.Errorf("store: member presence: %w", err)
	}
	for rs.Next() {
		var client, status string
		var start, end int64
		if err := rs.Scan(&client, &status, &start, &end); err != nil {
			rs.Close()
			return st, fmt.Errorf("store: member presence: %w", err)
		}
		add(client, status, start, end)
	}
	if err := rs.Close(); err != nil {
		return st, fmt.Errorf("store: member presence: %w", err)
	}
	var cs [3]clientState
	err = s.r.QueryRowContext(ctx, s.q(`SELECT desktop, desktop_since, mobile, mobile_since, web, web_since
		FROM member_presence WHERE guild_id = ? AND user_id = ?`), guildID, userID).
		Scan(&cs[0].status, &cs[0].since, &cs[1].status, &cs[1].since, &cs[2].status, &cs[2].since)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("store: member presence: %w", err)
	}
	now := ms(s.now())
	for i, c := range event.Clients() {
		if cs[i].status != "" {
			add(string(c), cs[i].status, cs[i].since, now)
		}
	}
	err = s.r.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(messages), 0) FROM activity_hourly
		WHERE guild_id = ? AND user_id = ? AND hour >= ? AND hour < ?`), guildID, userID, a-a%hourMS, b).Scan(&st.Messages)
	if err != nil {
		return st, fmt.Errorf("store: member messages: %w", err)
	}
	return st, nil
}

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}

// KnownMemberRoles returns a member's current roles and whether the member
// is known at all; it backs the gateway normaliser's role diffs after a
// restart.
func (s *Store) KnownMemberRoles(ctx context.Context, guildID, userID string) ([]string, bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM members WHERE guild_id = ? AND user_id = ? AND left_at IS NULL`), guildID, userID).Scan(&n)
	if err != nil {
		return nil, false, fmt.Errorf("store: member roles: %w", err)
	}
	if n == 0 {
		return nil, false, nil
	}
	roles, err := s.MemberRoles(ctx, guildID, userID)
	return roles, err == nil, err
}
