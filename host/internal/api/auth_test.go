package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type authHarness struct {
	h     http.Handler
	st    *store.Store
	parts *authParts
	logs  *lockedBuffer
}

// newAuthHarness is a router over a store with guilds A and B seeded, the
// admin token registered and every log line (debug and up) captured.
func newAuthHarness(t *testing.T, mod func(*Deps)) *authHarness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "auth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := auth.EnsureAdminToken(ctx, st, token); err != nil {
		t.Fatal(err)
	}
	seedGuild(t, st, guildID)
	seedGuild(t, st, guildB)
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	d, parts := withAuth(t, st, Deps{Store: st, Ingest: nopIngest{}, Gatherer: reg, Registerer: reg, MaxBodyBytes: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, nil)
	if mod != nil {
		mod(&d)
	}
	h, err := Router(d)
	if err != nil {
		t.Fatal(err)
	}
	return &authHarness{h: h, st: st, parts: parts, logs: logs}
}

type req struct {
	method, path, body string
	bearer             string
	remote             string // the direct peer; httptest's 192.0.2.1 when empty
	hdr                map[string]string
	cookies            []*http.Cookie
}

func (a *authHarness) do(r req) *httptest.ResponseRecorder {
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, hr)
	return w
}

func (a *authHarness) must(t *testing.T, r req, status int) *httptest.ResponseRecorder {
	t.Helper()
	w := a.do(r)
	if w.Code != status {
		t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, w.Code, w.Body, status)
	}
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return v
}

