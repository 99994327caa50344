package ws

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

const (
	guildA = "81384788765712384"
	guildB = "51771983423143937"
	alice  = "80351110224678912"
)

// fakeAuth knows Bearer tokens and session cookies by their value.
type fakeAuth struct {
	tokens  map[string]auth.Principal
	revoked *sync.Map // token → true
}

func (f fakeAuth) Authenticate(r *http.Request) (auth.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok := strings.TrimPrefix(h, "Bearer ")
		if f.revoked != nil {
			if _, gone := f.revoked.Load(tok); gone {
				return auth.Principal{}, fmt.Errorf("%w: revoked", auth.ErrUnauthenticated)
			}
		}
		if p, ok := f.tokens[tok]; ok {
			return p, nil
		}
		return auth.Principal{}, fmt.Errorf("%w: unknown token", auth.ErrUnauthenticated)
	}
	if c, err := r.Cookie(auth.CookieAccess); err == nil {
		if p, ok := f.tokens[c.Value]; ok {
			p.Cookie = true
			return p, nil
		}
		return auth.Principal{}, fmt.Errorf("%w: bad cookie", auth.ErrUnauthenticated)
	}
	return auth.Principal{}, auth.ErrNoCredentials
}

// fakeAuthz gives each subject a role per guild with the built-in policy's
// meaning: viewer reads presence, moderator also events and scores.
type fakeAuthz struct {
	mu    sync.Mutex
	roles map[string]map[string]string
}

func (f *fakeAuthz) set(sub, guild, role string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.roles[sub] == nil {
		f.roles[sub] = map[string]string{}
	}
	f.roles[sub][guild] = role
}

func (f *fakeAuthz) Enforce(sub, dom, obj, act string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := f.roles[sub][dom]
	switch obj {
	case "presence":
		return role == "viewer" || role == "moderator", nil
	case "events", "scores":
		return role == "moderator", nil
	}
	return false, nil
}

type world struct {
	hub     *Hub
	bus     *bus.Local
	revoked *sync.Map
	srv     *httptest.Server
	authz   *fakeAuthz
	reg     *prometheus.Registry
}

func newWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	az := &fakeAuthz{roles: map[string]map[string]string{}}
	az.set("user:mod", guildA, "moderator")
	az.set("user:viewer", guildA, "viewer")
	reg := prometheus.NewRegistry()
	revoked := &sync.Map{}
	cfg.Auth = fakeAuth{revoked: revoked, tokens: map[string]auth.Principal{
		"mod":    {Kind: auth.KindUser, ID: "mod", Subject: "user:mod"},
		"viewer": {Kind: auth.KindUser, ID: "viewer", Subject: "user:viewer"},
		"nobody": {Kind: auth.KindUser, ID: "nobody", Subject: "user:nobody"},
	}}
	cfg.Authz = az
	cfg.Registerer = reg
	b := bus.NewLocal()
	h, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	srv := httptest.NewServer(h)
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return &world{hub: h, bus: b, srv: srv, authz: az, reg: reg, revoked: revoked}
}

func (w *world) url() string { return "ws" + strings.TrimPrefix(w.srv.URL, "http") + "/api/v1/ws" }

type client struct {
	t  *testing.T
	c  *websocket.Conn
	in []Message // read but not yet consumed
}

