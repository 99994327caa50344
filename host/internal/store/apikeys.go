package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// APIKey is a credential for programs. Only a hash of its secret is stored.
type APIKey struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"account_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Guilds     []string   `json:"guilds"` // ["*"]: every guild the owner may see
	Write      bool       `json:"write"`
	Tier       string     `json:"tier"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

const apiKeyCols = `id, account_id, name, prefix, guilds, write, tier, created_at, expires_at, last_used_at, revoked_at`

func scanAPIKey(sc interface{ Scan(...any) error }) (APIKey, error) {
	var k APIKey
	var guilds string
	var created int64
	var expires, used, revoked sql.NullInt64
	err := sc.Scan(&k.ID, &k.AccountID, &k.Name, &k.Prefix, &guilds, &k.Write, &k.Tier, &created, &expires, &used, &revoked)
	k.Guilds = strings.Split(guilds, ",")
	k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt = fromMS(created), nullMS(expires), nullMS(used), nullMS(revoked)
	return k, err
}

// CreateAPIKey stores a key with the hash of its secret.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey, hash string) (APIKey, error) {
	k.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	var exp sql.NullInt64
	if k.ExpiresAt != nil {
		exp = sql.NullInt64{Int64: ms(*k.ExpiresAt), Valid: true}
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO api_keys (id, account_id, name, prefix, key_hash, guilds, write, tier, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), k.ID, k.AccountID, k.Name, k.Prefix, hash, strings.Join(k.Guilds, ","), k.Write, k.Tier, ms(k.CreatedAt), exp)
	if err != nil {
		return k, fmt.Errorf("store: create api key: %w", err)
	}
	return k, nil
}

// APIKeyByHash returns the key whose secret hashes to hash, or ErrNotFound.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (APIKey, error) {
	return s.apiKey(ctx, "key_hash", hash)
}

// GetAPIKey returns a key by ID, or ErrNotFound.
func (s *Store) GetAPIKey(ctx context.Context, id string) (APIKey, error) {
	return s.apiKey(ctx, "id", id)
}

func (s *Store) apiKey(ctx context.Context, col, v string) (APIKey, error) {
	k, err := scanAPIKey(s.r.QueryRowContext(ctx, s.q(`SELECT `+apiKeyCols+` FROM api_keys WHERE `+col+` = ?`), v))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("store: api key: %w", ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("store: get api key: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns the keys of an account ("" for every account), newest first.
func (s *Store) ListAPIKeys(ctx context.Context, accountID string) ([]APIKey, error) {
	q, args := `SELECT `+apiKeyCols+` FROM api_keys`, []any{}
	if accountID != "" {
		q, args = q+` WHERE account_id = ?`, append(args, accountID)
	}
	rs, err := s.r.QueryContext(ctx, s.q(q+` ORDER BY created_at DESC, id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", err)
	}
	defer rs.Close()
	out := []APIKey{}
	for rs.Next() {
		k, err := scanAPIKey(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rs.Err()
}

// RevokeAPIKey marks a key revoked; it stops working at once.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	if _, err := s.GetAPIKey(ctx, id); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, s.q(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`), ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("store: revoke api key: %w", err)
	}
	return nil
}

// KeyUsage is the requests one API key made on one day.
type KeyUsage struct {
	KeyID    string    `json:"-"`
	Day      time.Time `json:"day"`
	Requests int64     `json:"requests"`
}

// AddAPIKeyUsage adds counted requests (batched by the caller) and stamps
// the key's last use.
func (s *Store) AddAPIKeyUsage(ctx context.Context, usage []KeyUsage, lastUsed map[string]time.Time) error {
	if len(usage) == 0 && len(lastUsed) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: api key usage: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	for _, u := range usage {
		day := u.Day.UTC().Unix() / 86400
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO api_key_usage (key_id, day, requests) VALUES (?, ?, ?)
			ON CONFLICT (key_id, day) DO UPDATE SET requests = api_key_usage.requests + excluded.requests`), u.KeyID, day, u.Requests); err != nil {
			return fmt.Errorf("store: api key usage: %w", err)
		}
	}
	for id, at := range lastUsed {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE api_keys SET last_used_at = ? WHERE id = ?`), ms(at), id); err != nil {
			return fmt.Errorf("store: api key usage: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: api key usage: %w", err)
	}
	return nil
}

// APIKeyUsage returns a key's daily request counts since from, oldest first.
func (s *Store) APIKeyUsage(ctx context.Context, id string, from time.Time) ([]KeyUsage, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT day, requests FROM api_key_usage WHERE key_id = ? AND day >= ? ORDER BY day`), id, from.UTC().Unix()/86400)
	if err != nil {
		return nil, fmt.Errorf("store: api key usage: %w", err)
	}
	defer rs.Close()
	out := []KeyUsage{}
	for rs.Next() {
		var day int64
		u := KeyUsage{KeyID: id}
		if err := rs.Scan(&day, &u.Requests); err != nil {
			return nil, fmt.Errorf("store: api key usage: %w", err)
		}
		u.Day = time.Unix(day*86400, 0).UTC()
		out = append(out, u)
	}
	return out, rs.Err()
}