func cookie(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// createUser makes an account through the admin API with the admin token,
// as a self-hoster bootstraps the first one.
func (a *authHarness) createUser(t *testing.T, name string, instanceAdmin bool) string {
	t.Helper()
	w := a.must(t, req{method: "POST", path: "/api/v1/admin/users", bearer: token,
		body: `{"username":"` + name + `","password":"pw-of-` + name + `-123","instance_admin":` + boolStr(instanceAdmin) + `}`}, 201)
	return decode[account](t, w).ID
}

func (a *authHarness) login(t *testing.T, name string) (auth.Tokens, *httptest.ResponseRecorder) {
	t.Helper()
	w := a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"` + name + `","password":"pw-of-` + name + `-123"}`}, 200)
	return decode[auth.Tokens](t, w), w
}

func (a *authHarness) audited(t *testing.T, action, result string) []store.AuditEntry {
	t.Helper()
	page, err := a.st.ListAudit(context.Background(), store.AuditQuery{Action: action, Result: result, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Entries
}

func TestPasswordLoginSessionsAndCookies(t *testing.T) {
	a := newAuthHarness(t, nil)
	alice := a.createUser(t, "alice", false)
	a.must(t, req{method: "POST", path: "/api/v1/admin/users", bearer: token, body: `{"username":"alice","password":"another-password"}`}, 409)
	a.must(t, req{method: "POST", path: "/api/v1/admin/users", bearer: token, body: `{"username":"bob","password":"short"}`}, 400)

	// Wrong password and unknown user get the same answer.
	for _, body := range []string{`{"username":"alice","password":"wrong-password"}`, `{"username":"nobody","password":"wrong-password"}`} {
		w := a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: body}, 401)
		if !strings.Contains(w.Body.String(), `"message":"invalid username or password"`) {
			t.Fatalf("login failure: %s", w.Body)
		}
	}
	a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice"`}, 400)
	a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"x","extra":1}`}, 400)

	tok, w := a.login(t, "alice")
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 || tok.CSRF == "" || tok.SessionID == "" {
		t.Fatalf("tokens: %+v", tok)
	}
	access, refresh, csrf := cookie(w, auth.CookieAccess), cookie(w, auth.CookieRefresh), cookie(w, auth.CookieCSRF)
	if access == nil || !access.HttpOnly || access.SameSite != http.SameSiteLaxMode || access.Secure || access.Path != "/" {
		t.Fatalf("access cookie: %+v", access)
	}
	if refresh == nil || !refresh.HttpOnly || refresh.SameSite != http.SameSiteStrictMode || refresh.Path != "/api/v1/auth" {
		t.Fatalf("refresh cookie: %+v", refresh)
	}
	if csrf == nil || csrf.HttpOnly || csrf.Value != tok.CSRF {
		t.Fatalf("csrf cookie: %+v", csrf)
	}
	// Behind a TLS-terminating proxy the cookies are Secure; a client that
	// merely claims TLS is not believed.
	w = a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"pw-of-alice-123"}`,
		hdr: map[string]string{"X-Forwarded-Proto": "https"}, remote: "127.0.0.1:40000"}, 200)
	if c := cookie(w, auth.CookieAccess); !c.Secure || w.Header().Get("Strict-Transport-Security") == "" {
		t.Fatalf("TLS login: cookie %+v, HSTS %q", c, w.Header().Get("Strict-Transport-Security"))
	}
	w = a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"pw-of-alice-123"}`,
		hdr: map[string]string{"X-Forwarded-Proto": "https"}}, 200)
	if c := cookie(w, auth.CookieAccess); c.Secure || w.Header().Get("Strict-Transport-Security") != "" {
		t.Fatalf("an untrusted peer's X-Forwarded-Proto was believed: %+v", c)
	}

	// Bearer and cookie both identify alice; she sees no guild without a role.
	w = a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: tok.AccessToken}, 200)
	if m := decode[me](t, w); m.Kind != auth.KindUser || m.AccountID != alice || len(m.Roles) != 0 {
		t.Fatalf("me: %s", w.Body)
	}
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", cookies: []*http.Cookie{access}}, 200)
	if w := a.must(t, req{method: "GET", path: "/api/v1/guilds", bearer: tok.AccessToken}, 200); strings.Contains(w.Body.String(), guildID) {
		t.Fatalf("guild list not filtered: %s", w.Body)
	}
	a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID, bearer: tok.AccessToken}, 403)
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + alice, bearer: token, body: `{"role":"viewer"}`}, 200)
	w = a.must(t, req{method: "GET", path: "/api/v1/guilds", bearer: tok.AccessToken}, 200)
	if !strings.Contains(w.Body.String(), guildID) || strings.Contains(w.Body.String(), guildB) {
		t.Fatalf("viewer of A must list A only: %s", w.Body)
	}
	a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID + "/members", bearer: tok.AccessToken}, 403)

	// Cookie-authenticated changes need the CSRF header.
	a.must(t, req{method: "POST", path: "/api/v1/auth/logout", cookies: []*http.Cookie{access}}, 403)
	a.must(t, req{method: "POST", path: "/api/v1/auth/logout", cookies: []*http.Cookie{access}, hdr: map[string]string{auth.HeaderCSRF: "wrong"}}, 403)
	if len(a.audited(t, "auth.csrf", "denied")) != 2 {
		t.Fatal("CSRF refusals not audited")
	}
	a.must(t, req{method: "POST", path: "/api/v1/auth/logout", cookies: []*http.Cookie{access}, hdr: map[string]string{auth.HeaderCSRF: tok.CSRF}}, 204)
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", cookies: []*http.Cookie{access}}, 401)
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: tok.AccessToken}, 401)

	// Sessions: list, revoke another one.
	t1, _ := a.login(t, "alice")
	t2, _ := a.login(t, "alice")
	w = a.must(t, req{method: "GET", path: "/api/v1/auth/sessions", bearer: t1.AccessToken}, 200)
	if n := strings.Count(w.Body.String(), `"method":"password"`); n != 4 { // the two TLS logins, t1, t2
		t.Fatalf("%d live sessions listed: %s", n, w.Body)
	}
	a.must(t, req{method: "DELETE", path: "/api/v1/auth/sessions/" + t2.SessionID, bearer: t1.AccessToken}, 204)
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: t2.AccessToken}, 401)
	a.must(t, req{method: "DELETE", path: "/api/v1/auth/sessions/nope", bearer: t1.AccessToken}, 404)
	// An admin sees and revokes sessions of anyone.
	a.must(t, req{method: "GET", path: "/api/v1/admin/users/" + alice + "/sessions", bearer: token}, 200)
	a.must(t, req{method: "DELETE", path: "/api/v1/admin/sessions/" + t1.SessionID, bearer: token}, 204)
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: t1.AccessToken}, 401)

	// Disabling an account ends its sessions and its logins.
	t3, _ := a.login(t, "alice")
	a.must(t, req{method: "PATCH", path: "/api/v1/admin/users/" + alice, bearer: token, body: `{"disabled":true}`}, 200)
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: t3.AccessToken}, 401)
	a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"pw-of-alice-123"}`}, 403)
	if len(a.audited(t, "auth.login", "ok")) < 4 || len(a.audited(t, "auth.login", "denied")) < 3 {
		t.Fatal("logins not audited")
	}
}

