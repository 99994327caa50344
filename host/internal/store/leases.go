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
	// Token is the fencing token (see AcquireFenced).
	Token int64
}

// AcquireLease takes the lease name for holder until now+ttl, or extends it
// when holder already holds it. It reports false, and no error, while
// another holder's lease has not expired.
//
// Expiry is judged by the store's clock, which on several hosts means their
// clocks must agree to well within ttl; a holder therefore stops using a
// lease some margin before the expiry it last wrote.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	token, err := s.AcquireFenced(ctx, name, holder, ttl)
	return token > 0, err
}

// AcquireFenced is AcquireLease that also returns the lease's fencing
// token: 0 when another holder has it, else a number that is the same for
// renewals and larger than every earlier one whenever the lease changed
// hands or was taken again after it lapsed.
func (s *Store) AcquireFenced(ctx context.Context, name, holder string, ttl time.Duration) (int64, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return 0, fmt.Errorf("store: acquire lease %q: empty name or holder, or ttl %s", name, ttl)
	}
	now := ms(s.now())
	// One statement, so two instances racing for the same lease cannot both
	// win: the row's primary key serialises them and the WHERE of the update
	// lets only the holder or a taker of an expired lease through.
	var token int64
	err := s.w.QueryRowContext(ctx, s.q(`INSERT INTO leases (name, holder, acquired_at, expires_at, token) VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (name) DO UPDATE SET
			acquired_at = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ? THEN leases.acquired_at ELSE excluded.acquired_at END,
			token = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ? THEN leases.token ELSE leases.token + 1 END,
			holder = excluded.holder,
			expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
		RETURNING token`),
		name, holder, now, now+ttl.Milliseconds(), now, now, now).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: acquire lease %q: %w", name, err)
	}
	return token, nil
}

// ReleaseLease ends holder's lease on name so that another instance can take
// it at once. Releasing a lease that holder does not hold does nothing. The
// row stays (expired) so that the lease's fencing token keeps growing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.w.ExecContext(ctx, s.q(`UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?`), name, holder); err != nil {
		return fmt.Errorf("store: release lease %q: %w", name, err)
	}
	return nil
}

// CheckLease reports whether holder still holds name with token: the
// check a lease holder makes before a write that a holder which lost the
// lease (paused past its expiry, say) must not make.
func (s *Store) CheckLease(ctx context.Context, name, holder string, token int64) (bool, error) {
	l, err := s.GetLease(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return l.Holder == holder && l.Token == token && l.ExpiresAt.After(s.now()), nil
}

// GetLease returns the lease name, expired or not, or ErrNotFound.
func (s *Store) GetLease(ctx context.Context, name string) (Lease, error) {
	l := Lease{Name: name}
	var acquired, expires int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT holder, acquired_at, expires_at, token FROM leases WHERE name = ?`), name).
		Scan(&l.Holder, &acquired, &expires, &l.Token)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, fmt.Errorf("store: lease %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("store: lease %q: %w", name, err)
	}
	l.AcquiredAt, l.ExpiresAt = fromMS(acquired), fromMS(expires)
	return l, nil
}
