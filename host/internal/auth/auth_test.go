package auth

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/sealing"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// cheap keeps password hashing fast in tests.
var cheap = Argon2{Time: 1, Memory: 64, Threads: 1}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func openStore(t *testing.T, c *clock) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "auth.db"), store.Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestPasswordHash(t *testing.T) {
	h, err := cheap.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(h, "correct horse") {
		t.Fatalf("hash %q", h)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		if ok, err := CheckPassword(h, pw); ok != want || err != nil {
			t.Errorf("%q: %v %v", pw, ok, err)
		}
	}
	if _, err := cheap.Hash("short"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}
	if _, err := CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Fatal("foreign hash accepted")
	}
}

func TestLoginBackoff(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, c)
	ctx := context.Background()
	h, _ := cheap.Hash("the-right-password")
	if _, err := st.CreateAccount(ctx, store.Account{ID: "a1", Username: "alice", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPasswords(st, cheap, c.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Login(ctx, "nobody", "whatever-password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	for i := 1; i < p.FreeFailures; i++ {
		if _, err := p.Login(ctx, "alice", "wrong-password"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var locked *LockedError
	if _, err := p.Login(ctx, "alice", "wrong-password"); !errors.As(err, &locked) || locked.Until != c.t.Add(time.Second) {
		t.Fatalf("failure %d must lock for 1s: %v", p.FreeFailures, err)
	}
	// Even the right password is refused while locked.
	if _, err := p.Login(ctx, "alice", "the-right-password"); !errors.As(err, &locked) {
		t.Fatalf("locked account let in: %v", err)
	}
	c.advance(2 * time.Second)
	if _, err := p.Login(ctx, "alice", "wrong-password"); !errors.As(err, &locked) || locked.Until != c.t.Add(2*time.Second) {
		t.Fatalf("the lock must double: %v", err)
	}
	c.advance(3 * time.Second)
	if acc, err := p.Login(ctx, "alice", "the-right-password"); err != nil || acc.ID != "a1" {
		t.Fatalf("login after the lock: %v", err)
	}
	if acc, _ := st.GetAccount(ctx, "a1"); acc.FailedLogins != 0 || acc.LastLoginAt == nil {
		t.Fatalf("success must reset the count: %+v", acc)
	}
	if got := p.LockFor(100); got != p.MaxLock {
		t.Fatalf("lock must be capped: %v", got)
	}
}

func newKeyring(t *testing.T, st KeyStore, c *clock, secret string) *Keyring {
	t.Helper()
	k, err := NewKeyring(context.Background(), st, KeyringConfig{SecretKey: secret, Rotate: time.Hour, TokenTTL: 15 * time.Minute, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAccessTokens(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, c)
	ctx := context.Background()
	k := newKeyring(t, st, c, "a-secret-key-for-sealing-signing-keys")
	tok, _, err := k.Sign(ctx, "acc1", "sess1", "csrf1")
	if err != nil {
		t.Fatal(err)
	}
	if cl, err := k.Verify(ctx, tok); err != nil || cl.Subject != "acc1" || cl.SessionID != "sess1" || cl.CSRF != "csrf1" {
		t.Fatalf("verify: %+v %v", cl, err)
	}
	k.mu.RLock()
	kid, key := k.current, k.keys[k.current]
	k.mu.RUnlock()
	sign := func(method jwt.SigningMethod, key any, mut func(*Claims), hdr map[string]any) string {
		cl := Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: Issuer, Subject: "acc1", Audience: jwt.ClaimStrings{Audience},
			IssuedAt: jwt.NewNumericDate(c.t), ExpiresAt: jwt.NewNumericDate(c.t.Add(time.Minute))}, SessionID: "sess1"}
		if mut != nil {
			mut(&cl)
		}
		tk := jwt.NewWithClaims(method, cl)
		tk.Header["kid"] = kid
		for k, v := range hdr {
			tk.Header[k] = v
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	bad := []struct{ name, tok, reason string }{
		{"expired", sign(jwt.SigningMethodHS256, key, func(c2 *Claims) { c2.ExpiresAt = jwt.NewNumericDate(c.t.Add(-time.Minute)) }, nil), "expired"},
		{"wrong key", sign(jwt.SigningMethodHS256, []byte("another-key-another-key-another!"), nil, nil), "bad signature"},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, nil), "algorithm"},
		{"HS512", sign(jwt.SigningMethodHS512, key, nil, nil), "algorithm"},
		{"wrong audience", sign(jwt.SigningMethodHS256, key, func(c2 *Claims) { c2.Audience = jwt.ClaimStrings{"someone-else"} }, nil), "wrong audience"},
		{"wrong issuer", sign(jwt.SigningMethodHS256, key, func(c2 *Claims) { c2.Issuer = "evil" }, nil), "wrong issuer"},
		{"no expiry", sign(jwt.SigningMethodHS256, key, func(c2 *Claims) { c2.ExpiresAt = nil }, nil), "missing claim"},
		{"unknown kid", sign(jwt.SigningMethodHS256, key, nil, map[string]any{"kid": "nope"}), "unverifiable"},
		{"no session", sign(jwt.SigningMethodHS256, key, func(c2 *Claims) { c2.SessionID = "" }, nil), "without a session"},
		{"forged payload", tok[:strings.Index(tok, ".")+1] + "eyJzdWIiOiJyb290In0" + tok[strings.LastIndex(tok, "."):], "bad signature"},
		{"garbage", "eyJhbGciOi.x.y", "malformed"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := k.Verify(ctx, b.tok)
			if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), b.reason) {
				t.Fatalf("got %v, want ErrUnauthenticated (%s)", err, b.reason)
			}
			if strings.Contains(err.Error(), b.tok) {
				t.Fatal("error echoes the token")
			}
		})
	}

	// Rotation: after the rotation period a new key signs; tokens of the old
	// key still verify, also on another instance that loads the keys.
	c.advance(61 * time.Minute)
	tok2, _, err := k.Sign(ctx, "acc1", "sess1", "")
	if err != nil {
		t.Fatal(err)
	}
	k.mu.RLock()
	kid2 := k.current
	k.mu.RUnlock()
	if kid2 == kid {
		t.Fatal("key not rotated")
	}
	other := newKeyring(t, st, c, "a-secret-key-for-sealing-signing-keys")
	c.advance(-61*time.Minute + 10*time.Minute) // back within the first token's life
	if _, err := other.Verify(ctx, tok); err != nil {
		t.Fatalf("old key's token on another instance: %v", err)
	}
	c.advance(61 * time.Minute)
	if _, err := other.Verify(ctx, tok2); err != nil {
		t.Fatalf("new key's token on another instance: %v", err)
	}
	// Keys are stored sealed; with the wrong secret key they are unusable.
	keys, _ := st.ListSigningKeys(ctx)
	for _, sk := range keys {
		if !strings.HasPrefix(sk.Secret, "sealed:") {
			t.Fatalf("key stored unsealed: %s", sk.ID)
		}
	}
	wrong := newKeyring(t, st, c, "a-different-secret-key-entirely!!")
	if _, err := wrong.Verify(ctx, tok2); err == nil {
		t.Fatal("token verified with keys sealed under another secret")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, c)
	ctx := context.Background()
	s := NewSessions(st, newKeyring(t, st, c, ""), 24*time.Hour, c.now)
	t1, err := s.Start(ctx, "acc1", "password", "192.0.2.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	t2, _, err := s.Refresh(ctx, t1.RefreshToken)
	if err != nil || t2.RefreshToken == t1.RefreshToken || t2.SessionID != t1.SessionID {
		t.Fatalf("refresh: %+v %v", t2, err)
	}
	if _, _, err := s.Check(ctx, t2.AccessToken); err != nil {
		t.Fatalf("new access token: %v", err)
	}
	// Replaying the first refresh token revokes the whole family.
	if _, _, err := s.Refresh(ctx, t1.RefreshToken); !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	if _, _, err := s.Refresh(ctx, t2.RefreshToken); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the current token must die with its family: %v", err)
	}
	if _, _, err := s.Check(ctx, t2.AccessToken); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("access token of a revoked session: %v", err)
	}
	if _, _, err := s.Refresh(ctx, "swr_not-a-token-we-ever-issued"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown: %v", err)
	}
	// Sessions expire.
	t3, _ := s.Start(ctx, "acc1", "password", "", "")
	c.advance(25 * time.Hour)
	if _, _, err := s.Refresh(ctx, t3.RefreshToken); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired session refreshed: %v", err)
	}
}