func TestRefreshRotationAndReuseThroughTheAPI(t *testing.T) {
	a := newAuthHarness(t, nil)
	a.createUser(t, "carol", false)
	t1, w := a.login(t, "carol")
	w2 := a.must(t, req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + t1.RefreshToken + `"}`}, 200)
	t2 := decode[auth.Tokens](t, w2)
	if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == "" || t2.SessionID != t1.SessionID {
		t.Fatalf("refresh: %+v", t2)
	}
	// With the cookie, the CSRF header is needed.
	rc := cookie(w2, auth.CookieRefresh)
	a.must(t, req{method: "POST", path: "/api/v1/auth/refresh", cookies: []*http.Cookie{rc}}, 403)
	w3 := a.must(t, req{method: "POST", path: "/api/v1/auth/refresh", cookies: []*http.Cookie{rc, cookie(w, auth.CookieCSRF)}, hdr: map[string]string{auth.HeaderCSRF: t1.CSRF}}, 200)
	t3 := decode[auth.Tokens](t, w3)
	// Replaying t1's refresh token (already used) revokes the family.
	a.must(t, req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + t1.RefreshToken + `"}`}, 401)
	a.must(t, req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + t3.RefreshToken + `"}`}, 401)
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: t3.AccessToken}, 401)
	if len(a.audited(t, "auth.refresh.reuse", "denied")) != 1 {
		t.Fatal("refresh token reuse not audited")
	}
	a.must(t, req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"swr_never-issued-never-issued"}`}, 401)
	a.must(t, req{method: "POST", path: "/api/v1/auth/refresh"}, 401)
}

func TestBruteForce(t *testing.T) {
	t.Run("account backoff", func(t *testing.T) {
		a := newAuthHarness(t, nil)
		a.createUser(t, "dave", false)
		bad := req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"dave","password":"guess-guess"}`}
		for i := 0; i < 4; i++ {
			a.must(t, bad, 401)
		}
		w := a.must(t, bad, 429)
		if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "login_locked") {
			t.Fatalf("lockout: %v %s", w.Header(), w.Body)
		}
		// Even the right password waits out the lock.
		a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"dave","password":"pw-of-dave-123"}`}, 429)
	})
	t.Run("per address", func(t *testing.T) {
		a := newAuthHarness(t, func(d *Deps) { d.Limits.Login = 3 })
		bad := req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"nobody","password":"guess-guess"}`}
		for i := 0; i < 3; i++ {
			w := a.must(t, bad, 401)
			if w.Header().Get("RateLimit-Limit") != "3" || w.Header().Get("RateLimit-Remaining") != string(rune('2'-i)) {
				t.Fatalf("attempt %d headers: %v", i, w.Header())
			}
		}
		w := a.must(t, bad, 429)
		if w.Header().Get("Retry-After") == "" || w.Header().Get("RateLimit-Remaining") != "0" {
			t.Fatalf("limit headers: %v", w.Header())
		}
		if len(a.audited(t, "ratelimit.exceeded", "denied")) != 1 {
			t.Fatal("limit not audited once")
		}
	})
}

func TestPerAddressLimit(t *testing.T) {
	a := newAuthHarness(t, func(d *Deps) { d.Limits.PerIP = 2 })
	// A client cannot escape its limit by claiming other addresses...
	a.must(t, req{method: "GET", path: "/api/v1/guilds", bearer: token, hdr: map[string]string{"X-Forwarded-For": "203.0.113.1"}}, 200)
	a.must(t, req{method: "GET", path: "/api/v1/nothing-here", hdr: map[string]string{"X-Forwarded-For": "203.0.113.2"}}, 404)
	w := a.must(t, req{method: "GET", path: "/api/v1/guilds", bearer: token, hdr: map[string]string{"X-Real-IP": "203.0.113.3"}}, 429)
	if w.Header().Get("Retry-After") == "" || w.Header().Get("RateLimit-Limit") != "2" {
		t.Fatalf("headers: %v", w.Header())
	}
	// ...but behind a trusted proxy each client has its own.
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		a.must(t, req{method: "GET", path: "/api/v1/guilds", bearer: token, remote: "127.0.0.1:4000", hdr: map[string]string{"X-Forwarded-For": ip}}, 200)
	}
	// Probes are never limited: a load balancer must always reach them.
	for i := 0; i < 3; i++ {
		a.must(t, req{method: "GET", path: "/healthz"}, 200)
	}
}

