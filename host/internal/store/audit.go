package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// AuditEntry is one security-relevant action: who did what, to what, when,
// from where, and how it ended.
type AuditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Target    string    `json:"target,omitempty"`
	GuildID   string    `json:"guild_id,omitempty"`
	Result    string    `json:"result"` // ok | denied | failed
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// AddAudit appends an entry; At defaults to now.
func (s *Store) AddAudit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, target, guild_id, result, ip, user_agent, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), ms(e.At), e.Actor, e.Action, e.Target, e.GuildID, e.Result, e.IP, truncate(e.UserAgent, 256), truncate(e.Detail, 1024))
	if err != nil {
		return fmt.Errorf("store: add audit: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// AuditQuery filters the audit log; zero fields do not filter.
type AuditQuery struct {
	GuildID string
	Actor   string
	Action  string
	Result  string
	Limit   int
	Cursor  string
}

// AuditPage is a page of the audit log, newest first.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    string       `json:"next_cursor,omitempty"`
}

// ListAudit returns a page of the audit log, newest first.
func (s *Store) ListAudit(ctx context.Context, aq AuditQuery) (AuditPage, error) {
	page := AuditPage{Entries: []AuditEntry{}}
	limit := clampLimit(aq.Limit)
	q := `SELECT id, at, actor, action, target, guild_id, result, ip, user_agent, detail FROM audit_log WHERE 1 = 1`
	var args []any
	for _, f := range []struct{ col, v string }{{"guild_id", aq.GuildID}, {"actor", aq.Actor}, {"action", aq.Action}, {"result", aq.Result}} {
		if f.v != "" {
			q += " AND " + f.col + " = ?"
			args = append(args, f.v)
		}
	}
	if aq.Cursor != "" {
		c, err := decodeCursor(aq.Cursor, "audit")
		if err != nil {
			return page, err
		}
		id, err := strconv.ParseInt(c.ID, 10, 64)
		if err != nil {
			return page, ErrBadCursor
		}
		q += " AND id < ?"
		args = append(args, id)
	}
	rs, err := s.r.QueryContext(ctx, s.q(q+` ORDER BY id DESC LIMIT ?`), append(args, limit+1)...)
	if err != nil {
		return page, fmt.Errorf("store: list audit: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var e AuditEntry
		var at int64
		if err := rs.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.GuildID, &e.Result, &e.IP, &e.UserAgent, &e.Detail); err != nil {
			return page, fmt.Errorf("store: list audit: %w", err)
		}
		e.At = fromMS(at)
		page.Entries = append(page.Entries, e)
	}
	if err := rs.Err(); err != nil {
		return page, fmt.Errorf("store: list audit: %w", err)
	}
	if len(page.Entries) > limit {
		page.Entries = page.Entries[:limit]
		page.Next = cursor{Scope: "audit", ID: strconv.FormatInt(page.Entries[limit-1].ID, 10)}.encode()
	}
	return page, nil
}
