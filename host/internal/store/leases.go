package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease is the current state of a named lease.
type Lease struct {
	Name       string
	Holder     string
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

// AcquireLease takes the lease name for holder until now+ttl, or extends it
// when holder already holds it. It reports false, and no error, while
// another holder's lease has not expired.
//
// Expiry is judged by the store's clock, which on several hosts means their
// clocks must agree to well within ttl; a holder therefore stops using a
// lease some margin before the expiry it last wrote.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("store: acquire lease %q: empty name or holder, or ttl %s", name, ttl)
	}
	now := s.now()
	// One statement, so two instances racing for the same lease cannot both
	// win: the row's primary key serialises them and the WHERE of the update
	// lets only the holder or a taker of an expired lease through.
	res, err := s.w.ExecContext(ctx, s.q(`INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
			acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END,
			holder = excluded.holder,
			expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`),
		name, holder, ms(now), ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %q: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease ends holder's lease on name so that another instance can take
// it at once. Releasing a lease that holder does not hold does nothing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder); err != nil {
		return fmt.Errorf("store: release lease %q: %w", name, err)
	}
	return nil
}

// GetLease returns the lease name, expired or not, or ErrNotFound.
func (s *Store) GetLease(ctx context.Context, name string) (Lease, error) {
	l := Lease{Name: name}
	var acquired, expires int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?`), name).
		Scan(&l.Holder, &acquired, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, fmt.Errorf("store: lease %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("store: lease %q: %w", name, err)
	}
	l.AcquiredAt, l.ExpiresAt = fromMS(acquired), fromMS(expires)
	return l, nil
}
