package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a login: a family of refresh tokens, rotated on every use.
type Session struct {
	ID           string     `json:"id"`
	AccountID    string     `json:"account_id"`
	Method       string     `json:"method"` // password | discord
	IP           string     `json:"ip"`
	UserAgent    string     `json:"user_agent"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   time.Time  `json:"last_used_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	CSRF         string     `json:"-"`
}

const sessionCols = `id, account_id, method, csrf, ip, user_agent, created_at, last_used_at, expires_at, revoked_at, revoke_reason`

func scanSession(sc interface{ Scan(...any) error }) (Session, error) {
	var x Session
	var created, used, expires int64
	var revoked sql.NullInt64
	err := sc.Scan(&x.ID, &x.AccountID, &x.Method, &x.CSRF, &x.IP, &x.UserAgent, &created, &used, &expires, &revoked, &x.RevokeReason)
	x.CreatedAt, x.LastUsedAt, x.ExpiresAt, x.RevokedAt = fromMS(created), fromMS(used), fromMS(expires), nullMS(revoked)
	return x, err
}

// CreateSession stores a session with its first refresh token hash.
func (s *Store) CreateSession(ctx context.Context, x Session, refreshHash string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	now := ms(s.now())
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO sessions (id, account_id, method, csrf, ip, user_agent, created_at, last_used_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), x.ID, x.AccountID, x.Method, x.CSRF, x.IP, x.UserAgent, now, now, ms(x.ExpiresAt)); err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)`), refreshHash, x.ID, now); err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// GetSession returns a session by ID, or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (Session, error) {
	x, err := scanSession(s.r.QueryRowContext(ctx, s.q(`SELECT `+sessionCols+` FROM sessions WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return x, fmt.Errorf("store: session: %w", ErrNotFound)
	}
	if err != nil {
		return x, fmt.Errorf("store: get session: %w", err)
	}
	return x, nil
}

// ListSessions returns an account's sessions, newest first; revoked and
// expired ones only when all is set.
func (s *Store) ListSessions(ctx context.Context, accountID string, all bool) ([]Session, error) {
	q := `SELECT ` + sessionCols + ` FROM sessions WHERE account_id = ?`
	args := []any{accountID}
	if !all {
		q += ` AND revoked_at IS NULL AND expires_at > ?`
		args = append(args, ms(s.now()))
	}
	rs, err := s.r.QueryContext(ctx, s.q(q+` ORDER BY created_at DESC, id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list sessions: %w", err)
	}
	defer rs.Close()
	out := []Session{}
	for rs.Next() {
		x, err := scanSession(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list sessions: %w", err)
		}
		out = append(out, x)
	}
	return out, rs.Err()
}

// RevokeSession ends a session; revoking a revoked one changes nothing.
func (s *Store) RevokeSession(ctx context.Context, id, reason string) error {
	if _, err := s.GetSession(ctx, id); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, s.q(`UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL`), ms(s.now()), reason, id)
	if err != nil {
		return fmt.Errorf("store: revoke session: %w", err)
	}
	return nil
}

// RevokeAccountSessions ends every session of an account.
func (s *Store) RevokeAccountSessions(ctx context.Context, accountID, reason string) error {
	_, err := s.w.ExecContext(ctx, s.q(`UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE account_id = ? AND revoked_at IS NULL`), ms(s.now()), reason, accountID)
	if err != nil {
		return fmt.Errorf("store: revoke sessions: %w", err)
	}
	return nil
}

// RefreshOutcome says what presenting a refresh token did.
type RefreshOutcome int

// The outcomes of RotateRefresh.
const (
	RefreshRotated RefreshOutcome = iota // the token was current: a new one replaces it
	RefreshUnknown                       // no such token
	RefreshReused                        // the token was already used: the session is now revoked
	RefreshDead                          // the session is revoked or expired
)

// RotateRefresh consumes the refresh token with oldHash and stores newHash
// in its place, in one transaction. Presenting a token that was already used
// revokes its whole session (someone holds a stolen copy).
func (s *Store) RotateRefresh(ctx context.Context, oldHash, newHash string) (Session, RefreshOutcome, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return Session{}, 0, fmt.Errorf("store: rotate refresh: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var sid string
	var used sql.NullInt64
	err = tx.QueryRowContext(ctx, s.q(`SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = ?`), oldHash).Scan(&sid, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, RefreshUnknown, nil
	}
	if err != nil {
		return Session{}, 0, fmt.Errorf("store: rotate refresh: %w", err)
	}
	x, err := scanSession(tx.QueryRowContext(ctx, s.q(`SELECT `+sessionCols+` FROM sessions WHERE id = ?`), sid))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, RefreshUnknown, nil
	}
	if err != nil {
		return Session{}, 0, fmt.Errorf("store: rotate refresh: %w", err)
	}
	now := s.now()
	if used.Valid {
		if x.RevokedAt == nil {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET revoked_at = ?, revoke_reason = 'refresh token reused' WHERE id = ?`), ms(now), sid); err != nil {
				return x, 0, fmt.Errorf("store: rotate refresh: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return x, 0, fmt.Errorf("store: rotate refresh: %w", err)
		}
		return x, RefreshReused, nil
	}
	if x.RevokedAt != nil || !now.Before(x.ExpiresAt) {
		return x, RefreshDead, nil
	}
	res, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`), ms(now), oldHash)
	if err != nil {
		return x, 0, fmt.Errorf("store: rotate refresh: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return x, RefreshReused, nil // lost a race with a concurrent use of the same token
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)`), newHash, sid, ms(now)); err != nil {
		return x, 0, fmt.Errorf("store: rotate refresh: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET last_used_at = ? WHERE id = ?`), ms(now), sid); err != nil {
		return x, 0, fmt.Errorf("store: rotate refresh: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return x, 0, fmt.Errorf("store: rotate refresh: %w", err)
	}
	return x, RefreshRotated, nil
}
