package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind      string `json:"kind"` // KindAdminToken, KindUser or KindAPIKey
	ID        string `json:"id"`   // admin token ID, account ID or API key ID
	Subject   string `json:"subject"`
	Name      string `json:"name,omitempty"`       // username or key name
	AccountID string `json:"account_id,omitempty"` // the user, or the key's owner
	SessionID string `json:"session_id,omitempty"`
	Admin     bool   `json:"-"` // the bootstrap admin token
	ReadOnly  bool   `json:"read_only,omitempty"`
	Tier      string `json:"tier,omitempty"`
	// Cookie is set when the session cookie authenticated the request:
	// mutations then need the CSRF header.
	Cookie bool   `json:"-"`
	CSRF   string `json:"-"`
}

// The kinds of principal.
const (
	KindAdminToken = "admin_token"
	KindUser       = "user"
	KindAPIKey     = "api_key"
)

// Cookie and header names of the dashboard's session.
const (
	CookieAccess  = "sw_access"
	CookieRefresh = "sw_refresh"
	CookieCSRF    = "sw_csrf"
	HeaderCSRF    = "X-CSRF-Token"
)

// ErrNoCredentials means the request carries no credential at all (as
// opposed to a bad one, which is worth auditing).
var ErrNoCredentials = fmt.Errorf("%w: no credentials", ErrUnauthenticated)

// AccountGetter reads accounts.
type AccountGetter interface {
	GetAccount(ctx context.Context, id string) (store.Account, error)
}

// APIKeyGetter finds API keys by the hash of their secret.
type APIKeyGetter interface {
	APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error)
}

// Authenticator turns requests into principals.
type Authenticator struct {
	store    TokenStore
	sessions *Sessions
	accounts AccountGetter
	keys     APIKeyGetter
	usage    *UsageRecorder
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	p       Principal
	ok      bool
	expires time.Time
}

// NewAuthenticator returns an Authenticator that knows admin tokens; add
// users and API keys with WithUsers.
func NewAuthenticator(ts TokenStore) *Authenticator {
	return &Authenticator{store: ts, ttl: 30 * time.Second, now: time.Now, cache: map[string]cached{}}
}

// WithUsers makes a also accept session tokens (Bearer or cookie) and API
// keys, whose use it counts in usage (which may be nil).
func (a *Authenticator) WithUsers(s *Sessions, accounts AccountGetter, keys APIKeyGetter, usage *UsageRecorder) *Authenticator {
	a.sessions, a.accounts, a.keys, a.usage = s, accounts, keys, usage
	return a
}

// Authenticate returns the principal of a request. Every failure wraps
// ErrUnauthenticated and says why without repeating the credential;
// ErrNoCredentials when there was none.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if h, ok := r.Header["Authorization"]; ok {
		if len(h) != 1 {
			return Principal{}, fmt.Errorf("%w: several Authorization headers", ErrUnauthenticated)
		}
		scheme, tok, found := strings.Cut(h[0], " ")
		tok = strings.TrimSpace(tok)
		if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 4096 || !printable(tok) {
			return Principal{}, fmt.Errorf("%w: malformed Authorization header (want Bearer <token>)", ErrUnauthenticated)
		}
		switch {
		case strings.HasPrefix(tok, APIKeyPrefix) && a.keys != nil:
			return a.apiKey(r.Context(), tok)
		case looksLikeJWT(tok) && a.sessions != nil:
			return a.session(r.Context(), tok, false)
		case len(tok) > 512:
			return Principal{}, fmt.Errorf("%w: token too long", ErrUnauthenticated)
		}
		return a.adminToken(r.Context(), tok)
	}
	if c, err := r.Cookie(CookieAccess); err == nil && a.sessions != nil {
		if c.Value == "" || len(c.Value) > 4096 || !looksLikeJWT(c.Value) {
			return Principal{}, fmt.Errorf("%w: malformed session cookie", ErrUnauthenticated)
		}
		return a.session(r.Context(), c.Value, true)
	}
	return Principal{}, ErrNoCredentials
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 && strings.HasPrefix(s, "eyJ") }

func (a *Authenticator) session(ctx context.Context, tok string, cookie bool) (Principal, error) {
	c, x, err := a.sessions.Check(ctx, tok)
	if err != nil {
		return Principal{}, err
	}
	acc, err := a.accounts.GetAccount(ctx, x.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: account deleted", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: session account: %w", err)
	}
	if acc.Disabled {
		return Principal{}, fmt.Errorf("%w: account disabled", ErrUnauthenticated)
	}
	return Principal{Kind: KindUser, ID: acc.ID, Subject: authz.User(acc.ID), Name: acc.Username, AccountID: acc.ID,
		SessionID: x.ID, Cookie: cookie, CSRF: c.CSRF}, nil
}

func (a *Authenticator) apiKey(ctx context.Context, tok string) (Principal, error) {
	k, err := a.keys.APIKeyByHash(ctx, HashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: unknown API key", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: api key: %w", err)
	}
	now := a.now()
	if k.RevokedAt != nil {
		return Principal{}, fmt.Errorf("%w: API key %s revoked", ErrUnauthenticated, k.ID)
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return Principal{}, fmt.Errorf("%w: API key %s expired", ErrUnauthenticated, k.ID)
	}
	acc, err := a.accounts.GetAccount(ctx, k.AccountID)
	if err != nil || acc.Disabled {
		return Principal{}, fmt.Errorf("%w: API key %s belongs to a missing or disabled account", ErrUnauthenticated, k.ID)
	}
	if a.usage != nil {
		a.usage.Record(k.ID)
	}
	return Principal{Kind: KindAPIKey, ID: k.ID, Subject: authz.APIKey(k.ID), Name: k.Name, AccountID: k.AccountID,
		ReadOnly: !k.Write, Tier: k.Tier}, nil
}

// adminToken checks an admin token, remembering recent answers so that a
// busy client does not cost a database read per request.
func (a *Authenticator) adminToken(ctx context.Context, tok string) (Principal, error) {
	hash := HashToken(tok)
	now := a.now()
	a.mu.Lock()
	c, hit := a.cache[hash]
	a.mu.Unlock()
	if hit && now.Before(c.expires) {
		if !c.ok {
			return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
		}
		return c.p, nil
	}
	id, err := a.store.AdminTokenID(ctx, hash)
	c = cached{expires: now.Add(a.ttl)}
	switch {
	case err == nil:
		c.ok, c.p = true, Principal{Kind: KindAdminToken, ID: id, Subject: authz.AdminToken, Name: "admin token " + id, Admin: true}
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
		return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return c.p, nil
}
