package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	guesttest.Cleanup()
	os.Exit(code)
}

// writePlugin lays out a plugin directory as an author would ship it.
func writePlugin(t *testing.T, version string, extraPerm string) string {
	t.Helper()
	code := guesttest.Build(t, "host/internal/plugin/testdata/guests/good")
	dir := t.TempDir()
	sum := sha256.Sum256(code)
	perms := `{"name":"events.message.read","reason":"count"},{"name":"events.presence.read","reason":"count"},{"name":"kv.read","reason":"read"},
		{"name":"kv.write","reason":"write"},{"name":"routes.serve","reason":"serve"},{"name":"metrics.write","reason":"batches"}`
	if extraPerm != "" {
		perms += `,{"name":"` + extraPerm + `","reason":"new in this version"}`
	}
	manifest := fmt.Sprintf(`{"id":"counter","name":"Counter","version":%q,"runtime":"wasm","abi_version":1,
		"artifact":{"path":"counter.wasm","sha256":%q},"hooks":["on_events","http"],"events":["message.create","presence.update"],
		"routes":[{"method":"GET","path":"/*"}],"permissions":[%s]}`, version, hex.EncodeToString(sum[:]), perms)
	os.WriteFile(filepath.Join(dir, "plugin.json"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "counter.wasm"), code, 0o644)
	return dir
}

func TestPluginCommands(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	p := func(args ...string) (int, string, string) {
		return run(t, ctx, nil, append(append([]string{"plugin"}, args...), "--data-dir", data)...)
	}
	const guild = "41771983423143937"
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, "unknown plugin command"},
		{[]string{"list"}, 1, "no database at " + data},
		{[]string{"install"}, 2, "name the plugin's directory"},
		{[]string{"install", "/nonexistent"}, 1, "read manifest"},
		{[]string{"install", writePlugin(t, "1.0.0", "")}, 0, "installed counter 1.0.0"},
		{[]string{"list"}, 0, "counter  1.0.0"},
		{[]string{"enable", "counter"}, 2, "--guild is required"},
		{[]string{"enable", "counter", "--guild", "abc"}, 2, "must be a Discord ID"},
		{[]string{"enable", "nope", "--guild", guild}, 1, "not installed"},
		{[]string{"enable", "counter", "--guild", guild}, 0, "needs_grant"},
		{[]string{"grant", "counter", "--guild", guild}, 2, "or --all"},
		{[]string{"grant", "counter", "--guild", guild, "ban.hammer"}, 1, "does not ask for"},
		{[]string{"grant", "counter", "--guild", guild, "--all"}, 0, "running"},
		{[]string{"config", "counter", "--guild", guild, "--set", "[1]"}, 1, "must be a JSON object"},
		{[]string{"config", "counter", "--guild", guild, "--set", `{"greeting":"hi"}`}, 0, `config {"greeting":"hi"}`},
		{[]string{"list", "--guild", guild}, 0, "running"},
		{[]string{"install", writePlugin(t, "1.1.0", "members.read")}, 0, "now also asks for members.read"},
		{[]string{"status", "counter", "--guild", guild}, 0, "waiting for: members.read"},
		{[]string{"grant", "counter", "--guild", guild, "members.read"}, 0, "running"},
		{[]string{"revoke", "counter", "--guild", guild, "kv.write"}, 0, "needs_grant"},
		{[]string{"uninstall", "counter"}, 0, "uninstalled counter"},
		{[]string{"list"}, 0, "ID"},
	}
	for i, s := range steps {
		if i == 2 { // after the missing database was reported: create it
			if code, _, errOut := run(t, ctx, nil, "migrate", "--data-dir", data); code != 0 {
				t.Fatalf("migrate: %s", errOut)
			}
		}
		code, out, errOut := p(s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Fatalf("plugin %v: exit %d\n%s%s\nwant exit %d mentioning %q", s.args, code, out, errOut, s.code, s.want)
		}
	}
}

// TestServeRunsPluginsInstalledByTheCLI: a running server notices a plugin
// the CLI installed, granted and enabled, feeds it the guild's events and
// serves its route through the API.
func TestServeRunsPluginsInstalledByTheCLI(t *testing.T) {
	addr := freeAddr(t)
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trackAll(t, data, "41771983423143937")
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", addr, "--data-dir", data},
			Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	}()
	const guild = "41771983423143937"
	var tok string
	deadline := time.Now().Add(60 * time.Second)
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	n := 0
	presence := func() string {
		n++
		return fmt.Sprintf(`[{"id":"p%d","kind":"presence.update","guild_id":%q,"user_id":"80351110224678912","at":%q,
			"data":{"status":"online","client_status":{"web":"online"}}}]`, n, guild, time.Now().UTC().Format(time.RFC3339Nano))
	}
	for {
		if time.Now().After(deadline) {
			t.Fatalf("server not up:\n%s", errb.String())
		}
		tok = regexp.MustCompile(`swa_[A-Za-z0-9_-]+`).FindString(out.String())
		if code, _ := do("POST", "/api/v1/events", presence()); tok != "" && code == 202 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"install", writePlugin(t, "1.0.0", "")},
		{"grant", "counter", "--guild", guild, "--all"},
		{"enable", "counter", "--guild", guild},
	} {
		if code, o, e := run(t, context.Background(), nil, append(append([]string{"plugin"}, args...), "--data-dir", data)...); code != 0 {
			t.Fatalf("plugin %v: %d %s %s", args, code, o, e)
		}
	}
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin never counted an event:\n%s", errb.String())
		}
		do("POST", "/api/v1/events", presence())
		code, body := do("GET", "/api/v1/guilds/"+guild+"/plugins/counter/http/counts", "")
		var res struct{ Counts map[string]int }
		if code == 200 && json.Unmarshal([]byte(body), &res) == nil && res.Counts["presence.update"] > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
}
