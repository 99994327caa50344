package ws

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/ws/wsproto"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// conn is one client. Its reader (the HTTP handler's goroutine) handles
// the client's messages; its writes are a sweeper's business (sweep.go).
type conn struct {
	h  *Hub
	nc net.Conn
	// fd is the socket's descriptor for the sweeper's non-blocking writes
	// (-1 when it has none, as with TLS: everything goes through drain);
	// wmu and fdClosed keep it from being closed during one.
	fd       int
	wmu      sync.Mutex
	fdClosed bool
	br       *bufio.Reader
	sw       *sweeper
	p        auth.Principal
	// cred re-authenticates at every ping (nil for ticket connections,
	// whose ticket was checked once and is gone).
	cred *http.Request

	// The outbox, under omu: frames waiting (shared, never modified),
	// whether the connection is on its sweeper's ready list, whether a
	// goroutine of its own is writing (slow), whether the close frame is
	// queued (closing: nothing is queued after it) and whether the socket
	// is closed (dead).
	omu     sync.Mutex
	out     [][]byte
	queued  bool
	slow    bool
	cooling bool // written less than MinWriteInterval ago (sweep.go)
	closing bool
	dead    bool

	kickOnce   sync.Once
	closeDone  atomic.Bool // our close frame is written
	peerClosed atomic.Bool // the client's close frame arrived

	mu   sync.Mutex
	subs map[string]category

	// writing is when the blocking write in progress started (Unix ns), 0
	// if none; pingSent when the unanswered ping was queued, 0 if none.
	writing  atomic.Int64
	pingSent atomic.Int64
	// lastPing (the watchdog's) is when it was last pinged (Unix ns).
	lastPing int64
}

// closeWait is how long a closing connection waits for the client's close
// frame before the socket is closed anyway.
const closeWait = 5 * time.Second

var pingFrame = wsproto.AppendFrame(nil, wsproto.OpPing, nil)

// enqueue queues a frame (shared: never modified) without blocking.
func (c *conn) enqueue(f []byte) {
	if c.push(f) {
		c.sw.mark(c)
	}
}

// push adds f to the outbox and says whether c must be marked ready. A
// full outbox closes the connection as a slow consumer.
func (c *conn) push(f []byte) bool {
	c.omu.Lock()
	if c.closing || c.dead {
		c.omu.Unlock()
		return false
	}
	if len(c.out) >= c.h.cfg.QueueSize {
		c.omu.Unlock()
		c.h.m.dropped.WithLabelValues("slow_consumer").Inc()
		c.kick(CloseSlowConsumer, "slow consumer: send queue full, reconnect and resume")
		return false
	}
	c.out = append(c.out, f)
	mark := !c.queued && !c.slow && !c.cooling
	c.queued = c.queued || mark
	c.omu.Unlock()
	return mark
}

// kick closes the connection with code and reason: the close frame goes
// before anything queued, then the socket closes when the client answers
// (or after closeWait).
func (c *conn) kick(code int, reason string) {
	c.kickOnce.Do(func() {
		f := wsproto.CloseFrame(code, reason)
		c.omu.Lock()
		if c.dead {
			c.omu.Unlock()
			return
		}
		clear(c.out)
		c.out = append(c.out[:0], f)
		c.closing = true
		mark := !c.queued && !c.slow && !c.cooling
		c.queued = c.queued || mark
		c.omu.Unlock()
		if mark {
			c.sw.mark(c)
		}
		time.AfterFunc(closeWait+c.h.cfg.WriteTimeout, func() { c.die("") })
	})
}

// closeSent: our close frame is written; the socket closes now if the
// client's close frame came, else when it comes (the reader) or after
// closeWait.
func (c *conn) closeSent() {
	c.closeDone.Store(true)
	if c.peerClosed.Load() {
		c.die("")
		return
	}
	time.AfterFunc(closeWait, func() { c.die("") })
}

