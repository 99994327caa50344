// Package auth identifies who is calling the host. For now that is the
// instance admin, holding an admin token; user accounts, sessions and API
// keys build on the same Principal.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// TokenStore keeps admin token hashes.
type TokenStore interface {
	AddAdminToken(ctx context.Context, id, hash string) error
	AdminTokenID(ctx context.Context, hash string) (string, error)
	CountAdminTokens(ctx context.Context) (int, error)
}

// Principal is an authenticated caller.
type Principal struct {
	Kind  string // "admin_token"
	ID    string
	Admin bool
}

// ErrUnauthenticated means the request carries no valid credential.
var ErrUnauthenticated = errors.New("auth: missing or invalid credentials")

// HashToken returns the stored form of a token. Tokens are 256-bit random
// values, so a plain SHA-256 is enough (no password stretching needed), and
// it lets a lookup by hash replace a comparison with every stored token.
func HashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// NewToken returns a fresh random admin token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return "swa_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// EnsureAdminToken makes sure the instance can be administered. A configured
// token is registered (idempotently). Without one, a token is generated on
// the first start only and returned so the caller can print it once; later
// starts return "".
func EnsureAdminToken(ctx context.Context, ts TokenStore, configured string) (generated string, err error) {
	if configured != "" {
		return "", ts.AddAdminToken(ctx, "configured", HashToken(configured))
	}
	n, err := ts.CountAdminTokens(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	tok, err := NewToken()
	if err != nil {
		return "", err
	}
	if err := ts.AddAdminToken(ctx, "generated-"+time.Now().UTC().Format("20060102T150405"), HashToken(tok)); err != nil {
		return "", err
	}
	return tok, nil
}

// Authenticator checks bearer tokens, remembering recent answers so that a
// busy dashboard does not cost a database read per request.
type Authenticator struct {
	store TokenStore
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	p       Principal
	ok      bool
	expires time.Time
}

// NewAuthenticator returns an Authenticator over ts.
func NewAuthenticator(ts TokenStore) *Authenticator {
	return &Authenticator{store: ts, ttl: 30 * time.Second, now: time.Now, cache: map[string]cached{}}
}

// Authenticate returns the principal of a request or ErrUnauthenticated.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" || len(tok) > 512 {
		return Principal{}, ErrUnauthenticated
	}
	hash := HashToken(strings.TrimSpace(tok))
	now := a.now()
	a.mu.Lock()
	c, hit := a.cache[hash]
	a.mu.Unlock()
	if hit && now.Before(c.expires) {
		if !c.ok {
			return Principal{}, ErrUnauthenticated
		}
		return c.p, nil
	}
	id, err := a.store.AdminTokenID(r.Context(), hash)
	c = cached{expires: now.Add(a.ttl)}
	switch {
	case err == nil:
		c.ok, c.p = true, Principal{Kind: "admin_token", ID: id, Admin: true}
	case errors.Is(err, store.ErrNotFound):
	default:
		return Principal{}, fmt.Errorf("auth: look up token: %w", err)
	}
	a.mu.Lock()
	if len(a.cache) > 10000 { // bound memory under a flood of bad tokens
		clear(a.cache)
	}
	a.cache[hash] = c
	a.mu.Unlock()
	if !c.ok {
		return Principal{}, ErrUnauthenticated
	}
	return c.p, nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
