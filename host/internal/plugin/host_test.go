package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	"github.com/spywatcher/spywatcher/host/internal/plugin/process"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

func guest(t testing.TB, name string) []byte {
	return guesttest.Build(t, "host/internal/plugin/testdata/guests/"+name)
}

func guestCacheDir(t testing.TB) string { return guesttest.Dir(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	guesttest.Cleanup()
	os.Exit(code)
}

const (
	guildA = "41771983423143937"
	guildB = "41771983423143999"
	userA  = "80351110224678912"
)

type fixture struct {
	t      testing.TB
	st     *store.Store
	enf    *authz.Enforcer
	h      *Host
	bus    *bus.Local
	reg    *prometheus.Registry
	dir    string
	dbPath string
	cancel context.CancelFunc
	done   chan struct{}
	logs   syncBuffer // the host's log, JSON lines
}

// syncBuffer is a log destination that tests read while the host writes.
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

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, dbPath: filepath.Join(dir, "db.sqlite")}
	f.start(map[string]any{})
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) start(_ map[string]any) {
	t := f.t
	ctx := context.Background()
	st, err := store.Open(ctx, f.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.st, f.bus, f.reg = st, bus.NewLocal(), prometheus.NewRegistry()
	f.enf, err = authz.New(ctx, st, authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.h, err = New(ctx, Config{
		// One compilation cache for the whole run: compiling a Go guest is
		// the slow part, especially under the race detector.
		Dir: filepath.Join(f.dir, "plugins"), CacheDir: filepath.Join(guestCacheDir(t), "cache"),
		QuarantineAfter: 3, Refresh: 20 * time.Millisecond, FlushInterval: 5 * time.Millisecond,
		FetchAllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		Scores:            &f.bus.Scores,
		Logger:            slog.New(slog.NewJSONHandler(&f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Process: process.Options{HealthInterval: 200 * time.Millisecond, HealthTimeout: time.Second,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond},
	}, st, f.enf, safehttp.New(safehttp.Options{}), f.bus, f.reg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	f.cancel, f.done = cancel, make(chan struct{})
	sub := f.bus.Subscribe(1024)
	go func() {
		f.h.Start(runCtx, sub)
		close(f.done)
	}()
}

func (f *fixture) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.h.Close(context.Background())
	f.enf.Close()
	f.st.Close()
	f.cancel = nil
}

// manifest returns a manifest for code; mutate adjusts it.
func manifest(t testing.TB, id, version string, code []byte, mutate func(*Manifest)) []byte {
	t.Helper()
	sum := sha256.Sum256(code)
	m := Manifest{
		ID: id, Name: "Test " + id, Version: version, Runtime: "wasm", ABIVersion: ABIVersion,
		Artifact: Artifact{Path: "plugin.wasm", SHA256: hex.EncodeToString(sum[:])},
		Hooks:    []string{HookEvents, HookHTTP, HookTick, HookDeleteUser, HookScore},
		Events:   []event.Kind{event.KindMessageCreate, event.KindPresenceUpdate},
		Routes:   []Route{{Method: "GET", Path: "/*"}},
		Permissions: []PermissionRequest{
			{Name: PermMessageRead, Reason: "count messages"},
			{Name: PermPresenceRead, Reason: "count presence"},
			{Name: PermKVRead, Reason: "read counts"},
			{Name: PermKVWrite, Reason: "store counts"},
			{Name: PermRoutesServe, Reason: "serve counts"},
			{Name: PermScoresWrite, Reason: "score"},
			{Name: PermMetricsWrite, Reason: "count batches"},
			{Name: PermMembersRead, Reason: "look up members", Optional: true},
			{Name: PermEventsEmit, Reason: "ping dashboards", Optional: true},
			{Name: PermContentRead, Reason: "keep the last message", Optional: true},
			{Name: PermHTTPFetch, Reason: "probe", Optional: true, Hosts: []string{"example.org", "127.0.0.2"}},
		},
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"greeting":{"type":"string","maxLength":20}},"additionalProperties":false}`),
		Limits:       Limits{TimeoutMS: 2000, MemoryMB: 64},
	}
	if mutate != nil {
		mutate(&m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) install(id, version, guestName string, mutate func(*Manifest)) {
	f.t.Helper()
	code := guest(f.t, guestName)
	if _, err := f.h.Install(context.Background(), manifest(f.t, id, version, code, mutate), code); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) route(pluginID, guild, path string) (sdk.Response, error) {
	p, q, _ := strings.Cut(path, "?")
	query := map[string][]string{}
	if q != "" {
		k, v, _ := strings.Cut(q, "=")
		query[k] = []string{v}
	}
	return f.h.ServeRoute(context.Background(), pluginID, guild, sdk.Request{Method: "GET", Path: p, Query: query})
}

func (f *fixture) counts(pluginID, guild string) map[string]int {
	f.t.Helper()
	res, err := f.route(pluginID, guild, "/counts")
	if err != nil {
		f.t.Fatalf("counts: %v", err)
	}
	var body struct{ Counts map[string]int }
	json.Unmarshal(res.Body, &body)
	return body.Counts
}

var seq int

func messageEvent(guild string) event.Event {
	seq++
	return event.Event{ID: fmt.Sprintf("m%d", seq), Kind: event.KindMessageCreate, GuildID: guild, UserID: userA,
		ChannelID: "41771983423143938", At: time.Now().UTC().Truncate(time.Millisecond),
		Data: &event.MessageCreate{MessageID: fmt.Sprint(1100000000000000000 + seq), Length: 6, Content: "secret"}}
}

func presenceEvent(guild string) event.Event {
	seq++
	return event.Event{ID: fmt.Sprintf("p%d", seq), Kind: event.KindPresenceUpdate, GuildID: guild, UserID: userA,
		At: time.Now().UTC().Truncate(time.Millisecond), Data: &event.Presence{Status: event.StatusOnline, ClientStatus: event.ClientStatus{Web: event.StatusOnline}}}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", nil)

	// Installed, but nothing granted or enabled: nothing runs.
	st, err := f.h.Status(ctx, "counter", guildA)
	if err != nil || st.State != "disabled" || len(st.Missing) == 0 {
		t.Fatalf("fresh install: %+v %v", st, err)
	}
	if err := f.h.SetEnabled(ctx, "counter", guildA, true); err != nil {
		t.Fatal(err)
	}
	if st, _ = f.h.Status(ctx, "counter", guildA); st.State != "needs_grant" {
		t.Fatalf("enabled without grants: %+v", st)
	}
	if _, err := f.route("counter", guildA, "/counts"); !errors.Is(err, ErrNotRunnable) {
		t.Fatalf("route before grants: %v", err)
	}
	if err := f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: PermHTTPFetch, Hosts: []string{"evil.example"}}}, "admin"); err == nil {
		t.Fatal("granted a host the plugin did not ask for")
	}
	if err := f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: PermBanRead}}, "admin"); err == nil {
		t.Fatal("granted a permission the plugin did not ask for")
	}
	for _, p := range []string{PermMessageRead, PermPresenceRead, PermKVRead, PermKVWrite, PermRoutesServe, PermScoresWrite, PermMetricsWrite} {
		if err := f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: p}}, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ = f.h.Status(ctx, "counter", guildA); st.State != "running" {
		t.Fatalf("after grants: %+v", st)
	}
	if err := f.h.Configure(ctx, "counter", guildA, json.RawMessage(`{"greeting":"this is far too long for the schema"}`)); err == nil {
		t.Fatal("configuration violating the schema accepted")
	}
	if err := f.h.Configure(ctx, "counter", guildA, json.RawMessage(`{"greeting":"bonjour"}`)); err != nil {
		t.Fatal(err)
	}

	// Events are delivered in batches, only subscribed kinds.
	var evs []event.Event
	for i := 0; i < 300; i++ {
		evs = append(evs, messageEvent(guildA), presenceEvent(guildA))
	}
	evs = append(evs, event.Event{ID: "typing1", Kind: event.KindTypingStart, GuildID: guildA, UserID: userA,
		ChannelID: "41771983423143938", At: time.Now().UTC(), Data: &event.TypingStart{}})
	f.bus.Publish(ctx, evs)
	eventually(t, "600 events delivered", func() bool {
		c := f.counts("counter", guildA)
		return c["message.create"] == 300 && c["presence.update"] == 300
	})
	if c := f.counts("counter", guildA); c["typing.start"] != 0 {
		t.Fatalf("an unsubscribed kind was delivered: %v", c)
	}
	res, _ := f.route("counter", guildA, "/counts")
	if !strings.Contains(string(res.Body), `"greeting":"bonjour"`) || !strings.Contains(string(res.Body), `"guild":"`+guildA) {
		t.Fatalf("config or guild not visible to the plugin: %s", res.Body)
	}
	// Without message.content.read the content is stripped before delivery.
	res, _ = f.route("counter", guildA, "/last-message")
	if strings.Contains(string(res.Body), "secret") {
		t.Fatalf("content reached a plugin without message.content.read: %s", res.Body)
	}
	if v := testutil.ToFloat64(f.h.m.counters.WithLabelValues("counter", guildA, "batches")); v < 2 {
		t.Fatalf("metric host function: %v batches", v)
	}

	// Optional permissions not granted: those calls are denied, the plugin runs.
	res, _ = f.route("counter", guildA, "/member?user="+userA)
	if res.Status != 502 || !strings.Contains(string(res.Body), "denied") {
		t.Fatalf("member_get without members.read: %d %s", res.Status, res.Body)
	}

	// Revocation takes effect on the next call.
	if err := f.h.Revoke(ctx, "counter", guildA, []string{PermKVWrite}); err != nil {
		t.Fatal(err)
	}
	if st, _ = f.h.Status(ctx, "counter", guildA); st.State != "needs_grant" {
		t.Fatalf("revoking a required permission must stop the plugin: %+v", st)
	}
	if err := f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: PermKVWrite}}, "admin"); err != nil {
		t.Fatal(err)
	}

	// A restart keeps installs, enablement, grants, configuration and data.
	f.stop()
	f.start(nil)
	if c := f.counts("counter", guildA); c["message.create"] != 300 {
		t.Fatalf("data after restart: %v", c)
	}
	if st, _ = f.h.Status(ctx, "counter", guildA); st.State != "running" || string(st.Config) != `{"greeting":"bonjour"}` {
		t.Fatalf("state after restart: %+v", st)
	}

	// Upgrading to a version that asks for more needs a new grant first.
	up, err := f.h.Install(ctx, manifest(t, "counter", "1.1.0", guest(t, "good"), func(m *Manifest) {
		m.Permissions = append(m.Permissions, PermissionRequest{Name: PermActivityRead, Reason: "new feature"})
	}), guest(t, "good"))
	if err != nil || up.Previous != "1.0.0" || len(up.NewPermissions) != 1 {
		t.Fatalf("upgrade: %+v %v", up, err)
	}
	if st, _ = f.h.Status(ctx, "counter", guildA); st.State != "needs_grant" || st.Missing[0] != PermActivityRead {
		t.Fatalf("after upgrade: %+v", st)
	}
	f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: PermActivityRead}}, "admin")
	if info, _ := f.h.Get("counter"); info.Version != "1.1.0" {
		t.Fatalf("version after upgrade: %s", info.Version)
	}
	if c := f.counts("counter", guildA); c["message.create"] != 300 {
		t.Fatalf("data after upgrade: %v", c)
	}

	// The same version and code again changes nothing; an older version is
	// refused rather than installed as an "upgrade".
	same, err := f.h.Install(ctx, manifest(t, "counter", "1.1.0", guest(t, "good"), func(m *Manifest) {
		m.Permissions = append(m.Permissions, PermissionRequest{Name: PermActivityRead, Reason: "new feature"})
	}), guest(t, "good"))
	if err != nil || !same.Unchanged || same.Previous != "" {
		t.Fatalf("reinstall of the same version: %+v %v", same, err)
	}
	if _, err := f.h.Install(ctx, manifest(t, "counter", "1.0.5", guest(t, "good"), nil), guest(t, "good")); err == nil ||
		!strings.Contains(err.Error(), "older than the installed 1.1.0") {
		t.Fatalf("downgrade: %v", err)
	}

	// Disabled: nothing delivered.
	f.h.SetEnabled(ctx, "counter", guildA, false)
	f.bus.Publish(ctx, []event.Event{messageEvent(guildA)})
	time.Sleep(50 * time.Millisecond)
	f.h.SetEnabled(ctx, "counter", guildA, true)
	if c := f.counts("counter", guildA); c["message.create"] != 300 {
		t.Fatalf("a disabled plugin received events: %v", c)
	}

	if err := f.h.Uninstall(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.h.Get("counter"); !errors.Is(err, ErrUnknownPlugin) {
		t.Fatalf("after uninstall: %v", err)
	}
	if v, err := f.st.KVUsage(ctx, "counter", guildA); err != nil || v != 0 {
		t.Fatalf("data left after uninstall: %d bytes", v)
	}
}

