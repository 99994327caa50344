package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// LoginStore is what password login reads and writes.
type LoginStore interface {
	AccountByUsername(ctx context.Context, username string) (store.Account, error)
	RecordLoginFailure(ctx context.Context, id string, lock func(failures int) time.Time) (int, error)
	RecordLogin(ctx context.Context, id string) error
}

// ErrBadCredentials is the one answer for an unknown user and a wrong
// password, so that the answer does not tell which.
var ErrBadCredentials = fmt.Errorf("%w: invalid username or password", ErrUnauthenticated)

// ErrAccountDisabled is returned for a correct login to a disabled account.
var ErrAccountDisabled = errors.New("auth: account disabled")

// LockedError is returned while an account is locked after repeated
// failures; it ends at Until.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return "auth: too many failed logins; try again after " + e.Until.UTC().Format(time.RFC3339)
}

// Passwords checks password logins. After FreeFailures consecutive
// failures an account is locked for 1 s, then 2 s, 4 s ... up to MaxLock,
// so that guessing is slow without locking a mistyping user out for long.
type Passwords struct {
	st           LoginStore
	now          func() time.Time
	FreeFailures int
	MaxLock      time.Duration
	dummy        string // a hash to check against when the user is unknown
}

// NewPasswords returns the password login checker.
func NewPasswords(st LoginStore, params Argon2, now func() time.Time) (*Passwords, error) {
	if now == nil {
		now = time.Now
	}
	dummy, err := params.Hash("not-a-real-password-" + randomString(8))
	if err != nil {
		return nil, err
	}
	return &Passwords{st: st, now: now, FreeFailures: 5, MaxLock: 15 * time.Minute, dummy: dummy}, nil
}

// LockFor returns how long an account is locked after n consecutive failures.
func (p *Passwords) LockFor(n int) time.Duration {
	if n < p.FreeFailures {
		return 0
	}
	d := time.Second << min(n-p.FreeFailures, 20)
	return min(d, p.MaxLock)
}

// Login returns the account when username and password match.
func (p *Passwords) Login(ctx context.Context, username, password string) (store.Account, error) {
	if username == "" || len(username) > 64 || len(password) > 256 {
		CheckPassword(p.dummy, password) //nolint:errcheck // equalises timing
		return store.Account{}, ErrBadCredentials
	}
	acc, err := p.st.AccountByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		CheckPassword(p.dummy, password) //nolint:errcheck // equalises timing
		return store.Account{}, ErrBadCredentials
	}
	if err != nil {
		return acc, fmt.Errorf("auth: login: %w", err)
	}
	now := p.now()
	if now.Before(acc.LockedUntil) {
		return acc, &LockedError{Until: acc.LockedUntil}
	}
	if acc.PasswordHash == "" {
		CheckPassword(p.dummy, password) //nolint:errcheck // equalises timing
		return acc, ErrBadCredentials
	}
	ok, err := CheckPassword(acc.PasswordHash, password)
	if err != nil {
		return acc, fmt.Errorf("auth: login: %w", err)
	}
	if !ok {
		n, err := p.st.RecordLoginFailure(ctx, acc.ID, func(n int) time.Time {
			if d := p.LockFor(n); d > 0 {
				return now.Add(d)
			}
			return time.Time{}
		})
		if err != nil {
			return acc, err
		}
		if d := p.LockFor(n); d > 0 {
			return acc, &LockedError{Until: now.Add(d)}
		}
		return acc, ErrBadCredentials
	}
	if acc.Disabled {
		return acc, ErrAccountDisabled
	}
	if err := p.st.RecordLogin(ctx, acc.ID); err != nil {
		return acc, err
	}
	return acc, nil
}