func TestDiscordRoles(t *testing.T) {
	const a, b, c, d, e = "1001", "1002", "1003", "1004", "1005"
	mod := "2001"
	guilds := []DiscordGuild{
		{ID: a, Owner: true},
		{ID: b, Permissions: "32"}, // Manage Guild
		{ID: c, Permissions: "8"},  // Administrator
		{ID: d, Permissions: "1024"},
		{ID: e, Permissions: "1024"},
		{ID: "9999", Owner: true}, // not tracked here
	}
	tracked := []TrackedGuild{
		{ID: a}, {ID: b}, {ID: c},
		{ID: d, Access: store.GuildAccess{ModeratorRoles: []string{mod}}, MemberRoles: []string{"5", mod}},
		{ID: e, Access: store.GuildAccess{MemberAccess: true}},
		{ID: "1006", Access: store.GuildAccess{MemberAccess: true}}, // not a member
	}
	got := DiscordRoles(guilds, tracked)
	want := map[string]string{a: authz.RoleOwner, b: authz.RoleAdmin, c: authz.RoleAdmin, d: authz.RoleModerator, e: authz.RoleViewer, "1006": ""}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for g, r := range want {
		if got[g] != r {
			t.Errorf("guild %s: %q, want %q", g, got[g], r)
		}
	}
	// Without member access a plain member gets nothing.
	tracked[4].Access.MemberAccess = false
	if r := DiscordRoles(guilds, tracked)[e]; r != "" {
		t.Fatalf("member without member access: %q", r)
	}
}