func (f *fixture) enableAll(id, guild string) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.h.GrantAll(ctx, id, guild, "admin"); err != nil {
		f.t.Fatal(err)
	}
	if err := f.h.SetEnabled(ctx, id, guild, true); err != nil {
		f.t.Fatal(err)
	}
}

func TestGuildIsolation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", nil)
	f.enableAll("counter", guildA)
	f.bus.Publish(ctx, []event.Event{messageEvent(guildA), messageEvent(guildB), messageEvent(guildB)})
	eventually(t, "guild A's event", func() bool { return f.counts("counter", guildA)["message.create"] == 1 })
	if _, err := f.route("counter", guildB, "/counts"); !errors.Is(err, ErrNotRunnable) {
		t.Fatalf("plugin reachable in a guild where it is not enabled: %v", err)
	}
	// Enabled in B too: B's data starts empty, A's is untouched, and
	// instances are not shared (each sees its own guild).
	f.enableAll("counter", guildB)
	if c := f.counts("counter", guildB); len(c) != 0 {
		t.Fatalf("guild B sees data: %v", c)
	}
	f.bus.Publish(ctx, []event.Event{messageEvent(guildB)})
	eventually(t, "guild B's event", func() bool { return f.counts("counter", guildB)["message.create"] == 1 })
	if c := f.counts("counter", guildA); c["message.create"] != 1 {
		t.Fatalf("guild A changed by guild B's events: %v", c)
	}
	res, _ := f.route("counter", guildB, "/counts")
	if !strings.Contains(string(res.Body), guildB) {
		t.Fatalf("instance for guild B reports another guild: %s", res.Body)
	}
	if v, _ := f.st.KVGet(ctx, "counter", guildA, "count:message.create"); string(v) != "1" {
		t.Fatalf("guild A's stored count: %q", v)
	}
}

