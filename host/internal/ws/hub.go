package ws

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/ws/wsproto"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Authenticator identifies the caller of a request; *auth.Authenticator
// implements it (the REST API uses the same one).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// Authorizer decides; *authz.Enforcer implements it.
type Authorizer interface {
	Enforce(sub, dom, obj, act string) (bool, error)
}

// Fanout carries encoded batches between host instances; *bus.RedisSignals
// implements it. Subscribe must return once the subscription is live.
type Fanout interface {
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(channel string, fn func([]byte)) (cancel func())
}

// FanoutChannel is the Redis pub/sub channel the hubs share.
const FanoutChannel = "spywatcher:ws:events"

// Close codes the hub uses besides the standard ones.
const (
	// CloseSlowConsumer: the connection's send queue overflowed.
	CloseSlowConsumer = 4008
	// CloseUnauthorized: the credential stopped being valid.
	CloseUnauthorized = 4001
)

// Config configures a Hub.
type Config struct {
	Auth  Authenticator
	Authz Authorizer
	// Tickets holds WebSocket tickets; nil keeps them in memory (enough for
	// one instance; use RedisTickets behind a load balancer).
	Tickets TicketStore
	// Fanout, when set, carries every batch through it (Redis) and the hub
	// delivers what comes back; nil delivers locally.
	Fanout Fanout
	// Origins may open cookie-authenticated connections besides the
	// request's own origin (the API's CORS origins).
	Origins []string
	// QueueSize bounds each connection's queue of pending frames
	// (default 256); overflowing it closes the connection.
	QueueSize int
	// ReplaySize is how many recent messages each guild keeps for resuming
	// clients (default 4096).
	ReplaySize int
	// PingInterval is how often each connection is pinged and its
	// subscriptions re-authorized (default 30 s).
	PingInterval time.Duration
	// WriteTimeout bounds one frame's write (default 10 s).
	WriteTimeout time.Duration
	// TicketTTL is how long a ticket may wait to be used (default 30 s).
	TicketTTL time.Duration
	// MaxSubscriptions per connection (default 100).
	MaxSubscriptions int
	// MinWriteInterval is the shortest time between two writes to one
	// connection (default 50 ms; negative: none): frames that come sooner
	// wait and go out together. A quiet stream's frames go out at once;
	// a busy one is written at most 1/MinWriteInterval times a second per
	// connection, which bounds the hub's work per connection.
	MinWriteInterval time.Duration
	Registerer       prometheus.Registerer
	Logger           *slog.Logger
}

// feeds are the hub's subscriptions, made in New so that nothing published
// after New returns is missed.
type feeds struct {
	events  *bus.Subscription[[]event.Event]
	scores  *bus.Subscription[[]bus.ScoreUpdate]
	plugins *bus.Subscription[bus.PluginEvent]
	fanout  func()
}

// Hub holds the connections and the per-guild topics.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	tickets TicketStore
	m       *metrics
	in      feeds

	// sweepers write the connections' frames (sweep.go), each a share;
	// they stop with Run, and so does the accepting of connections.
	sweepers []*sweeper
	stopped  atomic.Bool

	mu     sync.RWMutex
	topics map[string]*topic
	conns  map[*conn]struct{}
	next   int // the sweeper of the next connection
}

// topic is one guild: its subscribers with what each may see, and the
// replay buffer. One mutex orders delivery, replay and subscription, so a
// subscriber never misses or doubles a message between replay and live:
// items enter the replay buffer as they are queued to the subscribers.
type topic struct {
	guildJSON []byte
	mu        sync.Mutex
	subs      map[*conn]category
	ring      []item
	head      int // next slot to write
	full      bool
	marks     [][]*conn // per sweeper, connections a delivery made ready
}

