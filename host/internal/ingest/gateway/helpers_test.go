package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
	"github.com/spywatcher/spywatcher/host/internal/lease"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

var testToken = gatewaytest.Token("1100000000000000042")

// The test guild, its channel and members. IDs are snowflakes of 2024.
var (
	base    = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	guildA  = event.NewSnowflake(base, 0, 1) // (id >> 22) is even: shard 0 of 2
	guildB  = event.NewSnowflake(base.Add(time.Millisecond), 0, 1)
	channel = event.NewSnowflake(base.Add(time.Second), 0, 2)
)

func user(i int) string { return event.NewSnowflake(base.Add(-time.Hour), 1, uint64(i)) }

func guildCreate(guild string, members int, large bool) map[string]any {
	ms := []any{}
	ps := []any{}
	for i := range members {
		ms = append(ms, member(guild, i))
		ps = append(ps, map[string]any{"user": map[string]any{"id": user(i)}, "status": "online",
			"client_status": map[string]any{"desktop": "online"}, "activities": []any{}})
	}
	return map[string]any{
		"id": guild, "name": "Test " + guild, "owner_id": user(0), "member_count": members + boolInt(large)*100,
		"large": large, "unavailable": false,
		"channels": []any{map[string]any{"id": channel, "type": 0, "name": "general", "position": 1}},
		"members":  ms, "presences": ps, "voice_states": []any{},
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func member(guild string, i int) map[string]any {
	return map[string]any{
		"user":  map[string]any{"id": user(i), "username": "user" + strconv.Itoa(i), "global_name": nil, "avatar": nil},
		"roles": []string{}, "joined_at": base.Add(-time.Duration(i+1) * time.Hour).Format(time.RFC3339Nano),
		"nick": nil, "deaf": false, "mute": false, "guild_id": guild,
	}
}

// traffic is one dispatch of a scripted test stream with the fact the
// stored event must show, so that "stored equals sent" can be checked per
// dispatch.
type traffic struct {
	typ  string
	d    map[string]any
	fact string
}

// stream returns n dispatches of a guild, numbered from first: messages,
// presence updates, typing and member updates, each distinguishable.
func stream(guild string, first, n int) []traffic {
	var out []traffic
	for i := first; i < first+n; i++ {
		u := user(i % 5)
		switch i % 4 {
		case 0:
			id := event.NewSnowflake(base.Add(time.Duration(i)*time.Second), 2, uint64(i))
			out = append(out, traffic{"MESSAGE_CREATE", map[string]any{
				"id": id, "channel_id": channel, "guild_id": guild, "type": 0, "content": "hello " + strconv.Itoa(i),
				"timestamp": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano),
				"author":    map[string]any{"id": u, "username": "user"}, "mentions": []any{}, "attachments": []any{}, "embeds": []any{},
			}, "message.create " + id})
		case 1:
			name := "game " + strconv.Itoa(i)
			out = append(out, traffic{"PRESENCE_UPDATE", map[string]any{
				"user": map[string]any{"id": u}, "guild_id": guild, "status": "online",
				"activities":    []any{map[string]any{"type": 0, "name": name}},
				"client_status": map[string]any{"desktop": "online"},
			}, "presence.update " + u + " " + name})
		case 2:
			ts := base.Add(time.Duration(i) * time.Second).Unix()
			out = append(out, traffic{"TYPING_START", map[string]any{
				"channel_id": channel, "guild_id": guild, "user_id": u, "timestamp": ts,
			}, "typing.start " + u + " " + strconv.FormatInt(ts, 10)})
		case 3:
			nick := "nick " + strconv.Itoa(i)
			out = append(out, traffic{"GUILD_MEMBER_UPDATE", map[string]any{
				"guild_id": guild, "user": map[string]any{"id": u, "username": "user"}, "nick": nick, "roles": []string{},
			}, "member.update " + u + " " + nick})
		}
	}
	return out
}

// fact is the identity of a stored event that stream's facts name.
func fact(ev event.Event) string {
	switch d := ev.Data.(type) {
	case *event.MessageCreate:
		return "message.create " + d.MessageID
	case *event.Presence:
		name := ""
		if len(d.Activities) > 0 {
			name = d.Activities[0].Name
		}
		return "presence.update " + ev.UserID + " " + name
	case *event.TypingStart:
		return "typing.start " + ev.UserID + " " + strconv.FormatInt(ev.At.Unix(), 10)
	case *event.MemberUpdate:
		return "member.update " + ev.UserID + " " + d.Nick
	case *event.MemberJoin:
		return fmt.Sprintf("member.join %s backfill=%v", ev.UserID, d.Backfill)
	}
	return string(ev.Kind) + " " + ev.UserID + " " + ev.ChannelID
}

func send(t *testing.T, fake *gatewaytest.Server, guild string, ts []traffic) {
	t.Helper()
	for _, tr := range ts {
		if err := fake.Dispatch(guild, tr.typ, tr.d); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds; it fails the test after a generous
// deadline, which only a broken build reaches.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collector is a Handler that keeps what it is given.
type collector struct {
	mu sync.Mutex
	ds []discord.Dispatch
}

func (c *collector) HandleDispatch(_ context.Context, d discord.Dispatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ds = append(c.ds, d)
	return nil
}

func (c *collector) types() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.ds))
	for i, d := range c.ds {
		out[i] = d.Type
	}
	return out
}

