package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AddAdminToken records the hash of an admin token under id. The token
// itself is never stored. A different hash already stored under id is
// replaced, so that changing the configured token (rotation) retires the
// old one instead of failing on the id.
func (s *Store) AddAdminToken(ctx context.Context, id, hash string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add admin token: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM admin_tokens WHERE id = ? AND token_hash <> ?`), id, hash); err != nil {
		return fmt.Errorf("store: add admin token: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO admin_tokens (id, token_hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`), id, hash, ms(s.now())); err != nil {
		return fmt.Errorf("store: add admin token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add admin token: %w", err)
	}
	return nil
}

// AdminTokenID returns the ID of the admin token with this hash, or ErrNotFound.
func (s *Store) AdminTokenID(ctx context.Context, hash string) (string, error) {
	var id string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id FROM admin_tokens WHERE token_hash = ?`), hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: admin token: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: admin token: %w", err)
	}
	return id, nil
}

// CountAdminTokens returns how many admin tokens exist.
func (s *Store) CountAdminTokens(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM admin_tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count admin tokens: %w", err)
	}
	return n, nil
}
