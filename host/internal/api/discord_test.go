package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/auth"
)

const (
	discordClientID     = "client-123"
	discordClientSecret = "discord-client-secret-do-not-log"
	discordAccessToken  = "discord-access-token-do-not-log"
)

// fakeDiscord is a stand-in for Discord's OAuth2 and REST API: it issues a
// code for a PKCE challenge, checks the verifier when the code is traded,
// and answers /users/@me and /users/@me/guilds.
type fakeDiscord struct {
	srv    *httptest.Server
	mu     sync.Mutex
	codes  map[string]string // code -> challenge
	guilds []auth.DiscordGuild
	userID string
}

func newFakeDiscord(t *testing.T) *fakeDiscord {
	f := &fakeDiscord{codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != discordClientID || secret != discordClientSecret {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		f.mu.Lock()
		challenge, ok := f.codes[r.Form.Get("code")]
		delete(f.codes, r.Form.Get("code"))
		f.mu.Unlock()
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		if !ok || r.Form.Get("grant_type") != "authorization_code" || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge ||
			r.Form.Get("redirect_uri") != "http://127.0.0.1:8080/api/v1/auth/discord/callback" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": discordAccessToken, "token_type": "Bearer", "scope": "identify guilds"})
	})
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+discordAccessToken {
				http.Error(w, "{}", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /api/users/@me", authed(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"id": f.userID, "username": "alice", "global_name": "Alice"})
	}))
	mux.HandleFunc("GET /api/users/@me/guilds", authed(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(f.guilds)
	}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// authorize is what Discord does when the user clicks "Authorize": it
// remembers the challenge and hands back a code.
func (f *fakeDiscord) authorize(t *testing.T, location string) (code, state string) {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("client_id") != discordClientID || q.Get("scope") != "identify guilds" || q.Get("code_challenge_method") != "S256" ||
		q.Get("response_type") != "code" || q.Get("state") == "" || len(q.Get("code_challenge")) != 43 {
		t.Fatalf("authorization request: %s", location)
	}
	code = "code-" + q.Get("state")[:8]
	f.mu.Lock()
	f.codes[code] = q.Get("code_challenge")
	f.mu.Unlock()
	return code, q.Get("state")
}

func TestDiscordLogin(t *testing.T) {
	f := newFakeDiscord(t)
	f.userID = alice // a member the host has seen: with the role 41771983423143940 in guild A
	h := newAuthHarness(t, func(d *Deps) {
		d.Discord = auth.NewDiscord(auth.DiscordConfig{ClientID: discordClientID, ClientSecret: discordClientSecret,
			RedirectURL: "http://127.0.0.1:8080/api/v1/auth/discord/callback", AuthorizeURL: f.srv.URL + "/oauth2/authorize",
			TokenURL: f.srv.URL + "/oauth2/token", APIURL: f.srv.URL + "/api"}, d.Store.(auth.DiscordStore), d.Authz.(auth.RoleSetter), f.srv.Client(), nil)
	})
	begin := func(returnTo string) (code, state string, stateCookie *http.Cookie) {
		t.Helper()
		w := h.must(t, req{method: "GET", path: "/api/v1/auth/discord/login?return_to=" + url.QueryEscape(returnTo)}, 302)
		c := cookie(w, oauthStateCookie)
		if c == nil || !c.HttpOnly {
			t.Fatalf("state cookie: %+v", c)
		}
		code, state = f.authorize(t, w.Header().Get("Location"))
		if c.Value != state {
			t.Fatal("the state cookie must bind the state to this browser")
		}
		return code, state, c
	}
	callback := func(code, state string, c *http.Cookie, status int) *httptest.ResponseRecorder {
		t.Helper()
		r := req{method: "GET", path: "/api/v1/auth/discord/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state)}
		if c != nil {
			r.cookies = []*http.Cookie{c}
		}
		return h.must(t, r, status)
	}

	// Guild A makes holders of role 41771983423143940 moderators; alice
	// owns guild B on Discord.
	h.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/access", bearer: token, body: `{"moderator_roles":["41771983423143940"]}`}, 200)
	f.guilds = []auth.DiscordGuild{{ID: guildID, Permissions: "1024"}, {ID: guildB, Owner: true}, {ID: "999999999999999999", Owner: true}}

	code, state, sc := begin("/guilds/x")
	// Bad callbacks first: they must not consume the pending login.
	for _, bad := range []struct {
		name, code, state string
		cookie            *http.Cookie
		status            int
		errCode           string
	}{
		{"missing state", code, "", sc, 403, "invalid_oauth_state"},
		{"wrong state", code, "not-the-state-we-sent", sc, 403, "invalid_oauth_state"},
		{"state from another browser", code, state, nil, 403, "invalid_oauth_state"},
		{"cookie of another login", code, state, &http.Cookie{Name: oauthStateCookie, Value: "someone-elses"}, 403, "invalid_oauth_state"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			w := callback(bad.code, bad.state, bad.cookie, bad.status)
			if !strings.Contains(w.Body.String(), bad.errCode) || cookie(w, auth.CookieAccess) != nil {
				t.Fatalf("%s", w.Body)
			}
		})
	}
	w := callback(code, state, sc, 302)
	if w.Header().Get("Location") != "/guilds/x" {
		t.Fatalf("redirect to %q", w.Header().Get("Location"))
	}
	access := cookie(w, auth.CookieAccess)
	if access == nil || !access.HttpOnly {
		t.Fatalf("no session cookie: %v", w.Result().Cookies())
	}
	m := decode[me](t, h.must(t, req{method: "GET", path: "/api/v1/auth/me", cookies: []*http.Cookie{access}}, 200))
	if m.Name != "discord-"+alice || m.Roles[guildID] != "moderator" || m.Roles[guildB] != "owner" || len(m.Roles) != 2 {
		t.Fatalf("roles from Discord: %+v", m)
	}
	h.must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID + "/members/" + alice, cookies: []*http.Cookie{access}}, 200)

	// A used state does not work twice.
	w = callback(code, state, sc, 403)
	if !strings.Contains(w.Body.String(), "invalid_oauth_state") {
		t.Fatalf("replayed state: %s", w.Body)
	}

	// Discord standing changes: the next login follows it. Losing the
	// moderator role with member access on makes a viewer; B is gone.
	h.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/access", bearer: token, body: `{"member_access":true}`}, 200)
	f.guilds = []auth.DiscordGuild{{ID: guildID, Permissions: "0"}}
	code, state, sc = begin("https://evil.example/")
	w = callback(code, state, sc, 302)
	if w.Header().Get("Location") != "/" {
		t.Fatalf("open redirect: %q", w.Header().Get("Location"))
	}
	m = decode[me](t, h.must(t, req{method: "GET", path: "/api/v1/auth/me", cookies: []*http.Cookie{cookie(w, auth.CookieAccess)}}, 200))
	if m.Roles[guildID] != "viewer" || m.Roles[guildB] != "" {
		t.Fatalf("roles after the change: %+v", m.Roles)
	}

	// Manage Guild makes an admin.
	f.guilds = []auth.DiscordGuild{{ID: guildID, Permissions: "32"}}
	code, state, sc = begin("")
	w = callback(code, state, sc, 302)
	m = decode[me](t, h.must(t, req{method: "GET", path: "/api/v1/auth/me", cookies: []*http.Cookie{cookie(w, auth.CookieAccess)}}, 200))
	if m.Roles[guildID] != "admin" {
		t.Fatalf("manage guild: %+v", m.Roles)
	}

	// Discord refusing: a wrong code, or the user cancelling.
	_, state, sc = begin("")
	w = callback("not-a-code", state, sc, 401)
	if !strings.Contains(w.Body.String(), "oauth_failed") {
		t.Fatalf("bad code: %s", w.Body)
	}
	_, state, sc = begin("")
	h.must(t, req{method: "GET", path: "/api/v1/auth/discord/callback?error=access_denied&state=" + state, cookies: []*http.Cookie{sc}}, 401)

	if n := len(h.audited(t, "auth.discord", "denied")); n < 6 {
		t.Fatalf("%d refused callbacks audited", n)
	}
	if n := len(h.audited(t, "auth.login", "ok")); n != 3 {
		t.Fatalf("%d Discord logins audited", n)
	}
	for _, s := range []string{discordClientSecret, discordAccessToken} {
		if strings.Contains(h.logs.String(), s) {
			t.Fatalf("log shows %s", s)
		}
		page, _ := h.st.ListAudit(context.Background(), storeAuditAll)
		for _, e := range page.Entries {
			if strings.Contains(e.Detail+e.Target, s) {
				t.Fatalf("audit shows %s", s)
			}
		}
	}
}

func TestDiscordLoginNotConfigured(t *testing.T) {
	h := newAuthHarness(t, nil)
	h.must(t, req{method: "GET", path: "/api/v1/auth/discord/login"}, 404)
	h.must(t, req{method: "GET", path: "/api/v1/auth/discord/callback?state=x&code=y"}, 404)
}
