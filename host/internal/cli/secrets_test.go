package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// TestNoSecretsInLogs serves the host with every secret configured and
// debug logging, walks through logins, refreshes, a replayed refresh token,
// API keys, bad credentials and a Discord callback, then searches
// everything the process wrote (and the audit log) for the secrets.
func TestNoSecretsInLogs(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
	secrets := map[string]string{
		"admin token":           "admin-token-0123456789-abcdef",
		"secret key":            "secret-key-0123456789-0123456789-abcdef",
		"discord client secret": "discord-client-secret-0123456789",
		"password":              "correct-horse-battery-staple",
		"wrong password":        "wrong-horse-battery-staple",
		"oauth code":            "oauth-code-0123456789abcdef",
	}
	env := map[string]string{
		"SPYWATCHER_ADMIN_TOKEN":           secrets["admin token"],
		"SPYWATCHER_SECRET_KEY":            secrets["secret key"],
		"SPYWATCHER_DISCORD_CLIENT_ID":     "12345",
		"SPYWATCHER_DISCORD_CLIENT_SECRET": secrets["discord client secret"],
		"SPYWATCHER_DISCORD_TOKEN_URL":     "http://" + freeAddr(t) + "/token", // nothing listens: the exchange fails
		"SPYWATCHER_LOG_LEVEL":             "debug",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", addr, "--data-dir", dir},
			Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	}()
	base := "http://" + addr
	call := func(method, path, bearer, body string, hdr ...string) (int, string, http.Header) {
		t.Helper()
		r, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := call("GET", "/readyz", "", ""); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect := func(want int, method, path, bearer, body string, hdr ...string) string {
		t.Helper()
		code, b, _ := call(method, path, bearer, body, hdr...)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		return b
	}
	expect(201, "POST", "/api/v1/admin/users", secrets["admin token"], `{"username":"ivy","password":"`+secrets["password"]+`"}`)
	expect(401, "POST", "/api/v1/auth/login", "", `{"username":"ivy","password":"`+secrets["wrong password"]+`"}`)
	type tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		CSRF         string `json:"csrf_token"`
	}
	var t1, t2 tokens
	json.Unmarshal([]byte(expect(200, "POST", "/api/v1/auth/login", "", `{"username":"ivy","password":"`+secrets["password"]+`"}`)), &t1)
	json.Unmarshal([]byte(expect(200, "POST", "/api/v1/auth/refresh", "", `{"refresh_token":"`+t1.RefreshToken+`"}`)), &t2)
	expect(401, "POST", "/api/v1/auth/refresh", "", `{"refresh_token":"`+t1.RefreshToken+`"}`) // replay: family revoked
	json.Unmarshal([]byte(expect(200, "POST", "/api/v1/auth/login", "", `{"username":"ivy","password":"`+secrets["password"]+`"}`)), &t2)
	var key struct{ Secret string }
	json.Unmarshal([]byte(expect(201, "POST", "/api/v1/auth/apikeys", t2.AccessToken, `{"guilds":["*"],"name":"bot"}`)), &key)
	expect(200, "GET", "/api/v1/auth/me", key.Secret, "")
	expect(401, "GET", "/api/v1/auth/me", key.Secret+"x", "")
	expect(401, "GET", "/api/v1/auth/me", t1.AccessToken[:len(t1.AccessToken)-4]+"AAAA", "")
	expect(401, "GET", "/api/v1/auth/me", "", "", "Cookie", "sw_access="+t2.AccessToken+"x")
	expect(403, "GET", "/api/v1/auth/discord/callback?code="+secrets["oauth code"]+"&state=forged", "", "", "Cookie", "sw_oauth_state=forged-other")
	expect(401, "GET", "/api/v1/guilds", "", "", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ivy:"+secrets["password"])))
	cancel()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop")
	}

	secrets["access token 1"], secrets["access token 2"] = t1.AccessToken, t2.AccessToken
	secrets["refresh token 1"], secrets["refresh token 2"] = t1.RefreshToken, t2.RefreshToken
	secrets["api key"], secrets["csrf token"] = key.Secret, t2.CSRF
	st, err := store.Open(context.Background(), filepath.Join(dir, "spywatcher.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := st.ListSigningKeys(context.Background())
	for _, k := range keys {
		if !strings.HasPrefix(k.Secret, "sealed:") {
			t.Fatalf("signing key %s stored unsealed with a secret key configured", k.ID)
		}
		secrets["sealed signing key "+k.ID] = strings.TrimPrefix(k.Secret, "sealed:")
	}
	page, _ := st.ListAudit(context.Background(), store.AuditQuery{Limit: 500})
	var audit strings.Builder
	for _, e := range page.Entries {
		audit.WriteString(e.Actor + " " + e.Action + " " + e.Target + " " + e.Detail + "\n")
	}
	if len(page.Entries) < 8 {
		t.Fatalf("only %d audit entries:\n%s", len(page.Entries), audit.String())
	}
	logs := errb.String() + out.String()
	if !strings.Contains(logs, "spywatcher serving") || !strings.Contains(logs, "[redacted]") {
		t.Fatalf("unexpected log:\n%s", logs)
	}
	for name, s := range secrets {
		if s == "" {
			t.Fatalf("%s empty: the scenario went wrong", name)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log shows the %s", name)
		}
		if strings.Contains(audit.String(), s) {
			t.Errorf("the audit log shows the %s", name)
		}
	}
}