func dial(t *testing.T, url string, hdr http.Header) (*client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { c.CloseNow() })
	cl := &client{t: t, c: c}
	if m := cl.next(); m.Type != "hello" {
		t.Fatalf("first message %+v, want hello", m)
	}
	return cl, resp, nil
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func mustDial(t *testing.T, w *world, tok string) *client {
	t.Helper()
	c, _, err := dial(t, w.url(), bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// next returns the next message, reading a frame when needed. The timeout
// only keeps a broken test from hanging.
func (c *client) next() Message {
	c.t.Helper()
	for len(c.in) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		typ, data, err := c.c.Read(ctx)
		cancel()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if typ != websocket.MessageText {
			c.t.Fatalf("frame type %v", typ)
		}
		ms, err := decodeFrame(data)
		if err != nil {
			c.t.Fatalf("frame %s: %v", data, err)
		}
		c.in = ms
	}
	m := c.in[0]
	c.in = c.in[1:]
	return m
}

// decodeFrame reads a frame as a client does: objects are messages, arrays
// tagged "p" presence batches, expanded to full presence messages.
func decodeFrame(data []byte) ([]Message, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, err
	}
	status := map[byte]event.Status{'o': event.StatusOnline, 'i': event.StatusIdle, 'd': event.StatusDND, 'f': event.StatusOffline, '-': ""}
	out := make([]Message, 0, len(raws))
	for _, raw := range raws {
		if len(raw) == 0 || raw[0] != '[' {
			var m Message
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, err
			}
			out = append(out, m)
			continue
		}
		var f []json.RawMessage
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, err
		}
		var tag, guild string
		var at0 int64
		if len(f) < 4 {
			return nil, fmt.Errorf("presence batch %s: %d fields", raw, len(f))
		}
		for i, dst := range []any{&tag, &guild, &at0} {
			if err := json.Unmarshal(f[i], dst); err != nil {
				return nil, fmt.Errorf("presence batch %s: field %d: %w", raw, i, err)
			}
		}
		if tag != PresenceTag {
			return nil, fmt.Errorf("presence batch %s: unknown tag", raw)
		}
		for _, tu := range f[3:] {
			var dt int64
			var id, user, st string
			var tuple []json.RawMessage
			if err := json.Unmarshal(tu, &tuple); err != nil || len(tuple) != 4 {
				return nil, fmt.Errorf("presence %s: %v", tu, err)
			}
			for i, dst := range []any{&dt, &id, &user, &st} {
				if err := json.Unmarshal(tuple[i], dst); err != nil {
					return nil, fmt.Errorf("presence %s: field %d: %w", tu, i, err)
				}
			}
			if len(st) != 4 {
				return nil, fmt.Errorf("presence %s: status %q", tu, st)
			}
			p := event.Presence{Status: status[st[0]], ClientStatus: event.ClientStatus{Desktop: status[st[1]], Mobile: status[st[2]], Web: status[st[3]]}}
			at := time.UnixMilli(at0 + dt).UTC()
			data, _ := json.Marshal(p)
			out = append(out, Message{Type: "event", GuildID: guild, ID: id, Kind: string(event.KindPresenceUpdate), At: &at, UserID: user, Data: data})
		}
	}
	return out, nil
}

func (c *client) send(m ClientMessage) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	if err := c.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) subscribe(guild, since string) Message {
	c.t.Helper()
	c.send(ClientMessage{Type: "subscribe", Guild: guild, Since: since})
	m := c.next()
	if m.Type != "subscribed" && m.Type != "error" {
		c.t.Fatalf("subscribe answered %+v", m)
	}
	return m
}

// until returns the messages up to and including the first that matches.
func (c *client) until(match func(Message) bool) []Message {
	c.t.Helper()
	var out []Message
	for {
		m := c.next()
		out = append(out, m)
		if match(m) {
			return out
		}
	}
}

func idIs(id string) func(Message) bool { return func(m Message) bool { return m.ID == id } }

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func presence(id string) event.Event {
	return event.Event{ID: id, Kind: event.KindPresenceUpdate, GuildID: guildA, UserID: alice, At: t0,
		Data: &event.Presence{Status: event.StatusOnline, ClientStatus: event.ClientStatus{Mobile: event.StatusOnline}}}
}

func message(id, content string) event.Event {
	return event.Event{ID: id, Kind: event.KindMessageCreate, GuildID: guildA, UserID: alice, ChannelID: "81384788765712385", At: t0,
		Data: &event.MessageCreate{MessageID: "1100000000000000001", Content: content, Length: len(content)}}
}