func TestContentNeedsItsPermission(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", nil)
	if need, _ := f.h.NeedsMessageContent(ctx); need {
		t.Fatal("message content intent wanted with no plugin running")
	}
	f.enableAll("counter", guildA) // grants everything requested, content included
	if need, _ := f.h.NeedsMessageContent(ctx); !need {
		t.Fatal("a running plugin granted message.content.read does not make the gateway ask for content")
	}
	f.bus.Publish(ctx, []event.Event{messageEvent(guildA)})
	eventually(t, "delivery", func() bool { return f.counts("counter", guildA)["message.create"] == 1 })
	res, _ := f.route("counter", guildA, "/last-message")
	if !strings.Contains(string(res.Body), "secret") {
		t.Fatalf("granted message.content.read but no content: %s", res.Body)
	}
	f.h.Revoke(ctx, "counter", guildA, []string{PermContentRead})
	if need, _ := f.h.NeedsMessageContent(ctx); need {
		t.Fatal("content intent still wanted after the grant was revoked")
	}
}

func TestHostFunctions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", nil)
	f.enableAll("counter", guildA)
	// member_get reads the core store.
	f.st.Ingest(ctx, []event.Event{{ID: "j1", Kind: event.KindMemberJoin, GuildID: guildA, UserID: userA, At: time.Now().UTC(),
		Data: &event.MemberJoin{User: &event.User{ID: userA, Username: "alice"}}}})
	res, _ := f.route("counter", guildA, "/member?user="+userA)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"name":"alice"`) {
		t.Fatalf("member_get: %d %s", res.Status, res.Body)
	}
	// emit reaches the bus.
	sub := f.bus.PluginEvents.Subscribe(4)
	defer sub.Cancel()
	if res, err := f.route("counter", guildA, "/emit"); err != nil || res.Status != 204 {
		t.Fatalf("emit: %v %+v", err, res)
	}
	select {
	case ev := <-sub.C:
		if ev.Type != "test.ping" || ev.GuildID != guildA || ev.PluginID != "counter" {
			t.Fatalf("emitted %+v", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("nothing emitted")
	}
	if _, err := f.route("counter", guildA, "/log"); err != nil {
		t.Fatal(err)
	}
	// http_fetch reaches an allowed local server only through the explicit
	// private-address exception; everything else is refused.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
			return
		}
		w.Write([]byte("pong"))
	}))
	l, err := (&net0{}).listen("127.0.0.2:0")
	if err != nil {
		t.Skip("no 127.0.0.2 on this machine:", err)
	}
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: PermHTTPFetch}}, "admin")
	res, _ = f.route("counter", guildA, "/fetch?url=http://127.0.0.2:"+port+"/ping")
	if !strings.Contains(string(res.Body), "denied") {
		// The grant lists 127.0.0.2 without a port: only port 80 is allowed.
		t.Fatalf("fetch to a port the grant does not list: %s", res.Body)
	}
	for _, target := range []string{"http://127.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://example.org.evil.test/"} {
		res, _ = f.route("counter", guildA, "/fetch?url="+target)
		if res.Status != 502 || !strings.Contains(string(res.Body), "denied") {
			t.Fatalf("fetch %s: %d %s", target, res.Status, res.Body)
		}
	}
}

func TestHostileNeverHurtsOthers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", nil)
	f.enableAll("counter", guildA)
	f.install("hostile", "1.0.0", "hostile", func(m *Manifest) {
		m.Hooks = []string{HookHTTP, HookEvents}
		m.Events = []event.Kind{event.KindMessageCreate}
		m.Permissions = []PermissionRequest{
			{Name: PermRoutesServe, Reason: "misbehave"}, {Name: PermMessageRead, Reason: "misbehave"},
			{Name: PermKVWrite, Reason: "misbehave", Optional: true},
			{Name: PermHTTPFetch, Reason: "misbehave", Optional: true, Hosts: []string{"127.0.0.1", "169.254.169.254"}},
		}
		m.ConfigSchema = nil
		m.Limits = Limits{TimeoutMS: 1000, MemoryMB: 64, MaxOutputKB: 1024}
	})
	f.enableAll("hostile", guildA)
	f.h.Revoke(ctx, "hostile", guildA, []string{PermKVWrite})
	tests := []struct {
		path string
		want string
	}{
		{"/loop", "timed out"},
		{"/trap", ""},
		{"/exit", ""},
		{"/memory", ""},
		{"/huge-output", "exceeds"},
		{"/panic", "panic"},
		{"/kv", "denied"},
		{"/fetch", "denied"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			// Between each, enabling again lifts a quarantine.
			f.h.SetEnabled(ctx, "hostile", guildA, true)
			start := time.Now()
			_, err := f.route("hostile", guildA, tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%s: err = %v, want mention of %q", tt.path, err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s took %s", tt.path, d)
			}
			// The host and the other plugin are fine; the hostile one still
			// answers on a fresh instance.
			if res, err := f.route("hostile", guildA, "/ok"); err != nil || string(res.Body) != "fine" {
				t.Fatalf("after %s the plugin does not recover: %v %s", tt.path, err, res.Body)
			}
			f.bus.Publish(ctx, []event.Event{messageEvent(guildA)})
		})
	}
	eventually(t, "the good plugin keeps receiving events", func() bool {
		return f.counts("counter", guildA)["message.create"] >= len(tests)
	})

	// Repeated failures quarantine the plugin in that guild only.
	for i := 0; i < 3; i++ {
		f.route("hostile", guildA, "/panic")
	}
	st, _ := f.h.Status(ctx, "hostile", guildA)
	if st.State != "quarantined" || !strings.Contains(st.QuarantineReason, "3 consecutive failures") {
		t.Fatalf("after 3 failures: %+v", st)
	}
	if _, err := f.route("hostile", guildA, "/ok"); !errors.Is(err, ErrNotRunnable) {
		t.Fatalf("quarantined plugin still served: %v", err)
	}
	if v := testutil.ToFloat64(f.h.m.quarantines.WithLabelValues("hostile")); v != 1 {
		t.Fatalf("quarantine metric %v", v)
	}
	if c := f.counts("counter", guildA); c == nil {
		t.Fatal("the good plugin stopped")
	}
	// The admin lifts it by enabling again.
	f.h.SetEnabled(ctx, "hostile", guildA, true)
	if res, err := f.route("hostile", guildA, "/ok"); err != nil || res.Status != 200 {
		t.Fatalf("after re-enable: %v", err)
	}

	// A plugin failing in on_events is quarantined too, and ingest of other
	// plugins goes on.
	f.h.Configure(ctx, "hostile", guildA, json.RawMessage(`{"on_events":"loop"}`))
	eventually(t, "on_events failures quarantine", func() bool {
		// Each publish after the previous call timed out is one more failure.
		f.bus.Publish(ctx, []event.Event{messageEvent(guildA)})
		time.Sleep(100 * time.Millisecond)
		st, _ := f.h.Status(ctx, "hostile", guildA)
		return st.State == "quarantined"
	})
	before := f.counts("counter", guildA)["message.create"]
	f.bus.Publish(ctx, []event.Event{messageEvent(guildA)})
	eventually(t, "the good plugin still receives events", func() bool {
		return f.counts("counter", guildA)["message.create"] > before
	})
	runtime.GC()
}

// net0 opens listeners; a seam so the 127.0.0.2 test can skip cleanly.
type net0 struct{}

func (net0) listen(addr string) (netListener, error) { return listenTCP(addr) }

func TestInstallErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	code := guest(t, "good")
	tests := []struct {
		name     string
		manifest []byte
		code     []byte
		want     string
	}{
		{"not json", []byte("{"), code, "not valid JSON"},
		{"unknown field", []byte(`{"id":"x","permisions":[]}`), code, "unknown field"},
		{"bad fields", manifest(t, "X!", "one", code, func(m *Manifest) { m.Runtime = "lua"; m.Hooks = []string{"on_everything"} }), code, "id:"},
		{"checksum", manifest(t, "ok", "1.0.0", code, nil), append([]byte{0}, code...), "checksum mismatch"},
		{"unknown permission", manifest(t, "ok", "1.0.0", code, func(m *Manifest) {
			m.Permissions = append(m.Permissions, PermissionRequest{Name: "root", Reason: "why not"})
		}), code, `unknown permission "root"`},
		{"events without read permission", manifest(t, "ok", "1.0.0", code, func(m *Manifest) {
			m.Events = append(m.Events, event.KindBanAdd)
		}), code, "needs the permission events.ban.read"},
		{"fetch without hosts", manifest(t, "ok", "1.0.0", code, func(m *Manifest) {
			m.Permissions[len(m.Permissions)-1].Hosts = nil
		}), code, "must list the hosts"},
		{"not wasm", manifest(t, "ok", "1.0.0", []byte("hello"), nil), []byte("hello"), "not a valid WebAssembly module"},
		{"limits", manifest(t, "ok", "1.0.0", code, func(m *Manifest) { m.Limits.MemoryMB = 100000 }), code, "limits.memory_mb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.h.Install(ctx, tt.manifest, tt.code)
			var ie *InstallError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want an InstallError mentioning %q", err, tt.want)
			}
		})
	}
	// A hook the module does not export.
	hostile := guest(t, "hostile")
	_, err := f.h.Install(ctx, manifest(t, "liar", "1.0.0", hostile, func(m *Manifest) {
		m.Hooks = []string{HookHTTP, HookScore}
		m.Events = nil
		m.Permissions = []PermissionRequest{{Name: PermRoutesServe, Reason: "r"}, {Name: PermScoresWrite, Reason: "s"}}
		m.ConfigSchema = nil
	}), hostile)
	if err == nil || !strings.Contains(err.Error(), "does not implement: score") {
		t.Fatalf("a hook without a handler: %v", err)
	}
	// A module without the SDK: exports are checked directly, and imports
	// the host does not offer are refused at install.
	bare := tinyModule("", "http")
	_, err = f.h.Install(ctx, manifest(t, "bare", "1.0.0", bare, func(m *Manifest) {
		m.Hooks = []string{HookHTTP, HookScore}
		m.Events = nil
		m.Permissions = []PermissionRequest{{Name: PermRoutesServe, Reason: "r"}, {Name: PermScoresWrite, Reason: "s"}}
		m.ConfigSchema = nil
	}), bare)
	if err == nil || !strings.Contains(err.Error(), "does not implement: score") {
		t.Fatalf("missing export: %v", err)
	}
	sneaky := tinyModule("system", "http")
	_, err = f.h.Install(ctx, manifest(t, "sneaky", "1.0.0", sneaky, func(m *Manifest) {
		m.Hooks = []string{HookHTTP}
		m.Events = nil
		m.Permissions = []PermissionRequest{{Name: PermRoutesServe, Reason: "r"}}
		m.ConfigSchema = nil
	}), sneaky)
	if err == nil || !strings.Contains(err.Error(), "imports env.system") {
		t.Fatalf("foreign import: %v", err)
	}
	if len(f.h.List()) != 0 {
		t.Fatalf("a failed install left a plugin: %+v", f.h.List())
	}
	// The same version with different code is refused.
	f.install("counter", "1.0.0", "good", nil)
	if _, err := f.h.Install(ctx, manifest(t, "counter", "1.0.0", hostile, func(m *Manifest) {
		m.Hooks = []string{HookHTTP, HookEvents}
		m.ConfigSchema = nil
	}), hostile); err == nil || !strings.Contains(err.Error(), "raise the version") {
		t.Fatalf("same version, other code: %v", err)
	}
}

func TestScoreAndTickHooks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", func(m *Manifest) { m.TickSeconds = 10 })
	f.enableAll("counter", guildA)
	in, _ := json.Marshal(sdk.ScoreRequest{GuildID: guildA, Members: []sdk.MemberStats{{UserID: userA, Messages: 7}}})
	out, err := f.h.call(ctx, "counter", guildA, HookScore, in)
	if err != nil {
		t.Fatal(err)
	}
	var res sdk.ScoreResponse
	if err := json.Unmarshal(out, &res); err != nil || len(res.Scores) != 1 || res.Scores[0].Score != 7 || res.Scores[0].Explanation != "7 messages" {
		t.Fatalf("score: %s %v", out, err)
	}
	due := map[[2]string]time.Time{}
	now := time.Now()
	f.h.runTicks(ctx, now, due)                     // schedules
	f.h.runTicks(ctx, now.Add(11*time.Second), due) // runs
	eventually(t, "a tick", func() bool {
		v, _ := f.st.KVGet(ctx, "counter", guildA, "ticks")
		return string(v) == "1"
	})
}

// tinyModule hand-assembles a WebAssembly module exporting one function
// (returning i32 0) named export and, if importName is set, importing
// env.importName — a guest written without any SDK.
func tinyModule(importName, export string) []byte {
	sec := func(id byte, body ...byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	b := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	b = append(b, sec(1, 0x01, 0x60, 0x00, 0x01, 0x7f)...) // type 0: () -> i32
	fnIndex := byte(0)
	if importName != "" {
		imp := []byte{0x01, 0x03, 'e', 'n', 'v', byte(len(importName))}
		imp = append(imp, importName...)
		imp = append(imp, 0x00, 0x00)
		b = append(b, sec(2, imp...)...)
		fnIndex = 1
	}
	b = append(b, sec(3, 0x01, 0x00)...)
	exp := append([]byte{0x01, byte(len(export))}, export...)
	exp = append(exp, 0x00, fnIndex)
	b = append(b, sec(7, exp...)...)
	b = append(b, sec(10, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b)...)
	return b
}

// TestDeleteUserCallsHook: the host calls delete_user where the plugin runs
// (the guest deletes its "user:<id>" key), and not where it does not.
func TestDeleteUserCallsHook(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", nil)
	if err := f.h.SetEnabled(ctx, "counter", guildA, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{PermMessageRead, PermPresenceRead, PermKVRead, PermKVWrite, PermRoutesServe, PermScoresWrite, PermMetricsWrite} {
		if err := f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: p}}, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	// Not tied to the user in the store: only the hook can remove it.
	for _, g := range []string{guildA, guildB} {
		if err := f.st.KVSet(ctx, "counter", g, "user:"+userA, "", []byte("x"), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.KVSet(ctx, "counter", guildA, "other", "", []byte("y"), 1<<20); err != nil {
		t.Fatal(err)
	}
	if res := f.h.DeleteUser(ctx, guildB, userA); len(res) != 0 {
		t.Fatalf("called where the plugin does not run: %+v", res)
	}
	res := f.h.DeleteUser(ctx, "", userA)
	if len(res) != 1 || res[0].Plugin != "counter" || res[0].Guild != guildA || res[0].Error != "" {
		t.Fatalf("results %+v", res)
	}
	if _, err := f.st.KVGet(ctx, "counter", guildA, "user:"+userA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the hook did not run: %v", err)
	}
	if _, err := f.st.KVGet(ctx, "counter", guildA, "other"); err != nil {
		t.Fatalf("the hook removed another key: %v", err)
	}
	if _, err := f.st.KVGet(ctx, "counter", guildB, "user:"+userA); err != nil {
		t.Fatalf("the hook ran in a guild where the plugin is not enabled: %v", err)
	}
}