func TestAPIKeys(t *testing.T) {
	a := newAuthHarness(t, nil)
	mod := a.createUser(t, "erin", false)
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + mod, bearer: token, body: `{"role":"moderator"}`}, 200)
	tok, _ := a.login(t, "erin")
	create := func(body string, status int) createdKey {
		return decode[createdKey](t, a.must(t, req{method: "POST", path: "/api/v1/auth/apikeys", bearer: tok.AccessToken, body: body}, status))
	}
	a.must(t, req{method: "POST", path: "/api/v1/auth/apikeys", bearer: tok.AccessToken, body: `{"guilds":["` + guildB + `"]}`}, 403) // no role in B
	a.must(t, req{method: "POST", path: "/api/v1/auth/apikeys", bearer: tok.AccessToken, body: `{"guilds":[]}`}, 400)
	a.must(t, req{method: "POST", path: "/api/v1/auth/apikeys", bearer: tok.AccessToken, body: `{"guilds":["*"],"tier":"gold"}`}, 400)
	a.must(t, req{method: "POST", path: "/api/v1/auth/apikeys", bearer: token, body: `{"guilds":["*"]}`}, 400) // the admin token owns nothing
	ro := create(`{"name":"dash","guilds":["`+guildID+`"]}`, 201)
	if !strings.HasPrefix(ro.Secret, auth.APIKeyPrefix) || ro.Write || ro.Tier != "free" || !strings.HasPrefix(ro.Secret, ro.Prefix) {
		t.Fatalf("created: %+v", ro)
	}
	// The secret is shown once: the list has no secret.
	if w := a.must(t, req{method: "GET", path: "/api/v1/auth/apikeys", bearer: tok.AccessToken}, 200); strings.Contains(w.Body.String(), ro.Secret) {
		t.Fatal("key list shows the secret")
	}
	// The key acts as erin (moderator) in A only, and only reads.
	a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID + "/members", bearer: ro.Secret}, 200)
	a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildB, bearer: ro.Secret}, 403)
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/access", bearer: ro.Secret, body: `{}`}, 403)
	a.must(t, req{method: "POST", path: "/api/v1/auth/apikeys", bearer: ro.Secret, body: `{"guilds":["*"],"write":true}`}, 403)
	a.must(t, req{method: "GET", path: "/api/v1/auth/sessions", bearer: ro.Secret}, 403)
	// A write key still cannot do more than its owner: a moderator cannot ingest.
	rw := create(`{"guilds":["*"],"write":true,"tier":"tiny"}`, 201)
	a.must(t, req{method: "POST", path: "/api/v1/events", bearer: rw.Secret, body: toJSON(seedEvents()[5])}, 403)

	// Tier limits: tiny allows 3 a minute (and 5 a day).
	for i := 2; i >= 1; i-- { // the POST above was the first
		w := a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: rw.Secret}, 200)
		if w.Header().Get("RateLimit-Limit") != "3" || w.Header().Get("RateLimit-Remaining") != string(rune('0'+i-1)) {
			t.Fatalf("headers: %v", w.Header())
		}
	}
	w := a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: rw.Secret}, 429)
	if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "rate_limited") {
		t.Fatalf("429: %v %s", w.Header(), w.Body)
	}

	// Usage and last use are recorded.
	if err := a.parts.usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	w = a.must(t, req{method: "GET", path: "/api/v1/auth/apikeys/" + ro.ID + "/usage", bearer: tok.AccessToken}, 200)
	if !strings.Contains(w.Body.String(), `"requests":5`) {
		t.Fatalf("usage: %s", w.Body)
	}
	a.must(t, req{method: "GET", path: "/api/v1/auth/apikeys/" + ro.ID + "/usage", bearer: ro.Secret}, 200) // a key sees its own
	a.must(t, req{method: "GET", path: "/api/v1/auth/apikeys/" + rw.ID + "/usage", bearer: ro.Secret}, 404) // not another's
	if w := a.must(t, req{method: "GET", path: "/api/v1/admin/apikeys", bearer: token}, 200); !strings.Contains(w.Body.String(), `"last_used_at"`) {
		t.Fatalf("last use not shown: %s", w.Body)
	}

	// Demoting the owner demotes the key; revoking it ends it.
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + mod, bearer: token, body: `{"role":"viewer"}`}, 200)
	a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID + "/members", bearer: ro.Secret}, 403)
	a.must(t, req{method: "DELETE", path: "/api/v1/auth/apikeys/" + ro.ID, bearer: tok.AccessToken}, 204)
	a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID, bearer: ro.Secret}, 401)
	a.must(t, req{method: "DELETE", path: "/api/v1/admin/apikeys/" + rw.ID, bearer: token}, 204)
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: rw.Secret}, 401)
	if len(a.audited(t, "apikey.create", "ok")) != 2 || len(a.audited(t, "apikey.revoke", "ok")) != 2 {
		t.Fatal("key changes not audited")
	}
}