func (c *collector) count(typ string) int {
	n := 0
	for _, t := range c.types() {
		if t == typ {
			n++
		}
	}
	return n
}

// testConfig is a Config for the fake with short pauses.
func testConfig(fake *gatewaytest.Server, h Handler) Config {
	return Config{
		Token: testToken, Handler: h, Leaser: &lease.Local{}, APIURL: fake.APIURL(),
		Logger:             testLogger(),
		LeaseTTL:           3 * time.Second,
		IdentifyInterval:   20 * time.Millisecond,
		MemberRequestGap:   time.Millisecond,
		ReconnectMin:       20 * time.Millisecond,
		ReconnectMax:       200 * time.Millisecond,
		MemberRequestEvery: 30 * time.Second,
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("SPYWATCHER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newFake(t *testing.T, opts gatewaytest.Options) *gatewaytest.Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = time.Second
	}
	fake := gatewaytest.New(opts)
	t.Cleanup(fake.Close)
	return fake
}

// running is a Source started in the background.
type running struct {
	src    *Source
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- src.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop stops the source and returns what Run returned.
func (r *running) stop() error {
	r.cancel()
	return <-r.wait()
}

func (r *running) wait() chan error {
	ch := make(chan error, 1)
	go func() {
		err, ok := <-r.done
		if ok {
			close(r.done)
			ch <- err
			return
		}
		ch <- nil
	}()
	return ch
}

// host is a store and a running pipeline, as `spywatcher serve` builds them.
type host struct {
	st   *store.Store
	pipe *pipeline.Pipeline
	done chan error
}

// dbDSN returns a SQLite file, or a private PostgreSQL schema for the
// "postgres" variant.
func dbDSN(t *testing.T, dialect string) string {
	if dialect == "postgres" {
		return storetest.PostgresDSN(t, os.Getenv(storetest.PostgresEnv))
	}
	return filepath.Join(t.TempDir(), "spywatcher.db")
}

// dialects lists the databases to run store-backed tests on.
func dialects(t *testing.T) []string {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Log("SPYWATCHER_TEST_POSTGRES_URL not set: running on SQLite only")
		return []string{"sqlite"}
	}
	return []string{"sqlite", "postgres"}
}

func newHost(t *testing.T, dsn string, pc pipeline.Config) *host {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pc.FlushInterval == 0 {
		pc.FlushInterval = 5 * time.Millisecond
	}
	p, err := pipeline.New(pc, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &host{st: st, pipe: p, done: make(chan error, 1)}
	go func() { h.done <- p.Run(context.Background()) }()
	t.Cleanup(func() { h.close(t) })
	return h
}

func (h *host) close(t *testing.T) {
	if h.pipe == nil {
		return
	}
	h.pipe.Close()
	if err := <-h.done; err != nil {
		t.Error(err)
	}
	h.st.Close()
	h.pipe = nil
}

// events returns every stored event of a guild, oldest first.
func (h *host) events(t *testing.T, guild string) []event.Event {
	t.Helper()
	var out []event.Event
	q := store.EventQuery{Asc: true, Limit: 500}
	for {
		page, err := h.st.ListEvents(context.Background(), guild, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

func (h *host) count(t *testing.T, guild string) int {
	n, err := h.st.CountEvents(context.Background(), guild)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ingestInto is the Handler serve uses, feeding h's pipeline.
func ingestInto(t *testing.T, h *host) *Ingest {
	in, err := NewIngest(discord.NewNormalizer(nil), h.pipe, testLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
