package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = Run(ctx, args, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: spywatcher"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "--batch-size", "many"}, 2, "--batch-size"},
		{[]string{"serve", "stray"}, 2, "unexpected arguments"},
		{[]string{"replay"}, 2, "name one or more JSONL files"},
		{[]string{"replay", "/no/such/file.jsonl"}, 2, "no such file"},
		{[]string{"simulate", "--duration", "-1h"}, 2, "--duration must be positive"},
		{[]string{"simulate", "--from", "last tuesday"}, 2, "--from"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, context.Background(), nil, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, output %q%q; want exit %d mentioning %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
	code, out, _ := run(t, context.Background(), nil, "serve", "--help")
	if code != 0 || !strings.Contains(out, "SPYWATCHER_ADDR") {
		t.Fatalf("serve --help: %d %q", code, out)
	}
}

func TestMigrateAndBadDatabase(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run(t, context.Background(), nil, "migrate", "--data-dir", dir)
	// The newest version, whatever number the newest migration has.
	m := regexp.MustCompile(`sqlite schema at version (\d+) \(this binary knows up to (\d+)\)`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("migrate: %d %q %q", code, out, errOut)
	}
	code, _, errOut = run(t, context.Background(), map[string]string{"SPYWATCHER_DATABASE_URL": "postgres://nobody:pw@127.0.0.1:1/x?connect_timeout=2"}, "migrate")
	if code != 1 || !strings.Contains(errOut, "connect to postgres") {
		t.Fatalf("unreachable database: %d %q", code, errOut)
	}
}

func TestSimulateThenReplayTwiceStoresNothingNew(t *testing.T) {
	dir := t.TempDir()
	file, truth := filepath.Join(dir, "guild.jsonl"), filepath.Join(dir, "truth.json")
	code, _, errOut := run(t, context.Background(), nil, "simulate", "--out", file, "--truth", truth,
		"--duration", "6h", "--simulate-members", "60", "--from", "2026-03-01T00:00:00Z")
	if code != 0 {
		t.Fatalf("simulate: %d %s", code, errOut)
	}
	var tr struct {
		GuildID string            `json:"guild_id"`
		Members map[string]string `json:"members"`
	}
	b, _ := os.ReadFile(truth)
	if err := json.Unmarshal(b, &tr); err != nil || len(tr.Members) < 60 {
		t.Fatalf("truth file: %v (%d members)", err, len(tr.Members))
	}
	data := filepath.Join(dir, "data")
	count := func() int {
		st, err := store.Open(context.Background(), filepath.Join(data, "spywatcher.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		n := 0
		cursor := ""
		for {
			page, err := st.ListEvents(context.Background(), tr.GuildID, store.EventQuery{Limit: 500, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Events)
			if page.Next == "" {
				return n
			}
			cursor = page.Next
		}
	}
	code, out, errOut := run(t, context.Background(), nil, "replay", "--data-dir", data, file)
	if code != 0 || !strings.Contains(out, "0 rejected, 0 malformed") {
		t.Fatalf("replay: %d %q %q", code, out, errOut)
	}
	lines := strings.Count(string(mustRead(t, file)), "\n")
	first := count()
	if first != lines {
		t.Fatalf("stored %d events from %d lines", first, lines)
	}
	if code, out, errOut = run(t, context.Background(), nil, "replay", "--data-dir", data, file); code != 0 {
		t.Fatalf("second replay: %d %q %q", code, out, errOut)
	}
	if again := count(); again != first {
		t.Fatalf("second replay changed the event count: %d -> %d", first, again)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplayBadLinesKeepsTheGoodOnes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mixed.jsonl")
	good := `{"id":"x1","kind":"typing.start","guild_id":"41771983423143937","user_id":"80351110224678912","channel_id":"41771983423143938","at":"2026-03-01T00:00:00Z"}`
	dispatch := `{"t":"TYPING_START","s":7,"op":0,"d":{"guild_id":"41771983423143937","channel_id":"41771983423143938","user_id":"80351110224678913","timestamp":1772323200}}`
	content := good + "\n{not json\n" + `{"id":"x2","kind":"typing.start","guild_id":"nope","at":"2026-03-01T00:00:00Z"}` + "\n" + dispatch + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	trackAll(t, filepath.Join(dir, "data"), "41771983423143937")
	code, out, errOut := run(t, context.Background(), nil, "replay", "--data-dir", filepath.Join(dir, "data"), file)
	if code != 1 || !strings.Contains(out, "line 2: malformed") || !strings.Contains(out, "line 3: rejected") ||
		!strings.Contains(errOut, "2 lines could not be ingested") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "data", "spywatcher.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	page, _ := st.ListEvents(context.Background(), "41771983423143937", store.EventQuery{})
	if len(page.Events) != 2 {
		t.Fatalf("stored %d events, want the 2 good ones", len(page.Events))
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeSimulatedGuild runs what `make run` runs and queries it.
func TestServeSimulatedGuild(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--simulate", "--addr", addr, "--data-dir", t.TempDir(),
			"--simulate-members", "80", "--simulate-history", "6h", "--simulate-speed", "100000"},
			Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	}()
	tokRe := regexp.MustCompile(`swa_[A-Za-z0-9_-]+`)
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	deadline := time.Now().Add(30 * time.Second)
	var tok string
	for {
		if time.Now().After(deadline) {
			t.Fatalf("server not ready:\n%s\n%s", out.String(), errb.String())
		}
		tok = tokRe.FindString(out.String())
		if code, _ := get("/readyz", ""); code == 200 && tok != "" {
			if code, body := get("/api/v1/guilds", tok); code == 200 && strings.Contains(body, `"online":`) && !strings.Contains(body, `"members":0`) {
				var gs struct{ Guilds []struct{ ID string } }
				json.Unmarshal([]byte(body), &gs)
				if len(gs.Guilds) == 1 {
					if code, body := get(fmt.Sprintf("/api/v1/guilds/%s/members?limit=3", gs.Guilds[0].ID), tok); code == 200 && strings.Contains(body, "next_cursor") {
						break
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get("/api/v1/guilds", ""); code != 401 {
		t.Fatalf("unauthenticated request got %d", code)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, errb.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(errb.String(), "stopped") {
		t.Fatalf("no clean stop logged:\n%s", errb.String())
	}
}

// trackAll configures a guild to collect everything, with the CLI: a guild
// collects nothing until its admin says what (see PRIVACY.md).
func trackAll(t *testing.T, dataDir, guild string) {
	t.Helper()
	code, out, errOut := run(t, context.Background(), nil, "guild", "settings", guild, "--track", "presence,messages,typing,voice,members",
		"--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, `"configured": true`) {
		t.Fatalf("guild settings: exit %d\n%s\n%s", code, out, errOut)
	}
}