// die closes the socket, counting reason (if any) the first time.
func (c *conn) die(reason string) {
	c.omu.Lock()
	was := c.dead
	c.dead = true
	clear(c.out)
	c.out = nil
	c.omu.Unlock()
	if was {
		return
	}
	if reason != "" {
		c.h.m.dropped.WithLabelValues(reason).Inc()
	}
	c.wmu.Lock()
	c.fdClosed = true
	c.wmu.Unlock()
	_ = c.nc.Close()
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
	if h.stopped.Load() {
		writeErr(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down: reconnect")
		return
	}
	var he *wsproto.HandshakeError
	if err := wsproto.Check(r); errors.As(err, &he) {
		for k, v := range he.Header {
			w.Header()[k] = v
		}
		writeErr(w, he.Status, handshakeCodes[he.Status], he.Message)
		return
	}
	// The server's read and write deadlines stay on a hijacked connection:
	// clear them, the hub has its own timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	nc, br, err := wsproto.Accept(w, r)
	if err != nil {
		h.log.WarnContext(r.Context(), "ws: upgrade", "err", err)
		return
	}
	c := &conn{h: h, nc: nc, fd: -1, br: br, p: p, cred: cred, subs: map[string]category{}, lastPing: time.Now().UnixNano()}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	}
	h.mu.Lock()
	c.sw = h.sweepers[h.next%len(h.sweepers)]
	h.next++
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.m.accepted.Inc()
	defer h.drop(c)

	c.enqueue(control(Message{Type: "hello", Subject: p.Subject}))
	c.read()
}

var handshakeCodes = map[int]string{
	http.StatusBadRequest:              "bad_request",
	http.StatusMethodNotAllowed:        "method_not_allowed",
	http.StatusUpgradeRequired:         "upgrade_required",
	http.StatusHTTPVersionNotSupported: "http_version_not_supported",
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

// ping pings the peer (the watchdog closes it when the pong does not come
// within WriteTimeout) and checks its credential is still valid (a revoked
// session or API key, or an expired access token, ends the stream) and its
// subscriptions still allowed.
func (c *conn) ping() {
	c.pingSent.CompareAndSwap(0, time.Now().UnixNano())
	c.enqueue(pingFrame)
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

// read handles client frames until the connection ends.
func (c *conn) read() {
	defer c.die("") // what the close handshake left open
	rd := wsproto.NewReader(c.br, 4<<10)
	for {
		op, data, err := rd.Next()
		if err != nil {
			var pe *wsproto.ProtocolError
			if errors.As(err, &pe) {
				c.kick(pe.Code, pe.Reason)
				c.waitClosed()
			}
			return
		}
		switch op {
		case wsproto.OpPing:
			c.enqueue(wsproto.AppendFrame(nil, wsproto.OpPong, data))
		case wsproto.OpPong:
			c.pingSent.Store(0)
		case wsproto.OpClose:
			c.peerClosed.Store(true)
			if c.closeDone.Load() {
				return
			}
			code, _ := wsproto.CloseCode(data)
			if code == wsproto.CloseNoStatus {
				code = wsproto.CloseNormal
			}
			c.kick(code, "") // the echo; it closes the socket once written
			c.waitClosed()
			return
		case wsproto.OpBinary:
			c.enqueue(control(Message{Type: "error", Code: "bad_request", Text: "send JSON text messages"}))
		case wsproto.OpText:
			var m ClientMessage
			if err := json.Unmarshal(data, &m); err != nil {
				c.enqueue(control(Message{Type: "error", Code: "bad_request", Text: "message is not JSON: " + err.Error()}))
				continue
			}
			c.handle(m)
		}
	}
}

// waitClosed waits, reading and discarding, until the socket is closed
// (our close frame written and answered, or closeWait over).
func (c *conn) waitClosed() {
	var b [512]byte
	for {
		if _, err := c.br.Read(b[:]); err != nil {
			return
		}
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