func TestRoleEscalation(t *testing.T) {
	a := newAuthHarness(t, nil)
	ids := map[string]string{}
	tokens := map[string]string{}
	for _, n := range []string{"own", "adm", "other"} {
		ids[n] = a.createUser(t, n, false)
	}
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + ids["own"], bearer: token, body: `{"role":"owner"}`}, 200)
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + ids["adm"], bearer: token, body: `{"role":"admin"}`}, 200)
	for _, n := range []string{"own", "adm"} {
		tk, _ := a.login(t, n)
		tokens[n] = tk.AccessToken
	}
	role := func(who, target, role string, status int) {
		t.Helper()
		a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + ids[target], bearer: tokens[who], body: `{"role":"` + role + `"}`}, status)
	}
	role("adm", "other", "moderator", 200)
	role("adm", "other", "admin", 403) // only an owner appoints admins
	role("adm", "own", "viewer", 403)  // nor demotes the owner
	a.must(t, req{method: "DELETE", path: "/api/v1/guilds/" + guildID + "/roles/" + ids["own"], bearer: tokens["adm"]}, 403)
	role("own", "other", "admin", 200)
	role("adm", "other", "viewer", 403) // other is an admin now
	role("own", "other", "owner", 403)  // owners come from Discord or the instance admin
	role("own", "other", "emperor", 400)
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildB + "/roles/" + ids["other"], bearer: tokens["own"], body: `{"role":"viewer"}`}, 403) // another guild
	w := a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID + "/roles", bearer: tokens["adm"]}, 200)
	if !strings.Contains(w.Body.String(), `"role":"owner"`) || strings.Count(w.Body.String(), `"subject"`) != 3 {
		t.Fatalf("roles: %s", w.Body)
	}
	// The guild's audit log has all of it.
	w = a.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID + "/audit?limit=100", bearer: tokens["adm"]}, 200)
	for _, action := range []string{"role.assign", "authz.deny"} {
		if !strings.Contains(w.Body.String(), `"action":"`+action+`"`) {
			t.Errorf("guild audit lacks %s", action)
		}
	}
	if strings.Contains(w.Body.String(), `"guild_id":"`+guildB+`"`) {
		t.Error("guild audit shows another guild")
	}
}

// rawKey returns the current signing key (stored unsealed in tests).
func rawKey(t *testing.T, st *store.Store) (kid string, key []byte) {
	keys, err := st.ListSigningKeys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatal(err)
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(keys[0].Secret, "plain:"))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0].ID, b
}

