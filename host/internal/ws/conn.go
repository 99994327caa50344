package ws

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// maxFrame bounds how much the writer coalesces into one frame.
const maxFrame = 256 << 10

// conn is one client. The reader goroutine handles subscriptions, the writer
// goroutine owns the socket's writes and its closing.
type conn struct {
	h  *Hub
	ws *websocket.Conn
	p  auth.Principal
	q  chan []byte
	// cred re-authenticates at every ping (nil for ticket connections,
	// whose ticket was checked once and is gone).
	cred *http.Request

	kickOnce sync.Once
	kicked   chan struct{}
	isKicked atomic.Bool
	code     websocket.StatusCode
	reason   string

	mu   sync.Mutex
	subs map[string]category

	// writing is when the write in progress started (Unix ns), 0 if none.
	writing atomic.Int64
	// ctx lives as long as the connection; lastPing (the watchdog's) is
	// when it was last pinged (Unix ns).
	ctx      context.Context
	lastPing int64
}

// enqueue queues a frame (a JSON array, shared: never modified) without
// blocking; a full queue closes the
// connection as a slow consumer.
func (c *conn) enqueue(p []byte) {
	select {
	case c.q <- p:
	default:
		c.h.m.dropped.WithLabelValues("slow_consumer").Inc()
		c.kick(CloseSlowConsumer, "slow consumer: send queue full, reconnect and resume")
	}
}

// kick asks the writer to close the connection with code and reason.
func (c *conn) kick(code websocket.StatusCode, reason string) {
	c.kickOnce.Do(func() {
		c.code, c.reason = code, reason
		c.isKicked.Store(true)
		close(c.kicked)
		select { // wake the writer if it waits; if the queue is full it does not
		case c.q <- nil:
		default:
		}
	})
}

// ServeHTTP authenticates and upgrades the request, then serves the
// connection until it closes.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p auth.Principal
	var err error
	var cred *http.Request
	if t := r.URL.Query().Get("ticket"); t != "" {
		p, err = h.takeTicket(r.Context(), t)
	} else {
		p, err = h.cfg.Auth.Authenticate(r)
		// Only the credential headers are kept, to check them again later.
		cred, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, "/api/v1/ws", nil)
		for _, k := range []string{"Authorization", "Cookie"} {
			if v := r.Header.Values(k); len(v) > 0 {
				cred.Header[k] = v
			}
		}
	}
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) || errors.Is(err, ErrTicket) {
			writeErr(w, http.StatusUnauthorized, "unauthorized", "log in (session cookie), send Authorization: Bearer <token>, or pass ?ticket= from POST /api/v1/ws/ticket")
			return
		}
		h.log.ErrorContext(r.Context(), "ws: authenticate", "err", err)
		writeErr(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	if p.Cookie && !h.originAllowed(r) {
		writeErr(w, http.StatusForbidden, "forbidden", "origin "+truncate(r.Header.Get("Origin"), 100)+" may not open the live stream with this session (see --cors-origins)")
		return
	}
	// The server's read and write deadlines stay on a hijacked connection:
	// clear them, the hub has its own timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // the origin was checked above, where it matters (cookies)
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept has answered
	}
	ws.SetReadLimit(4 << 10)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	c := &conn{h: h, ws: ws, p: p, cred: cred, q: make(chan []byte, h.cfg.QueueSize), kicked: make(chan struct{}), subs: map[string]category{},
		ctx: ctx, lastPing: time.Now().UnixNano()}
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.m.accepted.Inc()
	defer h.drop(c)

	c.enqueue(control(Message{Type: "hello", Subject: p.Subject}))
	go c.read(c.ctx)
	c.write()
}