// New returns a hub fed by b (stored events, score updates, plugin
// events); it subscribes at once, and Run must then be called.
func New(cfg Config, b *bus.Local) (*Hub, error) {
	if cfg.Auth == nil || cfg.Authz == nil {
		return nil, errors.New("ws: Config.Auth and Config.Authz are required")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.ReplaySize <= 0 {
		cfg.ReplaySize = 4096
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.TicketTTL <= 0 {
		cfg.TicketTTL = 30 * time.Second
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinWriteInterval == 0 {
		cfg.MinWriteInterval = 50 * time.Millisecond
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, tickets: cfg.Tickets, topics: map[string]*topic{}, conns: map[*conn]struct{}{}}
	if h.tickets == nil {
		h.tickets = NewMemoryTickets()
	}
	m, err := newMetrics(cfg.Registerer, h)
	if err != nil {
		return nil, err
	}
	h.m = m
	for i := range runtime.GOMAXPROCS(0) {
		h.sweepers = append(h.sweepers, newSweeper(i, m, cfg.MinWriteInterval))
	}
	h.in = feeds{events: b.Events.Subscribe(4096), scores: b.Scores.Subscribe(1024), plugins: b.PluginEvents.Subscribe(4096)}
	if cfg.Fanout != nil {
		h.in.fanout = cfg.Fanout.Subscribe(FanoutChannel, h.receive)
	}
	return h, nil
}

// Run feeds the hub from the bus until ctx ends, then closes every
// connection. With a Fanout, what the bus carries goes out through it, and
// what comes back from it is delivered.
func (h *Hub) Run(ctx context.Context) {
	events, scores, plugins := h.in.events, h.in.scores, h.in.plugins
	defer events.Cancel()
	defer scores.Cancel()
	defer plugins.Cancel()
	if h.in.fanout != nil {
		defer h.in.fanout()
	}
	stop := make(chan struct{})
	for _, s := range h.sweepers {
		go s.run(stop)
	}
	defer close(stop) // after closeAll: the sweepers write the close frames, then end
	defer h.closeAll()
	defer h.stopped.Store(true) // no connection is accepted after this
	go h.watchdog(ctx)
	lost := func() {
		h.m.busDropped.Set(float64(events.Dropped() + scores.Dropped() + plugins.Dropped()))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case evs, ok := <-events.C:
			if !ok {
				return
			}
			h.publish(ctx, groupEvents(evs, h.log))
		case ss, ok := <-scores.C:
			if !ok {
				return
			}
			h.publish(ctx, groupScores(ss, h.log))
		case p, ok := <-plugins.C:
			if !ok {
				return
			}
			it, err := pluginItem(p)
			if err != nil {
				h.log.Warn("ws: plugin event not encodable", "plugin", p.PluginID, "err", err)
				continue
			}
			h.publish(ctx, []batch{{Guild: p.GuildID, Items: []item{it}}})
		}
		lost()
	}
}

func groupEvents(evs []event.Event, log *slog.Logger) []batch {
	var out []batch
	idx := map[string]int{}
	for _, ev := range evs {
		it, err := eventItem(ev)
		if err != nil {
			log.Warn("ws: event not encodable", "id", ev.ID, "err", err)
			continue
		}
		i, ok := idx[ev.GuildID]
		if !ok {
			i = len(out)
			idx[ev.GuildID] = i
			out = append(out, batch{Guild: ev.GuildID})
		}
		out[i].Items = append(out[i].Items, it)
	}
	return out
}

func groupScores(ss []bus.ScoreUpdate, log *slog.Logger) []batch {
	var out []batch
	idx := map[string]int{}
	for _, s := range ss {
		it, err := scoreItem(s)
		if err != nil {
			log.Warn("ws: score not encodable", "id", s.ID, "err", err)
			continue
		}
		i, ok := idx[s.GuildID]
		if !ok {
			i = len(out)
			idx[s.GuildID] = i
			out = append(out, batch{Guild: s.GuildID})
		}
		out[i].Items = append(out[i].Items, it)
	}
	return out
}

// publish sends batches to every instance (through the fan-out) or
// delivers them here.
func (h *Hub) publish(ctx context.Context, bs []batch) {
	for _, b := range bs {
		if h.cfg.Fanout == nil {
			h.Deliver(b.Guild, b.Items)
			continue
		}
		payload, err := json.Marshal(b)
		if err != nil {
			h.log.Error("ws: encode batch", "err", err)
			continue
		}
		if err := h.cfg.Fanout.Publish(ctx, FanoutChannel, payload); err != nil {
			// Without the fan-out nobody (not even this instance) would
			// see the batch: deliver it here at least.
			h.m.fanoutErrors.Inc()
			h.log.Warn("ws: fan-out publish failed; delivering locally only", "err", err)
			h.Deliver(b.Guild, b.Items)
		}
	}
}

// receive delivers a batch that came through the fan-out.
func (h *Hub) receive(payload []byte) {
	var b batch
	if err := json.Unmarshal(payload, &b); err != nil {
		h.log.Warn("ws: undecodable fan-out message", "err", err)
		return
	}
	h.Deliver(b.Guild, b.Items)
}

func (h *Hub) topic(guild string, create bool) *topic {
	h.mu.RLock()
	t := h.topics[guild]
	h.mu.RUnlock()
	if t != nil || !create {
		return t
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t = h.topics[guild]; t == nil {
		g, _ := json.Marshal(guild)
		t = &topic{guildJSON: g, subs: map[*conn]category{}, ring: make([]item, h.cfg.ReplaySize), marks: make([][]*conn, len(h.sweepers))}
		h.topics[guild] = t
	}
	return t
}

// Deliver queues items for the guild's subscribers (one frame per
// audience, built once and shared by all its connections) and adds them to
// the replay buffer. It never blocks on a connection.
func (h *Hub) Deliver(guild string, items []item) {
	if len(items) == 0 {
		return
	}
	h.m.delivered.Add(float64(len(items)))
	t := h.topic(guild, true)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, it := range items {
		t.ring[t.head] = it
		t.head++
		if t.head == len(t.ring) {
			t.head, t.full = 0, true
		}
	}
	var frames [8][]byte
	var built [8]bool
	for c, mask := range t.subs {
		if !built[mask] {
			frames[mask], built[mask] = frame(t.guildJSON, items, mask), true
		}
		if f := frames[mask]; f != nil && c.push(f) {
			t.marks[c.sw.id] = append(t.marks[c.sw.id], c)
		}
	}
	for i, m := range t.marks { // one lock per sweeper, not per connection
		if len(m) > 0 {
			h.sweepers[i].mark(m...)
			clear(m)
			t.marks[i] = m[:0]
		}
	}
}

// frame encodes the items mask may see as a JSON array in a WebSocket
// text frame (nil when there are none); runs of compact items become
// presence batches. guild is JSON.
func frame(guild []byte, items []item, mask category) []byte {
	n := 1
	for _, it := range items {
		if it.Cat&mask != 0 {
			n += len(it.Msg) + 24
		}
	}
	if n == 1 {
		return nil
	}
	out := make([]byte, wsproto.MaxHeader+1, wsproto.MaxHeader+n+len(guild)+32)
	out[wsproto.MaxHeader] = '['
	var at0 int64
	batch := false // inside a presence batch
	for _, it := range items {
		if it.Cat&mask == 0 {
			continue
		}
		switch {
		case it.Compact && !batch:
			if len(out) > wsproto.MaxHeader+1 {
				out = append(out, ',')
			}
			at0, batch = it.At, true
			out = append(out, `["`+PresenceTag+`",`...)
			out = append(out, guild...)
			out = append(out, ',')
			out = strconv.AppendInt(out, at0, 10)
		case !it.Compact && batch:
			out = append(out, ']')
			batch = false
		}
		if it.Compact {
			out = append(out, ',', '[')
			out = strconv.AppendInt(out, it.At-at0, 10)
			out = append(out, ',')
			out = append(out, it.Msg[1:]...) // past its '[', up to its ']'
		} else {
			if len(out) > wsproto.MaxHeader+1 {
				out = append(out, ',')
			}
			out = append(out, it.Msg...)
		}
	}
	if batch {
		out = append(out, ']')
	}
	return wsproto.Frame(append(out, ']'), wsproto.OpText)
}

// subscribe adds c to the guild's topic and, when since is set, queues what
// followed that event id, or a resync message when it is not buffered.
func (h *Hub) subscribe(c *conn, guild string, mask category, since string) {
	t := h.topic(guild, true)
	t.mu.Lock()
	defer t.mu.Unlock()
	_, again := t.subs[c]
	t.subs[c] = mask
	scope := "presence"
	if mask&catEvents != 0 {
		scope = "full"
	}
	if since == "" || again {
		c.enqueue(control(Message{Type: "subscribed", GuildID: guild, Scope: scope, Replayed: new(0)}))
		return
	}
	after, found := t.after(since)
	if !found {
		h.m.resyncs.Inc() // before the client can see it
		c.enqueue(control(Message{Type: "subscribed", GuildID: guild, Scope: scope, Replayed: new(0)}))
		c.enqueue(control(Message{Type: "resync", GuildID: guild, Code: "replay_gap",
			Text: "event " + truncate(since, 80) + " is no longer in the replay buffer; refetch through the REST API"}))
		return
	}
	var send []item
	for _, it := range after {
		if it.Cat&mask != 0 {
			send = append(send, it)
		}
	}
	h.m.replayed.Add(float64(len(send)))
	c.enqueue(control(Message{Type: "subscribed", GuildID: guild, Scope: scope, Replayed: new(len(send))}))
	if f := frame(t.guildJSON, send, mask); f != nil {
		c.enqueue(f)
	}
}

// after returns the buffered items that followed the one with id, oldest
// first.
func (t *topic) after(id string) ([]item, bool) {
	n := t.head
	if t.full {
		n = len(t.ring)
	}
	for k := 1; k <= n; k++ { // newest first: a resuming client is usually close behind
		i := (t.head - k + len(t.ring)) % len(t.ring)
		if t.ring[i].ID != id {
			continue
		}
		out := make([]item, 0, k-1)
		for j := k - 1; j >= 1; j-- {
			out = append(out, t.ring[(t.head-j+len(t.ring))%len(t.ring)])
		}
		return out, true
	}
	return nil, false
}

func (h *Hub) unsubscribe(c *conn, guild string) {
	if t := h.topic(guild, false); t != nil {
		t.mu.Lock()
		delete(t.subs, c)
		t.mu.Unlock()
	}
}

func (h *Hub) setMask(c *conn, guild string, mask category) {
	if t := h.topic(guild, false); t != nil {
		t.mu.Lock()
		if _, ok := t.subs[c]; ok {
			t.subs[c] = mask
		}
		t.mu.Unlock()
	}
}

// watchdog, until ctx ends, pings every connection each PingInterval and
// closes those whose current write has taken longer than WriteTimeout or
// whose ping went unanswered that long.
func (h *Hub) watchdog(ctx context.Context) {
	tick := time.NewTicker(min(time.Second, h.cfg.WriteTimeout/4, h.cfg.PingInterval/2))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			limit := now.Add(-h.cfg.WriteTimeout).UnixNano()
			due := now.Add(-h.cfg.PingInterval).UnixNano()
			var stuck, silent []*conn
			h.mu.RLock()
			for c := range h.conns {
				if w := c.writing.Load(); w != 0 && w < limit {
					stuck = append(stuck, c)
				}
				if p := c.pingSent.Load(); p != 0 && p < limit && c.pingSent.CompareAndSwap(p, 0) {
					silent = append(silent, c)
				}
				if c.lastPing <= due {
					c.lastPing = now.UnixNano()
					go c.ping()
				}
			}
			h.mu.RUnlock()
			for _, c := range stuck {
				c.die("write_timeout")
			}
			for _, c := range silent {
				h.m.dropped.WithLabelValues("ping_timeout").Inc()
				c.kick(wsproto.CloseGoingAway, "ping timeout")
			}
		}
	}
}

// closeAll closes every connection (the server is stopping; hijacked
// connections outlive http.Server.Shutdown).
func (h *Hub) closeAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.conns {
		c.kick(wsproto.CloseGoingAway, "server shutting down")
	}
}

// Connections returns how many connections are open.
func (h *Hub) Connections() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

func (h *Hub) queued() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for c := range h.conns {
		c.omu.Lock()
		n += len(c.out)
		c.omu.Unlock()
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
