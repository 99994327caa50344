package gateway

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
)

// TestConnectIdentifyAndDispatch: HELLO, IDENTIFY with the intents the event
// model needs, READY, a zlib-compressed GUILD_CREATE, heartbeats, and
// dispatches handed over in order.
func TestConnectIdentifyAndDispatch(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{HeartbeatInterval: 50 * time.Millisecond, CompressMin: 512})
	if err := fake.AddGuild(guildCreate(guildA, 20, false)); err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	r := start(t, testConfig(fake, c))
	waitFor(t, "GUILD_CREATE", func() bool { return c.count("GUILD_CREATE") == 1 })
	ts := stream(guildA, 0, 40)
	send(t, fake, guildA, ts)
	waitFor(t, "the dispatches", func() bool { return len(c.types()) == 2+len(ts) })
	waitFor(t, "heartbeats", func() bool { return fake.Stats().Heartbeats >= 2 })

	want := []string{"READY", "GUILD_CREATE"}
	for _, tr := range ts {
		want = append(want, tr.typ)
	}
	if got := c.types(); !slices.Equal(got, want) {
		t.Fatalf("dispatches\n got %v\nwant %v", got, want)
	}
	c.mu.Lock()
	for i, d := range c.ds {
		if d.Seq != int64(i+1) || d.RecordedAt.IsZero() || len(d.Data) == 0 {
			t.Errorf("dispatch %d: seq %d, recorded %v, %d bytes", i, d.Seq, d.RecordedAt, len(d.Data))
		}
	}
	c.mu.Unlock()
	st := fake.Stats()
	if len(st.Identifies) != 1 {
		t.Fatalf("identifies %+v", st.Identifies)
	}
	id := st.Identifies[0]
	wantIntents := discordgo.IntentGuilds | discordgo.IntentGuildMembers | discordgo.IntentGuildModeration |
		discordgo.IntentGuildVoiceStates | discordgo.IntentGuildPresences | discordgo.IntentGuildMessages |
		discordgo.IntentGuildMessageTyping
	if id.Intents != int(wantIntents) || !id.Compress || id.Shard != [2]int{0, 1} {
		t.Fatalf("identify %+v, want intents %d, compress, shard [0 1]", id, wantIntents)
	}
	if st.CompressedFrames == 0 {
		t.Fatal("no frame was compressed: the zlib path is untested")
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := testutil.ToFloat64(r.src.m.sessions.WithLabelValues("identify")); n != 1 {
		t.Fatalf("sessions identified: %v", n)
	}
}

// TestMessageContentIntentOnlyWhenGranted: MESSAGE_CONTENT is asked for only
// when the content policy says a guild granted it.
func TestMessageContentIntentOnlyWhenGranted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		policy ContentPolicy
		want   bool
	}{
		{"no policy", nil, false},
		{"not granted", contentFunc(func(context.Context) (bool, error) { return false, nil }), false},
		{"granted", contentFunc(func(context.Context) (bool, error) { return true, nil }), true},
		{"policy fails", contentFunc(func(context.Context) (bool, error) { return true, errors.New("db down") }), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t, gatewaytest.Options{})
			cfg := testConfig(fake, &collector{})
			cfg.Content = tt.policy
			start(t, cfg)
			waitFor(t, "identify", func() bool { return len(fake.Stats().Identifies) == 1 })
			got := fake.Stats().Identifies[0].Intents&int(discordgo.IntentMessageContent) != 0
			if got != tt.want {
				t.Fatalf("MESSAGE_CONTENT asked: %v, want %v", got, tt.want)
			}
		})
	}
}

type contentFunc func(context.Context) (bool, error)

func (f contentFunc) NeedsMessageContent(ctx context.Context) (bool, error) { return f(ctx) }

// TestFatalStartupErrors: a bad token and disallowed intents end Run with an
// error that says what to do, instead of retrying forever.
func TestFatalStartupErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		rest      string // token the fake's REST API accepts
		closeCode int
		want      error
		mention   []string
	}{
		{"REST rejects the token", "another-token", 0, ErrInvalidToken,
			[]string{"401", "SPYWATCHER_DISCORD_TOKEN", "Developer Portal"}},
		{"gateway closes with 4004", "", 4004, ErrInvalidToken,
			[]string{"4004", "SPYWATCHER_DISCORD_TOKEN", "Reset Token"}},
		{"gateway closes with 4014", "", 4014, ErrDisallowedIntents,
			[]string{"4014", "GUILD_MEMBERS", "Server Members Intent", "GUILD_PRESENCES", "Presence Intent",
				"Privileged Gateway Intents", "https://discord.com/developers/applications"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := gatewaytest.New(gatewaytest.Options{Token: tt.rest})
			t.Cleanup(fake.Close)
			fake.SetCloseOnIdentify(tt.closeCode)
			r := start(t, testConfig(fake, &collector{}))
			var err error
			select {
			case err = <-r.wait():
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not give up")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q: %v", m, err)
				}
			}
			if strings.Contains(err.Error(), "MESSAGE_CONTENT") {
				t.Errorf("error names an intent that was not asked for: %v", err)
			}
		})
	}
}