func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func TestAuthentication(t *testing.T) {
	w := newWorld(t, Config{Origins: []string{"https://dash.example"}})
	cookie := func(origin string) http.Header {
		h := http.Header{"Cookie": {auth.CookieAccess + "=mod"}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	host := strings.TrimPrefix(w.srv.URL, "http://")
	for _, tc := range []struct {
		name string
		hdr  http.Header
		want int // 0: upgraded
	}{
		{"no credentials", nil, http.StatusUnauthorized},
		{"bad token", bearer("forged"), http.StatusUnauthorized},
		{"bearer", bearer("mod"), 0},
		{"bearer from any origin", http.Header{"Authorization": {"Bearer mod"}, "Origin": {"https://evil.example"}}, 0},
		{"cookie without origin", cookie(""), 0},
		{"cookie same origin", cookie("http://" + host), 0},
		{"cookie from a CORS origin", cookie("https://dash.example"), 0},
		{"cookie from a foreign origin", cookie("https://evil.example"), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := dial(t, w.url(), tc.hdr)
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("want upgrade, got %v", err)
				}
				return
			}
			if err == nil || resp == nil || resp.StatusCode != tc.want {
				t.Fatalf("want %d, got %v %v", tc.want, resp, err)
			}
		})
	}
}

func TestTicketIsSingleUse(t *testing.T) {
	w := newWorld(t, Config{})
	tk, _, err := w.hub.IssueTicket(context.Background(), auth.Principal{Kind: auth.KindUser, ID: "mod", Subject: "user:mod"})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := dial(t, w.url()+"?ticket="+tk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.subscribe(guildA, ""); m.Type != "subscribed" || m.Scope != "full" {
		t.Fatalf("ticket holder is the moderator: %+v", m)
	}
	if _, resp, err := dial(t, w.url()+"?ticket="+tk, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second use of a ticket: %v %v", resp, err)
	}
	if _, resp, err := dial(t, w.url()+"?ticket=wst_made_up", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("made-up ticket: %v %v", resp, err)
	}
}

func TestSubscriptionsAreAuthorizedPerGuild(t *testing.T) {
	w := newWorld(t, Config{})
	mod, viewer, nobody := mustDial(t, w, "mod"), mustDial(t, w, "viewer"), mustDial(t, w, "nobody")
	if m := mod.subscribe(guildA, ""); m.Scope != "full" {
		t.Fatalf("moderator: %+v", m)
	}
	if m := viewer.subscribe(guildA, ""); m.Scope != "presence" {
		t.Fatalf("viewer: %+v", m)
	}
	if m := nobody.subscribe(guildA, ""); m.Type != "error" || m.Code != "forbidden" {
		t.Fatalf("no role: %+v", m)
	}
	if m := mod.subscribe(guildB, ""); m.Type != "error" || m.Code != "forbidden" {
		t.Fatalf("moderator of A in B: %+v", m)
	}
	if m := mod.subscribe("not-a-guild", ""); m.Type != "error" || m.Code != "bad_request" {
		t.Fatalf("bad guild: %+v", m)
	}

	w.bus.Publish(context.Background(), []event.Event{message("m1", "secret words"), presence("p1")})
	w.bus.PublishScores(context.Background(), []bus.ScoreUpdate{{ID: "s1", GuildID: guildA, UserID: alice, Scorer: "ghost", Score: 0.7, At: t0}})
	w.bus.PublishPluginEvent(context.Background(), bus.PluginEvent{ID: "x1", GuildID: guildA, PluginID: "alerts", Type: "raid", At: t0})

	// Topics are read concurrently: the order across them is not fixed.
	kinds := []string{}
	for len(kinds) < 4 {
		m := mod.next()
		kinds = append(kinds, m.ID+":"+m.Kind)
		if m.Kind == string(event.KindMessageCreate) && strings.Contains(string(m.Data), "secret") {
			t.Errorf("message content reached the stream: %s", m.Data)
		}
	}
	sort.Strings(kinds)
	if want := "m1:message.create p1:presence.update s1:score.update x1:plugin.event"; strings.Join(kinds, " ") != want {
		t.Errorf("moderator got %v, want %s", kinds, want)
	}
	// The viewer sees presence only: the next thing after p1 is p2.
	w.bus.Publish(context.Background(), []event.Event{message("m2", "hi"), presence("p2")})
	for _, want := range []string{"p1", "p2"} {
		if m := viewer.next(); m.ID != want || m.Kind != string(event.KindPresenceUpdate) {
			t.Fatalf("viewer got %+v, want %s", m, want)
		}
	}

	// Unsubscribed, nothing more arrives; the next message is the ack.
	mod.until(idIs("p2"))
	mod.send(ClientMessage{Type: "unsubscribe", Guild: guildA})
	if m := mod.next(); m.Type != "unsubscribed" {
		t.Fatalf("unsubscribe: %+v", m)
	}
}

func TestAccessIsRecheckedAtEveryPing(t *testing.T) {
	w := newWorld(t, Config{PingInterval: 20 * time.Millisecond})
	c := mustDial(t, w, "mod")
	c.subscribe(guildA, "")
	w.authz.set("user:mod", guildA, "")
	m := c.until(func(m Message) bool { return m.Type == "unsubscribed" })
	if last := m[len(m)-1]; last.Code != "forbidden" || last.GuildID != guildA {
		t.Fatalf("%+v", last)
	}
}

func TestRevokedCredentialEndsTheStream(t *testing.T) {
	w := newWorld(t, Config{PingInterval: 20 * time.Millisecond})
	c := mustDial(t, w, "mod")
	c.subscribe(guildA, "")
	w.revoked.Store("mod", true)
	var err error
	for err == nil {
		_, _, err = c.c.Read(context.Background())
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseUnauthorized {
		t.Fatalf("closed with %v, want %d", err, CloseUnauthorized)
	}
}

func TestResume(t *testing.T) {
	w := newWorld(t, Config{ReplaySize: 4})
	c := mustDial(t, w, "mod")
	c.subscribe(guildA, "")
	var evs []event.Event
	for i := 1; i <= 6; i++ {
		evs = append(evs, presence(fmt.Sprintf("e%d", i)))
	}
	w.bus.Publish(context.Background(), evs)
	c.until(idIs("e6"))

	// The ring holds e3..e6: after e4 come e5 and e6.
	r := mustDial(t, w, "mod")
	if m := r.subscribe(guildA, "e4"); *m.Replayed != 2 {
		t.Fatalf("resume: %+v", m)
	}
	if a, b := r.next(), r.next(); a.ID != "e5" || b.ID != "e6" {
		t.Fatalf("replayed %s %s", a.ID, b.ID)
	}
	w.bus.Publish(context.Background(), []event.Event{presence("e7")})
	if m := r.next(); m.ID != "e7" {
		t.Fatalf("live after replay: %+v", m)
	}

	// e1 fell out of the buffer: the client is told to refetch.
	g := mustDial(t, w, "mod")
	g.subscribe(guildA, "e1")
	if m := g.next(); m.Type != "resync" || m.Code != "replay_gap" {
		t.Fatalf("gap: %+v", m)
	}
	if metric(t, w.reg, "spywatcher_ws_resyncs_total", "") != 1 {
		t.Error("resync not counted")
	}
}

func TestSlowConsumerIsClosedWithAReason(t *testing.T) {
	w := newWorld(t, Config{QueueSize: 8, WriteTimeout: time.Minute})
	slow, fast := mustDial(t, w, "mod"), mustDial(t, w, "mod")
	slow.subscribe(guildA, "")
	fast.subscribe(guildA, "")

	// Large messages fill the slow client's socket buffers, then its queue.
	// The fast client reads each before the next is sent, so it never
	// falls behind however slowly this machine runs it.
	seen := make(chan string)
	go func() {
		for {
			m := fast.next()
			seen <- m.ID
			if m.ID == "last" {
				return
			}
		}
	}()
	big := json.RawMessage(`{"type":"event","data":"` + strings.Repeat("x", 64<<10) + `"}`)
	sent := 0
	for metric(t, w.reg, "spywatcher_ws_dropped_total", "slow_consumer") == 0 {
		id := fmt.Sprint(sent)
		w.hub.Deliver(guildA, []item{{ID: id, Cat: catEvents, Msg: json.RawMessage(strings.Replace(string(big), `"type"`, `"id":"`+id+`","type"`, 1))}})
		if got := <-seen; got != id {
			t.Fatalf("fast client got %s, want %s", got, id)
		}
		sent++
		if sent > 100_000 {
			t.Fatal("the slow client was never closed")
		}
	}
	w.hub.Deliver(guildA, []item{{ID: "last", Cat: catEvents, Msg: json.RawMessage(`{"type":"event","id":"last"}`)}})
	if got := <-seen; got != "last" {
		t.Fatalf("fast client got %s after the slow one was closed", got)
	}

	// The slow client reads what was in flight, then the close frame.
	var err error
	for err == nil {
		_, _, err = slow.c.Read(context.Background())
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseSlowConsumer || !strings.Contains(ce.Reason, "slow consumer") {
		t.Fatalf("slow client closed with %v, want %d and a reason", err, CloseSlowConsumer)
	}
}

// TestRedisFanout runs two hubs on one Redis: an event published on either
// hub's bus reaches the clients of both, once.
func TestRedisFanout(t *testing.T) {
	url := os.Getenv("SPYWATCHER_TEST_REDIS_URL")
	if url == "" {
		t.Skip("SPYWATCHER_TEST_REDIS_URL unset: the Redis fan-out test is skipped")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	newRedis := func() *redis.Client {
		rdb := redis.NewClient(opts)
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
	r1, r2 := newRedis(), newRedis()
	w1 := newWorld(t, Config{Fanout: bus.NewRedisSignals(r1, nil), Tickets: NewRedisTickets(r1)})
	w2 := newWorld(t, Config{Fanout: bus.NewRedisSignals(r2, nil), Tickets: NewRedisTickets(r2)})
	c1, c2 := mustDial(t, w1, "mod"), mustDial(t, w2, "mod")
	c1.subscribe(guildA, "")
	c2.subscribe(guildA, "")

	run := fmt.Sprint(time.Now().UnixNano()) // other runs may share the Redis
	w1.bus.Publish(context.Background(), []event.Event{presence("a-" + run)})
	w2.bus.Publish(context.Background(), []event.Event{presence("b-" + run)})
	for _, c := range []*client{c1, c2} {
		seen := map[string]int{}
		for len(seen) < 2 {
			m := c.next()
			if strings.HasSuffix(m.ID, run) {
				seen[m.ID]++
			}
		}
		if seen["a-"+run] != 1 || seen["b-"+run] != 1 {
			t.Errorf("client saw %v", seen)
		}
	}
	// Both replay buffers hold both events, so a client resumes anywhere:
	// no resync, and what follows is live.
	r := mustDial(t, w2, "mod")
	if m := r.subscribe(guildA, "a-"+run); m.Type != "subscribed" {
		t.Fatalf("resume on the other instance: %+v", m)
	}
	w1.bus.Publish(context.Background(), []event.Event{presence("c-" + run)})
	for _, m := range r.until(idIs("c-" + run)) {
		if m.Type == "resync" {
			t.Fatalf("resume on the other instance: %+v", m)
		}
	}
	// A ticket from one instance opens a connection on the other, once.
	tk, _, err := w1.hub.IssueTicket(context.Background(), auth.Principal{Kind: auth.KindUser, ID: "mod", Subject: "user:mod"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dial(t, w2.url()+"?ticket="+tk, nil); err != nil {
		t.Fatalf("ticket on the other instance: %v", err)
	}
	if _, resp, err := dial(t, w1.url()+"?ticket="+tk, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("ticket reused: %v", err)
	}
}

func TestPresenceIsCompact(t *testing.T) {
	w := newWorld(t, Config{})
	c := mustDial(t, w, "mod")
	c.subscribe(guildA, "")
	p1, p2, p4 := presence("p1"), presence("p2"), presence("p4")
	p1.At = t0.Add(1234 * time.Millisecond)
	p2.Data = &event.Presence{Status: event.StatusDND, ClientStatus: event.ClientStatus{Desktop: event.StatusDND, Web: event.StatusIdle}}
	p4.Data = &event.Presence{Status: "streaming"} // no letter: the full form
	// One publish: one frame, where the message splits the presence run.
	w.bus.Publish(context.Background(), []event.Event{p1, p2, message("m3", "hi"), p4})
	want := []struct {
		id, kind string
		at       time.Time
		p        event.Presence
	}{
		{"p1", "presence.update", p1.At, event.Presence{Status: event.StatusOnline, ClientStatus: event.ClientStatus{Mobile: event.StatusOnline}}},
		{"p2", "presence.update", t0, event.Presence{Status: event.StatusDND, ClientStatus: event.ClientStatus{Desktop: event.StatusDND, Web: event.StatusIdle}}},
		{"m3", "message.create", t0, event.Presence{}},
		{"p4", "presence.update", t0, event.Presence{Status: "streaming"}},
	}
	for _, wm := range want {
		m := c.next()
		if m.ID != wm.id || m.Kind != wm.kind || m.GuildID != guildA || m.UserID != alice || !m.At.Equal(wm.at) {
			t.Fatalf("got %+v, want %+v", m, wm)
		}
		if wm.kind == "presence.update" {
			var p event.Presence
			if err := json.Unmarshal(m.Data, &p); err != nil || p.Status != wm.p.Status || p.ClientStatus != wm.p.ClientStatus {
				t.Fatalf("%s: presence %s, want %+v", m.ID, m.Data, wm.p)
			}
		}
	}
	it, err := eventItem(p1)
	if err != nil || !it.Compact {
		t.Fatalf("%+v %v", it, err)
	}
	full, _ := eventItem(p4)
	if len(it.Msg)*2 > len(full.Msg) {
		t.Errorf("compact presence is %d bytes (%s), the full message %d", len(it.Msg), it.Msg, len(full.Msg))
	}
}

// TestStuckWriteIsClosed: a client that stops reading blocks its writer
// once the socket buffers are full; the watchdog closes it.
func TestStuckWriteIsClosed(t *testing.T) {
	w := newWorld(t, Config{QueueSize: 1 << 20, WriteTimeout: 200 * time.Millisecond})
	c := mustDial(t, w, "mod")
	c.subscribe(guildA, "")
	big := json.RawMessage(`{"type":"event","data":"` + strings.Repeat("x", 256<<10) + `"}`)
	for i := 0; metric(t, w.reg, "spywatcher_ws_dropped_total", "write_timeout") == 0; i++ {
		if i > 1_000_000 {
			t.Fatal("the stuck connection was never closed")
		}
		w.hub.Deliver(guildA, []item{{ID: fmt.Sprint(i), Cat: catEvents, Msg: big}})
		time.Sleep(time.Millisecond)
	}
	for i := 0; w.hub.Connections() > 0; i++ { // the writer ends, the connection is dropped
		if i > 10_000 {
			t.Fatal("the closed connection was never dropped")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestProtocol: the hub's side of the WebSocket protocol as a client
// library (an implementation independent of ours) sees it.
func TestProtocol(t *testing.T) {
	w := newWorld(t, Config{})

	// Pings are answered; binary and non-JSON messages get an error
	// message and the stream goes on.
	c := mustDial(t, w, "mod")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pong := make(chan error, 1)
	go func() { pong <- c.c.Ping(ctx) }() // the pong is read by next below
	if err := c.c.Write(ctx, websocket.MessageBinary, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if m := c.next(); m.Type != "error" || !strings.Contains(m.Text, "JSON text") {
		t.Fatalf("binary message: %+v", m)
	}
	if err := c.c.Write(ctx, websocket.MessageText, []byte("{nope")); err != nil {
		t.Fatal(err)
	}
	if m := c.next(); m.Type != "error" || m.Code != "bad_request" {
		t.Fatalf("bad JSON: %+v", m)
	}
	if err := <-pong; err != nil {
		t.Fatalf("ping: %v", err)
	}
	if m := c.subscribe(guildA, ""); m.Type != "subscribed" {
		t.Fatalf("subscribe after errors: %+v", m)
	}
	// A close from the client is answered (a clean close handshake).
	if err := c.c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	waitFor(t, func() bool { return w.hub.Connections() == 0 })

	// A message over the read limit closes with 1009.
	c = mustDial(t, w, "mod")
	if err := c.c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 5000))); err != nil {
		t.Fatal(err)
	}
	var err error
	for err == nil {
		_, _, err = c.c.Read(ctx)
	}
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: %v", err)
	}
}

// TestProtocolViolation: a client breaking the framing rules (an unmasked
// frame) is closed with 1002 and a reason.
func TestProtocolViolation(t *testing.T) {
	w := newWorld(t, Config{})
	nc, br := rawConn(t, w, "mod")
	if _, err := nc.Write([]byte{0x81, 0x02, 'h', 'i'}); err != nil { // no mask bit
		t.Fatal(err)
	}
	for {
		op, p := readRaw(t, br)
		if op == 0x8 {
			if code := int(p[0])<<8 | int(p[1]); code != 1002 || !strings.Contains(string(p[2:]), "masked") {
				t.Fatalf("close %d %q", code, p[2:])
			}
			break
		}
	}
}

// TestUnansweredPingCloses: a client that never answers pings is closed
// with 1001 once WriteTimeout has passed, and counted.
func TestUnansweredPingCloses(t *testing.T) {
	w := newWorld(t, Config{PingInterval: 20 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
	_, br := rawConn(t, w, "mod") // reads, never answers
	pings := 0
	for {
		op, p := readRaw(t, br)
		if op == 0x9 {
			pings++
		}
		if op == 0x8 {
			if code := int(p[0])<<8 | int(p[1]); code != 1001 || string(p[2:]) != "ping timeout" || pings == 0 {
				t.Fatalf("close %d %q after %d pings", code, p[2:], pings)
			}
			break
		}
	}
	if metric(t, w.reg, "spywatcher_ws_dropped_total", "ping_timeout") != 1 {
		t.Error("ping timeout not counted")
	}
}

func TestHandshakeErrors(t *testing.T) {
	w := newWorld(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/ws", nil)
	req.Header.Set("Authorization", "Bearer mod")
	resp, err := http.DefaultClient.Do(req) // a plain GET, no upgrade
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || body.Error.Code != "upgrade_required" || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("plain GET: %s %+v", resp.Status, body)
	}
}

// rawConn upgrades a connection by hand and reads past the hello message.
func rawConn(t *testing.T, w *world, token string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, br, err := rawDial(strings.TrimPrefix(w.srv.URL, "http://"), "/api/v1/ws", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second)) // a broken test fails instead of hanging
	if op, p := readRaw(t, br); op != 0x1 || !strings.Contains(string(p), "hello") {
		t.Fatalf("first frame %d %s", op, p)
	}
	return nc, br
}

func readRaw(t *testing.T, br *bufio.Reader) (byte, []byte) {
	t.Helper()
	var buf []byte
	op, p, err := readServerFrame(br, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return op, append([]byte(nil), p...)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5000 {
			t.Fatal("condition never became true")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rawDial opens a WebSocket connection by hand, with a Bearer token.
func rawDial(host, path, token string) (net.Conn, *bufio.Reader, error) {
	nc, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, nil, fmt.Errorf("upgrade answered %s", resp.Status)
	}
	return nc, br, nil
}

// readServerFrame reads one (unmasked) server frame into *buf.
func readServerFrame(br *bufio.Reader, buf *[]byte) (byte, []byte, error) {
	var h [10]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("masked server frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(br, h[:8]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	if uint64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	p := (*buf)[:n]
	_, err := io.ReadFull(br, p)
	return h[0] & 0x0f, p, err
}

// TestWriteIntervalMergesABusyStream: frames for a connection written less
// than MinWriteInterval ago wait, and go out together in one write.
func TestWriteIntervalMergesABusyStream(t *testing.T) {
	w := newWorld(t, Config{MinWriteInterval: 2 * time.Second})
	c := mustDial(t, w, "mod")
	c.subscribe(guildA, "") // hello and subscribed: a write each, each followed by the interval
	for _, id := range []string{"e1", "e2", "e3"} {
		w.hub.Deliver(guildA, []item{{ID: id, Cat: catEvents, Msg: json.RawMessage(`{"type":"event","id":"` + id + `"}`)}})
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		if m := c.next(); m.ID != id {
			t.Fatalf("got %+v, want %s", m, id)
		}
	}
	// Counters are added after each sweep: wait for the third write's.
	waitFor(t, func() bool { return metric(t, w.reg, "spywatcher_ws_writes_total", "") >= 3 })
	if f, n := metric(t, w.reg, "spywatcher_ws_frames_total", ""), metric(t, w.reg, "spywatcher_ws_writes_total", ""); f != 5 || n != 3 {
		t.Fatalf("%v frames in %v writes, want 5 in 3 (the events' three in one)", f, n)
	}
}
