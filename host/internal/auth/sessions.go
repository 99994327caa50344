package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// SessionStore keeps sessions and their refresh tokens.
type SessionStore interface {
	CreateSession(ctx context.Context, x store.Session, refreshHash string) error
	GetSession(ctx context.Context, id string) (store.Session, error)
	RotateRefresh(ctx context.Context, oldHash, newHash string) (store.Session, store.RefreshOutcome, error)
	RevokeSession(ctx context.Context, id, reason string) error
}

// ErrRefreshReused means a refresh token was presented a second time: the
// session it belongs to has been revoked, since someone holds a copy.
var ErrRefreshReused = fmt.Errorf("%w: refresh token reused; the session is revoked", ErrUnauthenticated)

// Sessions starts, refreshes and ends logins.
type Sessions struct {
	st   SessionStore
	keys *Keyring
	ttl  time.Duration // refresh token / session lifetime
	now  func() time.Time
}

// NewSessions returns the session service; sessions live for ttl without a
// new login.
func NewSessions(st SessionStore, keys *Keyring, ttl time.Duration, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{st: st, keys: keys, ttl: ttl, now: now}
}

// Tokens is what a login or refresh hands out.
type Tokens struct {
	AccessToken      string    `json:"access_token"`
	RefreshToken     string    `json:"refresh_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int       `json:"expires_in"`
	AccessExpiresAt  time.Time `json:"-"`
	RefreshExpiresAt time.Time `json:"-"`
	SessionID        string    `json:"session_id"`
	CSRF             string    `json:"csrf_token"`
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail
	return hex.EncodeToString(b)
}

// Start creates a session for an account that just proved who it is.
func (s *Sessions) Start(ctx context.Context, accountID, method, ip, userAgent string) (Tokens, error) {
	refresh := "swr_" + randomString(32)
	x := store.Session{ID: randomID(), AccountID: accountID, Method: method, CSRF: randomString(24),
		IP: ip, UserAgent: truncateUA(userAgent), ExpiresAt: s.now().Add(s.ttl)}
	if err := s.st.CreateSession(ctx, x, HashToken(refresh)); err != nil {
		return Tokens{}, fmt.Errorf("auth: start session: %w", err)
	}
	return s.tokens(ctx, x, refresh)
}

func (s *Sessions) tokens(ctx context.Context, x store.Session, refresh string) (Tokens, error) {
	access, exp, err := s.keys.Sign(ctx, x.AccountID, x.ID, x.CSRF)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(exp.Sub(s.now()).Round(time.Second) / time.Second), AccessExpiresAt: exp,
		RefreshExpiresAt: x.ExpiresAt, SessionID: x.ID, CSRF: x.CSRF}, nil
}

func truncateUA(ua string) string {
	if len(ua) > 256 {
		return ua[:256]
	}
	return ua
}

// Refresh trades a refresh token for a new access and refresh token. The
// old refresh token stops working; presenting it again revokes the session
// (ErrRefreshReused).
func (s *Sessions) Refresh(ctx context.Context, refresh string) (Tokens, store.Session, error) {
	if len(refresh) < 20 || len(refresh) > 128 {
		return Tokens{}, store.Session{}, fmt.Errorf("%w: malformed refresh token", ErrUnauthenticated)
	}
	next := "swr_" + randomString(32)
	x, outcome, err := s.st.RotateRefresh(ctx, HashToken(refresh), HashToken(next))
	if err != nil {
		return Tokens{}, x, fmt.Errorf("auth: refresh: %w", err)
	}
	switch outcome {
	case store.RefreshUnknown:
		return Tokens{}, x, fmt.Errorf("%w: unknown refresh token", ErrUnauthenticated)
	case store.RefreshReused:
		return Tokens{}, x, ErrRefreshReused
	case store.RefreshDead:
		return Tokens{}, x, fmt.Errorf("%w: session ended", ErrUnauthenticated)
	}
	t, err := s.tokens(ctx, x, next)
	return t, x, err
}

// Check verifies an access token and that its session is still live.
func (s *Sessions) Check(ctx context.Context, access string) (Claims, store.Session, error) {
	c, err := s.keys.Verify(ctx, access)
	if err != nil {
		return c, store.Session{}, err
	}
	x, err := s.st.GetSession(ctx, c.SessionID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c, x, fmt.Errorf("%w: unknown session", ErrUnauthenticated)
	case err != nil:
		return c, x, err
	case x.RevokedAt != nil:
		return c, x, fmt.Errorf("%w: session revoked", ErrUnauthenticated)
	case !s.now().Before(x.ExpiresAt):
		return c, x, fmt.Errorf("%w: session expired", ErrUnauthenticated)
	case x.AccountID != c.Subject:
		return c, x, fmt.Errorf("%w: token does not match its session", ErrUnauthenticated)
	}
	return c, x, nil
}

// End revokes a session (logout).
func (s *Sessions) End(ctx context.Context, sessionID, reason string) error {
	return s.st.RevokeSession(ctx, sessionID, reason)
}
