// Package auth identifies who is calling the host: the instance admin
// holding the bootstrap admin token, people logged in with a password or
// through Discord (JWT access tokens with rotating refresh tokens, as a
// Bearer token or the dashboard's cookie), and programs holding API keys.
// Authenticator.Authenticate is the one function that turns a request into
// a Principal, for the REST API and the WebSocket hub alike.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// TokenStore keeps admin token hashes.
type TokenStore interface {
	AddAdminToken(ctx context.Context, id, hash string) error
	AdminTokenID(ctx context.Context, hash string) (string, error)
	CountAdminTokens(ctx context.Context) (int, error)
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

// NewAccountID returns a fresh random account ID.
func NewAccountID() string { return randomID() }
