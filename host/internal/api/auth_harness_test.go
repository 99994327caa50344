package api

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/ratelimit"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/ws"
)

// cheapArgon2 keeps password hashing fast in tests.
var cheapArgon2 = auth.Argon2{Time: 1, Memory: 64, Threads: 1}

// authParts are the authentication and authorization pieces of a test
// router, for tests that log in, mint tokens or change roles.
type authParts struct {
	enf      *authz.Enforcer
	sessions *auth.Sessions
	keys     *auth.Keyring
	usage    *auth.UsageRecorder
}

// withAuth completes d with everything authentication and authorization
// need, over st, as app.New builds it (in-process limiter, generous limits).
func withAuth(t testing.TB, st *store.Store, d Deps, notifier authz.Notifier) (Deps, *authParts) {
	t.Helper()
	ctx := context.Background()
	now := d.Now
	if now == nil {
		now = time.Now
	}
	enf, err := authz.New(ctx, st, authz.Options{Notifier: notifier})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(enf.Close)
	keys, err := auth.NewKeyring(ctx, st, auth.KeyringConfig{Rotate: 24 * time.Hour, TokenTTL: 15 * time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sessions := auth.NewSessions(st, keys, 30*24*time.Hour, now)
	usage := auth.NewUsageRecorder(st, now)
	pw, err := auth.NewPasswords(st, cheapArgon2, now)
	if err != nil {
		t.Fatal(err)
	}
	d.Auth = auth.NewAuthenticator(st).WithUsers(sessions, st, st, usage)
	d.Authz = enf
	d.Passwords = pw
	d.Sessions = sessions
	d.Argon2 = cheapArgon2
	if d.Limiter == nil {
		d.Limiter = ratelimit.NewMemory(now)
	}
	if d.Limits.Tiers == nil {
		d.Limits = Limits{PerIP: 100000, PerPrincipal: 100000, Login: 100000,
			Tiers: map[string]auth.Tier{"free": {Name: "free", PerMinute: 100000, PerDay: 1000000}, "tiny": {Name: "tiny", PerMinute: 3, PerDay: 5}}}
	}
	if d.DefaultTier == "" {
		d.DefaultTier = "free"
	}
	if d.Security.CookieSecure == "" {
		d.Security.CookieSecure = "auto"
	}
	if d.Security.TrustedProxies == nil {
		d.Security.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	if d.Live == nil {
		hub, err := ws.New(ws.Config{Auth: d.Auth, Authz: enf}, bus.NewLocal())
		if err != nil {
			t.Fatal(err)
		}
		d.Live = hub
	}
	return d, &authParts{enf: enf, sessions: sessions, keys: keys, usage: usage}
}
