package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

var (
	gwToken = gatewaytest.Token("1100000000000000042")
	gwBase  = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	gwGuild = event.NewSnowflake(gwBase, 0, 1)
	gwChan  = event.NewSnowflake(gwBase.Add(time.Second), 0, 2)
	gwUser  = event.NewSnowflake(gwBase.Add(-time.Hour), 1, 1)
)

// fakeDiscord starts a fake Discord with one guild of one member.
func fakeDiscord(t *testing.T) *gatewaytest.Server {
	t.Helper()
	fake := gatewaytest.New(gatewaytest.Options{Token: gwToken})
	t.Cleanup(fake.Close)
	err := fake.AddGuild(map[string]any{
		"id": gwGuild, "name": "Recorded", "member_count": 1,
		"channels": []any{map[string]any{"id": gwChan, "type": 0, "name": "general"}},
		"members": []any{map[string]any{"user": map[string]any{"id": gwUser, "username": "ann"}, "roles": []string{},
			"joined_at": "2024-04-01T00:00:00Z"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fake
}

// chat sends n messages to the fake's guild.
func chat(t *testing.T, fake *gatewaytest.Server, n int) {
	t.Helper()
	for i := range n {
		id := event.NewSnowflake(gwBase.Add(time.Duration(i)*time.Second), 3, uint64(i))
		err := fake.Dispatch(gwGuild, "MESSAGE_CREATE", map[string]any{
			"id": id, "channel_id": gwChan, "guild_id": gwGuild, "content": "hi",
			"timestamp": gwBase.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			"author":    map[string]any{"id": gwUser, "username": "ann"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countEvents(t *testing.T, dsn, guild string) int {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.CountEvents(context.Background(), guild)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"record"}, map[string]string{"SPYWATCHER_DISCORD_TOKEN": gwToken}, "--out FILE is required"},
		{[]string{"record", "--out", "x.jsonl"}, nil, "SPYWATCHER_DISCORD_TOKEN"},
		{[]string{"record", "--out", "x.jsonl", "stray"}, nil, "unexpected arguments"},
	} {
		code, out, errOut := run(t, context.Background(), tt.env, tt.args...)
		if code != 2 || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%v: exit %d, %q%q; want exit 2 mentioning %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

// TestRecordThenReplay records a guild from the (fake) gateway with
// `spywatcher record` and loads the file with `spywatcher replay`.
func TestRecordThenReplay(t *testing.T) {
	t.Parallel()
	fake := fakeDiscord(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "guild.jsonl")
	env := map[string]string{"SPYWATCHER_DISCORD_TOKEN": gwToken}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := run(t, ctx, env, "record", "--out", file, "--discord-api-url", fake.APIURL())
		done <- result{code, out, errOut}
	}()
	waitUntil(t, "the recorder to connect", func() bool { return fake.Connected(0) })
	chat(t, fake, 5)
	// READY, GUILD_CREATE and 5 messages, flushed within a second.
	waitUntil(t, "the recording", func() bool {
		b, _ := os.ReadFile(file)
		return strings.Count(string(b), "\n") == 7
	})
	cancel()
	r := <-done
	if r.code != 0 || !strings.Contains(r.errOut, "7 dispatches written to "+file) {
		t.Fatalf("record: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("recording mode %v, %v: want 0600", st.Mode(), err)
	}

	data := filepath.Join(dir, "data")
	// A recording of a real guild configures nothing: its admin decides.
	if code, out, _ := run(t, context.Background(), nil, "replay", "--data-dir", data, file); code != 0 || countEvents(t, filepath.Join(data, "spywatcher.db"), gwGuild) != 2 {
		t.Fatalf("replay into an unconfigured guild: exit %d, %d events (want its guild.update and channel.update only)\n%s",
			code, countEvents(t, filepath.Join(data, "spywatcher.db"), gwGuild), out)
	}
	os.RemoveAll(data)
	trackAll(t, data, gwGuild)
	code, out, errOut := run(t, context.Background(), nil, "replay", "--data-dir", data, file)
	if code != 0 || !strings.Contains(out, "7 lines") || !strings.Contains(out, "0 rejected, 0 malformed") {
		t.Fatalf("replay: %d %q %q", code, out, errOut)
	}
	// guild.update, channel.update, member.join and 5 messages.
	if n := countEvents(t, filepath.Join(data, "spywatcher.db"), gwGuild); n != 8 {
		t.Fatalf("stored %d events, want 8", n)
	}
}

// TestServeWatchesDiscord runs `spywatcher serve` with a bot token against
// the fake gateway: the guild's traffic is stored, and the shard lease is in
// the database.
func TestServeWatchesDiscord(t *testing.T) {
	t.Parallel()
	fake := fakeDiscord(t)
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trackAll(t, data, gwGuild)
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", freeAddr(t), "--data-dir", data, "--discord-api-url", fake.APIURL(),
			"--flush-interval", "5ms"},
			Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
				if k == "SPYWATCHER_DISCORD_TOKEN" {
					return gwToken
				}
				return ""
			}})
	}()
	waitUntil(t, "serve to connect", func() bool { return fake.Connected(0) })
	chat(t, fake, 5)
	db := filepath.Join(data, "spywatcher.db")
	waitUntil(t, "the events", func() bool { return countEvents(t, db, gwGuild) == 8 })
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.GetLease(context.Background(), "discord:1100000000000000042:shard:0/1")
	st.Close()
	if err != nil || l.Holder == "" {
		t.Fatalf("shard lease %+v, %v", l, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d\n%s", code, errb.String())
	}
	if strings.Contains(errb.String(), gwToken) {
		t.Fatal("the log shows the bot token")
	}
}

// TestServeBadTokenFails: a token Discord rejects ends serve with a message
// saying what to do.
func TestServeBadTokenFails(t *testing.T) {
	t.Parallel()
	fake := fakeDiscord(t)
	code, _, errOut := run(t, context.Background(), map[string]string{"SPYWATCHER_DISCORD_TOKEN": "wrong-token"},
		"serve", "--addr", freeAddr(t), "--data-dir", t.TempDir(), "--discord-api-url", fake.APIURL())
	if code != 1 || !strings.Contains(errOut, "Discord rejected the bot token") || !strings.Contains(errOut, "SPYWATCHER_DISCORD_TOKEN") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}