func TestBadCredentials(t *testing.T) {
	a := newAuthHarness(t, nil)
	a.createUser(t, "fay", false)
	good, _ := a.login(t, "fay")
	kid, key := rawKey(t, a.st)
	x, _ := a.st.GetSession(context.Background(), good.SessionID)
	sign := func(method jwt.SigningMethod, k any, mut func(*auth.Claims)) string {
		c := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: auth.Issuer, Subject: x.AccountID, Audience: jwt.ClaimStrings{auth.Audience},
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}, SessionID: x.ID}
		if mut != nil {
			mut(&c)
		}
		tk := jwt.NewWithClaims(method, c)
		tk.Header["kid"] = kid
		s, err := tk.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Sanity: a token we sign with the real key is accepted.
	a.must(t, req{method: "GET", path: "/api/v1/auth/me", bearer: sign(jwt.SigningMethodHS256, key, nil)}, 200)
	other := make([]byte, 32)
	rand.Read(other)
	parts := strings.Split(good.AccessToken, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + kid + `"}`))
	tests := []struct{ name, header, cookie string }{
		{"expired", "Bearer " + sign(jwt.SigningMethodHS256, key, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }), ""},
		{"forged payload", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root","sid":"x","aud":"spywatcher-api"}`)) + "." + parts[2], ""},
		{"alg none", "Bearer " + noneHeader + "." + parts[1] + ".", ""},
		{"wrong key", "Bearer " + sign(jwt.SigningMethodHS256, other, nil), ""},
		{"wrong audience", "Bearer " + sign(jwt.SigningMethodHS256, key, func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"grafana"} }), ""},
		{"other session", "Bearer " + sign(jwt.SigningMethodHS256, key, func(c *auth.Claims) { c.SessionID = "nope" }), ""},
		{"unknown api key", "Bearer swk_0011223344556677_notarealkeynotarealkeynotarealkey", ""},
		{"unknown admin token", "Bearer not-the-admin-token-at-all", ""},
		{"basic auth", "Basic YWxpY2U6cHc=", ""},
		{"bearer without token", "Bearer", ""},
		{"bearer with spaces", "Bearer a b c", ""},
		{"control characters", "Bearer abc\x01def", ""},
		{"huge", "Bearer " + strings.Repeat("A", 5000), ""},
		{"malformed cookie", "", "garbage"},
		{"forged cookie", "", sign(jwt.SigningMethodHS256, other, nil)},
	}
	before := len(a.audited(t, "auth.reject", "denied"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/guilds", nil)
			if tt.header != "" {
				r.Header["Authorization"] = []string{tt.header}
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: auth.CookieAccess, Value: tt.cookie})
			}
			w := httptest.NewRecorder()
			a.h.ServeHTTP(w, r)
			var e struct {
				Error struct{ Code, Message string }
			}
			if w.Code != 401 || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Code != "unauthorized" || w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			cred := strings.TrimPrefix(tt.header, "Bearer ") + tt.cookie
			if len(cred) > 8 && strings.Contains(w.Body.String(), cred) {
				t.Fatal("the answer echoes the credential")
			}
		})
	}
	if got := len(a.audited(t, "auth.reject", "denied")) - before; got != len(tests) {
		t.Fatalf("%d of %d rejections audited", got, len(tests))
	}
	// Two Authorization headers are refused too.
	r := httptest.NewRequest("GET", "/api/v1/guilds", nil)
	r.Header["Authorization"] = []string{"Bearer " + token, "Bearer " + token}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("two headers: %d", w.Code)
	}
	// The audit log says why, not what.
	for _, e := range a.audited(t, "auth.reject", "denied") {
		if strings.Contains(e.Detail, kid) && strings.Contains(e.Detail, "eyJ") {
			t.Fatalf("audit detail holds a token: %s", e.Detail)
		}
	}
}

func TestSecurityHeadersCORSAndBodyLimit(t *testing.T) {
	a := newAuthHarness(t, func(d *Deps) {
		d.Security.CORSOrigins = []string{"https://dash.example"}
		d.MaxBodyBytes = 2048
	})
	w := a.must(t, req{method: "GET", path: "/healthz"}, 200)
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if w.Header().Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
	if !strings.Contains(w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") || w.Header().Get("Strict-Transport-Security") != "" {
		t.Fatalf("headers: %v", w.Header())
	}
	pre := req{method: "OPTIONS", path: "/api/v1/guilds", hdr: map[string]string{"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"}}
	w = a.must(t, pre, 204)
	if w.Header().Get("Access-Control-Allow-Origin") != "https://dash.example" || w.Header().Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), auth.HeaderCSRF) {
		t.Fatalf("preflight: %v", w.Header())
	}
	pre.hdr["Origin"] = "https://evil.example"
	a.must(t, pre, 403)
	w = a.must(t, req{method: "GET", path: "/api/v1/guilds", bearer: token, hdr: map[string]string{"Origin": "https://evil.example"}}, 200)
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed for an unlisted origin")
	}
	a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"` + strings.Repeat("x", 4000) + `","password":"p"}`}, 413)
	// A cross-site form can only send form encodings or text/plain: refused.
	a.must(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"a","password":"b"}`, hdr: map[string]string{"Content-Type": "text/plain"}}, 415)
}

var storeAuditAll = store.AuditQuery{Limit: 500}
