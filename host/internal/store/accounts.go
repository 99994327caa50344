package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrConflict is returned when a write would duplicate a unique value (a
// username, a Discord account).
var ErrConflict = errors.New("store: already exists")

// Account is a person who can log in: with a password, through Discord, or both.
type Account struct {
	ID           string     `json:"id"`
	Username     string     `json:"username"`
	DisplayName  string     `json:"display_name"`
	DiscordID    string     `json:"discord_id,omitempty"`
	HasPassword  bool       `json:"has_password"`
	Disabled     bool       `json:"disabled"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	LastLoginAt  *time.Time `json:"last_login_at,omitempty"`
	PasswordHash string     `json:"-"`
	FailedLogins int        `json:"-"`
	LockedUntil  time.Time  `json:"-"`
}

const accountCols = `id, username, display_name, password_hash, COALESCE(discord_id, ''), disabled, failed_logins, locked_until, created_at, updated_at, last_login_at`

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var created, updated, locked int64
	var last sql.NullInt64
	err := sc.Scan(&a.ID, &a.Username, &a.DisplayName, &a.PasswordHash, &a.DiscordID, &a.Disabled, &a.FailedLogins, &locked, &created, &updated, &last)
	a.CreatedAt, a.UpdatedAt, a.LastLoginAt = fromMS(created), fromMS(updated), nullMS(last)
	if locked > 0 {
		a.LockedUntil = fromMS(locked)
	}
	a.HasPassword = a.PasswordHash != ""
	return a, err
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key")
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateAccount inserts a new account; a taken username or Discord ID is ErrConflict.
func (s *Store) CreateAccount(ctx context.Context, a Account) (Account, error) {
	now := s.now()
	a.CreatedAt, a.UpdatedAt = now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO accounts (id, username, display_name, password_hash, discord_id, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), a.ID, a.Username, a.DisplayName, a.PasswordHash, nullStr(a.DiscordID), a.Disabled, ms(now), ms(now))
	if err != nil {
		if isUniqueViolation(err) {
			return a, fmt.Errorf("store: account %q: %w", a.Username, ErrConflict)
		}
		return a, fmt.Errorf("store: create account: %w", err)
	}
	a.HasPassword = a.PasswordHash != ""
	return a, nil
}

func (s *Store) getAccount(ctx context.Context, where string, arg any) (Account, error) {
	a, err := scanAccount(s.r.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE `+where+` = ?`), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("store: account: %w", ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("store: get account: %w", err)
	}
	return a, nil
}

// GetAccount returns an account by ID, or ErrNotFound.
func (s *Store) GetAccount(ctx context.Context, id string) (Account, error) {
	return s.getAccount(ctx, "id", id)
}

// AccountByUsername returns an account by its login name, or ErrNotFound.
func (s *Store) AccountByUsername(ctx context.Context, username string) (Account, error) {
	return s.getAccount(ctx, "username", username)
}

// AccountByDiscordID returns the account linked to a Discord user, or ErrNotFound.
func (s *Store) AccountByDiscordID(ctx context.Context, discordID string) (Account, error) {
	return s.getAccount(ctx, "discord_id", discordID)
}

// ListAccounts returns every account by username.
func (s *Store) ListAccounts(ctx context.Context) ([]Account, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY username, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	defer rs.Close()
	out := []Account{}
	for rs.Next() {
		a, err := scanAccount(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rs.Err()
}

// CountAccounts returns how many accounts exist.
func (s *Store) CountAccounts(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count accounts: %w", err)
	}
	return n, nil
}

// AccountUpdate changes the non-nil fields of an account.
type AccountUpdate struct {
	DisplayName  *string
	PasswordHash *string
	Disabled     *bool
}

// UpdateAccount applies u to account id.
func (s *Store) UpdateAccount(ctx context.Context, id string, u AccountUpdate) error {
	sets := []string{"updated_at = ?"}
	args := []any{ms(s.now())}
	if u.DisplayName != nil {
		sets, args = append(sets, "display_name = ?"), append(args, *u.DisplayName)
	}
	if u.PasswordHash != nil {
		sets, args = append(sets, "password_hash = ?", "failed_logins = 0", "locked_until = 0"), append(args, *u.PasswordHash)
	}
	if u.Disabled != nil {
		sets, args = append(sets, "disabled = ?"), append(args, *u.Disabled)
	}
	return s.execOne(ctx, "update account", `UPDATE accounts SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...)
}

// DeleteAccount removes an account with its sessions and API keys.
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: delete account: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after commit it is a no-op
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM accounts WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("store: delete account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: account %s: %w", id, ErrNotFound)
	}
	for _, q := range []string{
		`DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE account_id = ?)`,
		`DELETE FROM sessions WHERE account_id = ?`,
		`DELETE FROM api_key_usage WHERE key_id IN (SELECT id FROM api_keys WHERE account_id = ?)`,
		`DELETE FROM api_keys WHERE account_id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
			return fmt.Errorf("store: delete account: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: delete account: %w", err)
	}
	return nil
}

// LinkDiscord attaches a Discord user to an account and records the login.
func (s *Store) LinkDiscord(ctx context.Context, id, discordID, displayName string) error {
	err := s.execOne(ctx, "link discord", `UPDATE accounts SET discord_id = ?, display_name = ?, updated_at = ? WHERE id = ?`,
		discordID, displayName, ms(s.now()), id)
	if err != nil && isUniqueViolation(err) {
		return fmt.Errorf("store: discord user %s: %w", discordID, ErrConflict)
	}
	return err
}

// RecordLoginFailure counts a failed password attempt and locks the account
// until lockedUntil (zero: not locked). It returns the new failure count.
func (s *Store) RecordLoginFailure(ctx context.Context, id string, lock func(failures int) time.Time) (int, error) {
	var n int
	err := s.w.QueryRowContext(ctx, s.q(`UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins`), id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: record login failure: %w", err)
	}
	if until := lock(n); !until.IsZero() {
		if _, err := s.w.ExecContext(ctx, s.q(`UPDATE accounts SET locked_until = ? WHERE id = ?`), ms(until), id); err != nil {
			return n, fmt.Errorf("store: lock account: %w", err)
		}
	}
	return n, nil
}

// RecordLogin resets the failure count and stamps the login time.
func (s *Store) RecordLogin(ctx context.Context, id string) error {
	return s.execOne(ctx, "record login", `UPDATE accounts SET failed_logins = 0, locked_until = 0, last_login_at = ? WHERE id = ?`, ms(s.now()), id)
}

// execOne runs a statement that must change exactly one row (else ErrNotFound).
func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.w.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return nil
}