func TestSafeReturnTo(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/guilds/1": "/guilds/1", "//evil.example": "/", "https://evil.example": "/", "/\\evil": "/", "/a\r\nSet-Cookie:x": "/"} {
		if got := SafeReturnTo(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestParseTiers(t *testing.T) {
	ts, err := ParseTiers("free=60/10000, standard=600/200000")
	if err != nil || ts["standard"].PerMinute != 600 || ts["free"].PerDay != 10000 {
		t.Fatalf("%v %v", ts, err)
	}
	for _, bad := range []string{"", "x", "x=1", "x=a/1", "x=0/1"} {
		if _, err := ParseTiers(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSigningKeysSurviveSecretRotation: tokens signed under the old secret
// key verify after the secret changes (old one in OldSecretKeys), keys
// sealed in the format without a key ID still open, and after
// ResealSigningKeys the old secret is no longer needed.
func TestSigningKeysSurviveSecretRotation(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, c)
	ctx := context.Background()
	const oldSecret, newSecret = "the-old-secret-key-for-signing-keys", "the-new-secret-key-for-signing-keys"
	k := newKeyring(t, st, c, oldSecret)
	tok, _, err := k.Sign(ctx, "acc1", "sess1", "")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := st.ListSigningKeys(ctx)
	if len(keys) != 1 || !strings.HasPrefix(keys[0].Secret, "sealed:"+sealing.KeyID(oldSecret)+":") {
		t.Fatalf("stored as %q", keys[0].Secret)
	}
	// The format of earlier releases: "sealed:<base64>", no key ID.
	legacy := "sealed:" + keys[0].Secret[len("sealed:"+sealing.KeyID(oldSecret)+":"):]
	if err := st.SetSigningKeySecret(ctx, keys[0].ID, legacy); err != nil {
		t.Fatal(err)
	}
	rotated, err := NewKeyring(ctx, st, KeyringConfig{SecretKey: newSecret, OldSecretKeys: []string{oldSecret}, Rotate: time.Hour, TokenTTL: 15 * time.Minute, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Verify(ctx, tok); err != nil {
		t.Fatalf("token signed before the rotation: %v", err)
	}
	seal, _ := sealing.New(newSecret, []string{oldSecret})
	if n, failed, err := ResealSigningKeys(ctx, st, seal); err != nil || n != 1 || failed != 0 {
		t.Fatalf("reseal: %d %d %v", n, failed, err)
	}
	only := newKeyring(t, st, c, newSecret)
	if _, err := only.Verify(ctx, tok); err != nil {
		t.Fatalf("after re-sealing, without the old secret: %v", err)
	}
	other := newKeyring(t, openStore(t, c), c, "an-unrelated-secret-key-0123456789")
	if _, err := other.Verify(ctx, tok); err == nil {
		t.Fatal("verified with an unrelated keyring")
	}
}