// drop forgets c everywhere.
func (h *Hub) drop(c *conn) {
	c.mu.Lock()
	guilds := make([]string, 0, len(c.subs))
	for g := range c.subs {
		guilds = append(guilds, g)
	}
	c.subs = map[string]category{}
	c.mu.Unlock()
	for _, g := range guilds {
		h.unsubscribe(c, g)
	}
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// originAllowed: no Origin (not a browser), the request's own origin, or a
// configured one.
func (h *Hub) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if slices.Contains(h.cfg.Origins, o) {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// write sends queued frames, merging those that piled up, and closes the
// socket when kicked. It waits on the queue alone (kick wakes it with a nil
// frame); pings and stuck writes are the hub's watchdog's business.
func (c *conn) write() {
	var buf []byte // for merging, allocated the first time it is needed
	for {
		if c.isKicked.Load() { // being kicked goes before anything queued
			_ = c.ws.Close(c.code, c.reason)
			return
		}
		f := <-c.q
		if f == nil {
			continue
		}
		// Queued frames are shared: one is written as it is; several that
		// piled up are merged into one frame (one write).
		out := f
		if len(c.q) > 0 {
			buf = append(buf[:0], f[:len(f)-1]...)
		drain:
			for len(buf) < maxFrame {
				select {
				case g := <-c.q:
					if g != nil {
						buf = append(buf, ',')
						buf = append(buf, g[1:len(g)-1]...)
					}
				default:
					break drain
				}
			}
			buf = append(buf, ']')
			out = buf
		}
		// No context deadline per write (a timer and an AfterFunc each
		// time): the hub's watchdog closes a write stuck too long.
		c.writing.Store(time.Now().UnixNano())
		err := c.ws.Write(context.Background(), websocket.MessageText, out)
		c.writing.Store(0)
		if err != nil {
			c.h.m.dropped.WithLabelValues("write_failed").Inc()
			_ = c.ws.CloseNow()
			return
		}
		c.h.m.frames.Inc()
		if cap(buf) > maxFrame*2 {
			buf = nil // do not keep a burst's buffer forever
		}
	}
}

// ping checks the peer is alive, its credential still valid (a revoked
// session or API key, or an expired access token, ends the stream) and its
// subscriptions still allowed.
func (c *conn) ping(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, c.h.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Ping(pctx); err != nil {
		c.h.m.dropped.WithLabelValues("ping_timeout").Inc()
		c.kick(websocket.StatusGoingAway, "ping timeout")
		return
	}
	if c.cred != nil {
		p, err := c.h.cfg.Auth.Authenticate(c.cred)
		if (err != nil && errors.Is(err, auth.ErrUnauthenticated)) || (err == nil && p.Subject != c.p.Subject) {
			c.h.m.dropped.WithLabelValues("unauthenticated").Inc()
			c.kick(CloseUnauthorized, "credential expired or revoked: refresh and reconnect")
			return
		}
	}
	c.mu.Lock()
	subs := make(map[string]category, len(c.subs))
	for g, m := range c.subs {
		subs[g] = m
	}
	c.mu.Unlock()
	for g, old := range subs {
		mask, err := c.h.allowed(c.p, g)
		if err != nil || mask == old {
			continue
		}
		if mask == 0 {
			c.mu.Lock()
			delete(c.subs, g)
			c.mu.Unlock()
			c.h.unsubscribe(c, g)
			c.enqueue(control(Message{Type: "unsubscribed", GuildID: g, Code: "forbidden", Text: "your access to this guild's stream was withdrawn"}))
			continue
		}
		c.mu.Lock()
		c.subs[g] = mask
		c.mu.Unlock()
		c.h.setMask(c, g, mask)
	}
}

// read handles client messages until the connection fails.
func (c *conn) read(ctx context.Context) {
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			c.kick(websocket.StatusNormalClosure, "")
			return
		}
		if typ != websocket.MessageText {
			c.enqueue(control(Message{Type: "error", Code: "bad_request", Text: "send JSON text messages"}))
			continue
		}
		var m ClientMessage
		if err := json.Unmarshal(data, &m); err != nil {
			c.enqueue(control(Message{Type: "error", Code: "bad_request", Text: "message is not JSON: " + err.Error()}))
			continue
		}
		c.handle(m)
	}
}

func (c *conn) handle(m ClientMessage) {
	if !event.IsSnowflake(m.Guild) {
		c.enqueue(control(Message{Type: "error", Code: "bad_request", Text: "guild_id must be a Discord ID"}))
		return
	}
	switch m.Type {
	case "subscribe":
		c.mu.Lock()
		_, had := c.subs[m.Guild]
		n := len(c.subs)
		c.mu.Unlock()
		if !had && n >= c.h.cfg.MaxSubscriptions {
			c.enqueue(control(Message{Type: "error", GuildID: m.Guild, Code: "too_many_subscriptions", Text: "unsubscribe from a guild first"}))
			return
		}
		mask, err := c.h.allowed(c.p, m.Guild)
		if err != nil {
			c.h.log.Error("ws: authorize", "err", err)
			c.enqueue(control(Message{Type: "error", GuildID: m.Guild, Code: "internal", Text: "internal error"}))
			return
		}
		if mask == 0 {
			c.enqueue(control(Message{Type: "error", GuildID: m.Guild, Code: "forbidden", Text: "you may not watch guild " + m.Guild}))
			return
		}
		c.mu.Lock()
		c.subs[m.Guild] = mask
		c.mu.Unlock()
		c.h.subscribe(c, m.Guild, mask, m.Since)
	case "unsubscribe":
		c.mu.Lock()
		delete(c.subs, m.Guild)
		c.mu.Unlock()
		c.h.unsubscribe(c, m.Guild)
		c.enqueue(control(Message{Type: "unsubscribed", GuildID: m.Guild}))
	default:
		c.enqueue(control(Message{Type: "error", Code: "bad_request", Text: "type must be subscribe or unsubscribe"}))
	}
}

// allowed is what p may see of guild's stream: events/read sees every
// event kind and plugin events, presence/read only presence updates,
// scores/read adds score updates.
func (h *Hub) allowed(p auth.Principal, guild string) (category, error) {
	var mask category
	for _, c := range []struct {
		obj string
		cat category
	}{{"presence", catPresence}, {"events", catEvents | catPresence}, {"scores", catScores}} {
		ok, err := h.cfg.Authz.Enforce(p.Subject, guild, c.obj, "read")
		if err != nil {
			return 0, err
		}
		if ok {
			mask |= c.cat
		}
	}
	return mask, nil
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
