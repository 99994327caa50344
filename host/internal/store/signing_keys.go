package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SigningKey is a key that signs access tokens. Secret is as the auth
// package stored it (sealed when a secret key is configured).
type SigningKey struct {
	ID        string
	Secret    string
	CreatedAt time.Time
}

// AddSigningKey stores a new signing key.
func (s *Store) AddSigningKey(ctx context.Context, k SigningKey) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO signing_keys (id, secret, created_at) VALUES (?, ?, ?)`), k.ID, k.Secret, ms(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: add signing key: %w", err)
	}
	return nil
}

// ListSigningKeys returns every key, newest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT id, secret, created_at FROM signing_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	defer rs.Close()
	var out []SigningKey
	for rs.Next() {
		var k SigningKey
		var at int64
		if err := rs.Scan(&k.ID, &k.Secret, &at); err != nil {
			return nil, fmt.Errorf("store: list signing keys: %w", err)
		}
		k.CreatedAt = fromMS(at)
		out = append(out, k)
	}
	return out, rs.Err()
}

// DeleteSigningKeysBefore removes keys created before t (they can no longer
// have signed a live token).
func (s *Store) DeleteSigningKeysBefore(ctx context.Context, t time.Time) error {
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM signing_keys WHERE created_at < ?`), ms(t)); err != nil {
		return fmt.Errorf("store: delete signing keys: %w", err)
	}
	return nil
}

// OAuthState is a pending Discord login.
type OAuthState struct {
	Verifier  string
	ReturnTo  string
	CreatedAt time.Time
}

// AddOAuthState stores a pending login under the hash of its state, and
// drops pending logins older than expireBefore.
func (s *Store) AddOAuthState(ctx context.Context, stateHash string, st OAuthState, expireBefore time.Time) error {
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM oauth_states WHERE created_at < ?`), ms(expireBefore)); err != nil {
		return fmt.Errorf("store: oauth state: %w", err)
	}
	verifier, err := s.sealText(st.Verifier, "oauth:"+stateHash)
	if err != nil {
		return fmt.Errorf("store: oauth state: %w", err)
	}
	_, err = s.w.ExecContext(ctx, s.q(`INSERT INTO oauth_states (state_hash, verifier, return_to, created_at) VALUES (?, ?, ?, ?)`),
		stateHash, verifier, st.ReturnTo, ms(st.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: oauth state: %w", err)
	}
	return nil
}

// TakeOAuthState returns and deletes a pending login (ErrNotFound if there
// is none): a state works once.
func (s *Store) TakeOAuthState(ctx context.Context, stateHash string) (OAuthState, error) {
	var st OAuthState
	var at int64
	err := s.w.QueryRowContext(ctx, s.q(`DELETE FROM oauth_states WHERE state_hash = ? RETURNING verifier, return_to, created_at`), stateHash).
		Scan(&st.Verifier, &st.ReturnTo, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("store: oauth state: %w", ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("store: oauth state: %w", err)
	}
	st.CreatedAt = fromMS(at)
	if st.Verifier, err = s.openText(st.Verifier, "oauth:"+stateHash); err != nil {
		return st, fmt.Errorf("store: oauth state: %w", err)
	}
	return st, nil
}
