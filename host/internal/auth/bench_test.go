package auth

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// BenchmarkAuthenticate measures turning a request into a principal for
// each kind of credential, on SQLite.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	c := &clock{t: time.Now()}
	st, err := store.Open(ctx, b.TempDir()+"/bench.db", store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	EnsureAdminToken(ctx, st, "bench-admin-token-0123456789")
	if _, err := st.CreateAccount(ctx, store.Account{ID: "a1", Username: "u"}); err != nil {
		b.Fatal(err)
	}
	keys, err := NewKeyring(ctx, st, KeyringConfig{Rotate: time.Hour, TokenTTL: time.Hour, Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	sessions := NewSessions(st, keys, time.Hour, c.now)
	tk, err := sessions.Start(ctx, "a1", "password", "", "")
	if err != nil {
		b.Fatal(err)
	}
	id, secret := NewAPIKey()
	if _, err := st.CreateAPIKey(ctx, store.APIKey{ID: id, AccountID: "a1", Prefix: "swk_", Guilds: []string{"*"}, Tier: "free"}, HashToken(secret)); err != nil {
		b.Fatal(err)
	}
	a := NewAuthenticator(st).WithUsers(sessions, st, st, NewUsageRecorder(st, nil))
	for _, bc := range []struct{ name, header string }{
		{"admin-token", "Bearer bench-admin-token-0123456789"},
		{"access-token", "Bearer " + tk.AccessToken},
		{"api-key", "Bearer " + secret},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/api/v1/guilds", nil)
			r.Header.Set("Authorization", bc.header)
			for i := 0; i < b.N; i++ {
				if _, err := a.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
