// Package gatewaytest is a fake Discord for tests and benchmarks: the REST
// endpoints a bot calls before connecting (GET /gateway, GET /gateway/bot)
// and the gateway WebSocket, speaking enough of the protocol to drive the
// real discordgo client — HELLO, IDENTIFY, READY (with resume_gateway_url
// pointing back here), GUILD_CREATE, dispatches, heartbeats and their ACKs,
// RESUME with the missed dispatches replayed, Request Guild Members with
// GUILD_MEMBERS_CHUNK answers, zlib-compressed frames, and the faults a
// client must survive: dropped connections, op 7 reconnect, op 9 invalid
// session, missing heartbeat ACKs, and close codes such as 4004 and 4014.
//
// Guilds are assigned to shards as Discord does, (guild_id >> 22) % shards.
// Everything is in memory; a Server is safe for concurrent use.
package gatewaytest

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Token is the bot token accepted, without "Bot "; "" accepts any. A
	// wrong one gets HTTP 401 from GET /gateway/bot and close code 4004
	// from the gateway.
	Token string
	// Shards is the recommended shard count GET /gateway/bot returns;
	// default 1.
	Shards int
	// MaxConcurrency is the identify concurrency GET /gateway/bot returns;
	// default 1.
	MaxConcurrency int
	// HeartbeatInterval is sent in HELLO; default 1s.
	HeartbeatInterval time.Duration
	// CompressMin: frames at least this long are sent zlib-compressed (as
	// binary messages) to clients that identified with compress: true, as
	// Discord does with large payloads; 0 means 2048, negative never.
	CompressMin int
	// ChunkSize is how many members one GUILD_MEMBERS_CHUNK holds; default
	// 1000, as Discord's.
	ChunkSize int
	// KeepDispatches bounds how many dispatches a session keeps for
	// replaying on RESUME; older ones are forgotten, and a RESUME that needs
	// them is refused with op 9, as Discord does. 0 keeps all.
	KeepDispatches int
}

// Identify is one IDENTIFY the server received.
type Identify struct {
	Shard    [2]int
	Intents  int
	Compress bool
	At       time.Time
}

// MemberRequest is one Request Guild Members (op 8) the server received.
type MemberRequest struct {
	GuildID   string
	Nonce     string
	Presences bool
	At        time.Time
}

// Stats is what the server observed.
type Stats struct {
	Identifies       []Identify
	Resumes          int // RESUMEs accepted
	ResumesRefused   int // RESUMEs answered with op 9
	Heartbeats       int
	Refused          int // connections refused by SetRefuseConnections
	Frames           int // frames sent, HELLO and ACKs included
	CompressedFrames int
	MemberRequests   []MemberRequest
	// MaxShardConnections is the most connections that were ever attached
	// to sessions of one shard at the same time: 1 when no two clients
	// ingested a shard at once.
	MaxShardConnections int
}

// Server is a fake Discord.
type Server struct {
	opts Options
	http *httptest.Server
	bot  string // the bot's user ID

	mu        sync.Mutex
	guilds    []string                   // in order of AddGuild
	creates   map[string]json.RawMessage // guild → GUILD_CREATE d
	members   map[string][]json.RawMessage
	presences map[string]map[string]json.RawMessage // guild → user → presence
	sessions  map[string]*session
	current   map[int]*session // shard ID → latest identified session
	conns     map[*conn]bool
	stats     Stats
	acksOff   bool
	refuse    bool
	closeOnID int
	overlap   int64
}

type session struct {
	id           string
	shard, count int
	compress     bool

	mu      sync.Mutex // orders sequence numbers and writes
	seq     int64
	base    int64    // sequence number of log[0] minus 1
	log     [][]byte // frames kept for RESUME
	conn    *conn
	invalid bool // a RESUME is refused
}

type conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
	z   *zlib.Writer
	zb  bytes.Buffer

	sess *session // guarded by Server.mu
}

// New starts a fake Discord on a loopback port; Close stops it.
func New(opts Options) *Server {
	if opts.Shards <= 0 {
		opts.Shards = 1
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = 1
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.CompressMin == 0 {
		opts.CompressMin = 2048
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 1000
	}
	s := &Server{
		opts: opts, bot: BotID(opts.Token),
		creates: map[string]json.RawMessage{}, members: map[string][]json.RawMessage{},
		presences: map[string]map[string]json.RawMessage{},
		sessions:  map[string]*session{}, current: map[int]*session{}, conns: map[*conn]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v9/gateway", s.getGateway)
	mux.HandleFunc("GET /api/v9/gateway/bot", s.getGatewayBot)
	mux.HandleFunc("/gw/", s.serveWS)
	mux.HandleFunc("/gw", s.serveWS)
	s.http = httptest.NewServer(mux)
	return s
}

// APIURL is the REST base to configure the client with.
func (s *Server) APIURL() string { return s.http.URL + "/api/v9" }

// GatewayURL is the WebSocket URL the REST endpoints hand out.
func (s *Server) GatewayURL() string { return "ws" + strings.TrimPrefix(s.http.URL, "http") + "/gw" }

// Close drops every connection and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	for c := range s.conns {
		c.ws.Close()
	}
	s.mu.Unlock()
	s.http.Close()
}

// BotID is the bot user ID a token encodes (its first part is the ID in
// base64), or a fixed ID for tokens that do not.
func BotID(token string) string {
	first, _, _ := strings.Cut(token, ".")
	if b, err := base64.RawStdEncoding.DecodeString(first); err == nil && len(b) > 0 {
		if _, err := strconv.ParseUint(string(b), 10, 64); err == nil {
			return string(b)
		}
	}
	return "1000000000000000001"
}

// Token returns a bot token in Discord's shape for user ID id.
func Token(id string) string {
	return base64.RawStdEncoding.EncodeToString([]byte(id)) + ".GfakeT.fake-signature-for-tests-only"
}

// ShardOf is the shard Discord routes a guild's events to.
func ShardOf(guildID string, shards int) int {
	id, _ := strconv.ParseUint(guildID, 10, 64)
	return int((id >> 22) % uint64(shards))
}

// AddGuild adds a guild the bot is in; d is its GUILD_CREATE payload, with
// at least "id". Sessions identified later receive it after READY.
func (s *Server) AddGuild(d any) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	var g struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &g); err != nil || g.ID == "" {
		return errors.New("gatewaytest: a guild needs an id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.creates[g.ID]; !ok {
		s.guilds = append(s.guilds, g.ID)
	}
	s.creates[g.ID] = b
	return nil
}

// SetMembers sets the members (guild member objects) Request Guild Members
// answers with for a guild, and the presences sent with them on request
// (keyed by user ID).
func (s *Server) SetMembers(guildID string, members []any, presences map[string]any) error {
	ms := make([]json.RawMessage, len(members))
	for i, m := range members {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		ms[i] = b
	}
	ps := map[string]json.RawMessage{}
	for u, p := range presences {
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		ps[u] = b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[guildID], s.presences[guildID] = ms, ps
	return nil
}

// Dispatch sends a dispatch of guildID to the shard that owns the guild. It
// is numbered in the shard's current session and kept for RESUME; while the
// session is disconnected it waits there for the client to resume, as
// Discord does. It fails when no session of that shard was identified.
func (s *Server) Dispatch(guildID, typ string, d any) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var sess *session
	for _, cs := range s.current {
		if cs.shard == ShardOf(guildID, cs.count) {
			sess = cs
			break
		}
	}
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("gatewaytest: no session for the shard of guild %s", guildID)
	}
	s.send(sess, typ, b)
	return nil
}

// DispatchRaw sends a dispatch whose payload is already JSON to a shard's
// current session; benchmarks use it to keep encoding out of the way.
func (s *Server) DispatchRaw(shard int, typ string, d []byte) error {
	s.mu.Lock()
	sess := s.current[shard]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("gatewaytest: no session for shard %d", shard)
	}
	s.send(sess, typ, d)
	return nil
}

// DropConnection closes the TCP connection of a shard's current session
// without a close frame, as a network failure would; the session stays
// resumable. It reports whether there was a connection.
func (s *Server) DropConnection(shard int) bool {
	sess := s.session(shard)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.conn == nil {
		return false
	}
	sess.conn.ws.UnderlyingConn().Close()
	s.detach(sess.conn)
	return true
}

// SendReconnect sends op 7 (reconnect) on a shard's current connection.
func (s *Server) SendReconnect(shard int) bool {
	return s.sendOp(shard, []byte(`{"op":7,"d":null}`), false)
}

// InvalidateSession sends op 9 (invalid session) on a shard's current
// connection. Unless resumable, the session can no longer be resumed.
func (s *Server) InvalidateSession(shard int, resumable bool) bool {
	return s.sendOp(shard, []byte(`{"op":9,"d":`+strconv.FormatBool(resumable)+`}`), !resumable)
}

// ExpireSession makes a shard's current session unresumable without telling
// the client, as when Discord forgets a session that was gone too long.
func (s *Server) ExpireSession(shard int) {
	if sess := s.session(shard); sess != nil {
		sess.mu.Lock()
		sess.invalid = true
		sess.mu.Unlock()
	}
}

// SetHeartbeatAcks turns heartbeat ACKs on (the default) or off.
func (s *Server) SetHeartbeatAcks(on bool) {
	s.mu.Lock()
	s.acksOff = !on
	s.mu.Unlock()
}

// SetRefuseConnections makes the gateway answer new WebSocket connections
// with HTTP 503 (an outage) until called with false.
func (s *Server) SetRefuseConnections(on bool) {
	s.mu.Lock()
	s.refuse = on
	s.mu.Unlock()
}

// SetCloseOnIdentify makes the gateway answer IDENTIFY by closing the
// connection with code (4004, 4014, ...); 0 turns it off.
func (s *Server) SetCloseOnIdentify(code int) {
	s.mu.Lock()
	s.closeOnID = code
	s.mu.Unlock()
}

// SetResumeOverlap makes RESUME replay n dispatches the client had already
// received besides the missed ones, as a sloppy server might, to show that
// the client drops them.
func (s *Server) SetResumeOverlap(n int) {
	s.mu.Lock()
	s.overlap = int64(n)
	s.mu.Unlock()
}

// Stats returns a copy of what the server observed.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Identifies = append([]Identify(nil), st.Identifies...)
	st.MemberRequests = append([]MemberRequest(nil), st.MemberRequests...)
	return st
}

// Connected reports whether a shard's current session has a connection.
func (s *Server) Connected(shard int) bool {
	sess := s.session(shard)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.conn != nil
}

// SessionID returns the ID of a shard's current session, or "".
func (s *Server) SessionID(shard int) string {
	if sess := s.session(shard); sess != nil {
		return sess.id
	}
	return ""
}

func (s *Server) session(shard int) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current[shard]
}

func (s *Server) sendOp(shard int, frame []byte, invalidate bool) bool {
	sess := s.session(shard)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if invalidate {
		sess.invalid = true
	}
	if sess.conn == nil {
		return false
	}
	s.write(sess.conn, sess, frame)
	return true
}

// --- REST ---

func (s *Server) authorized(r *http.Request) bool {
	return s.opts.Token == "" || r.Header.Get("Authorization") == "Bot "+s.opts.Token
}

func (s *Server) getGateway(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"url": s.GatewayURL()})
}

func (s *Server) getGatewayBot(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401: Unauthorized", "code": 0})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url": s.GatewayURL(), "shards": s.opts.Shards,
		"session_start_limit": map[string]any{"total": 1000, "remaining": 999, "reset_after": 86_400_000,
			"max_concurrency": s.opts.MaxConcurrency},
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client sees a short body
}

// --- gateway ---

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	refuse := s.refuse
	if refuse {
		s.stats.Refused++
	}
	s.mu.Unlock()
	if refuse {
		http.Error(w, "gateway unavailable", http.StatusServiceUnavailable)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws}
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		sess := c.sess
		s.mu.Unlock()
		if sess != nil {
			sess.mu.Lock()
			s.detach(c)
			sess.mu.Unlock()
		}
		ws.Close()
	}()
	s.write(c, nil, fmt.Appendf(nil, `{"op":10,"s":null,"t":null,"d":{"heartbeat_interval":%d}}`, s.opts.HeartbeatInterval.Milliseconds()))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var p struct {
			Op int             `json:"op"`
			D  json.RawMessage `json:"d"`
		}
		if json.Unmarshal(msg, &p) != nil {
			s.closeWith(c, 4002, "decode error")
			return
		}
		switch p.Op {
		case 1:
			s.mu.Lock()
			s.stats.Heartbeats++
			ack := !s.acksOff
			s.mu.Unlock()
			if ack {
				s.write(c, nil, []byte(`{"op":11,"s":null,"t":null,"d":null}`))
			}
		case 2:
			if !s.identify(c, p.D) {
				return
			}
		case 6:
			if !s.resume(c, p.D) {
				return
			}
		case 8:
			s.requestMembers(c, p.D)
		}
	}
}

func (s *Server) closeWith(c *conn, code int, text string) {
	c.wmu.Lock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second)) //nolint:errcheck // closing anyway
	c.wmu.Unlock()
	c.ws.Close()
}

func (s *Server) identify(c *conn, d json.RawMessage) bool {
	var id struct {
		Token    string  `json:"token"`
		Compress bool    `json:"compress"`
		Shard    *[2]int `json:"shard"`
		Intents  int     `json:"intents"`
	}
	if json.Unmarshal(d, &id) != nil {
		s.closeWith(c, 4002, "decode error")
		return false
	}
	s.mu.Lock()
	closeCode := s.closeOnID
	s.mu.Unlock()
	switch {
	case s.opts.Token != "" && strings.TrimPrefix(id.Token, "Bot ") != s.opts.Token:
		s.closeWith(c, 4004, "Authentication failed.")
		return false
	case closeCode == 4014:
		s.closeWith(c, 4014, "Disallowed intent(s).")
		return false
	case closeCode != 0:
		s.closeWith(c, closeCode, "Refused.")
		return false
	}
	shard := [2]int{0, 1}
	if id.Shard != nil {
		shard = *id.Shard
	}
	if shard[1] < 1 || shard[0] < 0 || shard[0] >= shard[1] {
		s.closeWith(c, 4010, "Invalid shard.")
		return false
	}
	sess := &session{id: randomID(), shard: shard[0], count: shard[1], compress: id.Compress}
	s.mu.Lock()
	old := c.sess
	s.sessions[sess.id] = sess
	s.current[shard[0]] = sess
	s.stats.Identifies = append(s.stats.Identifies, Identify{Shard: shard, Intents: id.Intents, Compress: id.Compress, At: time.Now()})
	var guilds []json.RawMessage
	var unavailable []map[string]any
	for _, g := range s.guilds {
		if ShardOf(g, shard[1]) == shard[0] {
			guilds = append(guilds, s.creates[g])
			unavailable = append(unavailable, map[string]any{"id": g, "unavailable": true})
		}
	}
	s.mu.Unlock()
	if old != nil {
		// op 9 then a new IDENTIFY on the same connection.
		old.mu.Lock()
		s.detach(c)
		old.mu.Unlock()
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	s.attach(c, sess)
	ready, _ := json.Marshal(map[string]any{
		"v": 9, "session_id": sess.id, "resume_gateway_url": s.GatewayURL(),
		"user":        map[string]any{"id": s.bot, "username": "spywatcher-test", "discriminator": "0", "bot": true},
		"guilds":      unavailable,
		"shard":       shard,
		"application": map[string]any{"id": s.bot, "flags": 0},
	})
	s.dispatchLocked(sess, "READY", ready)
	for _, g := range guilds {
		s.dispatchLocked(sess, "GUILD_CREATE", g)
	}
	return true
}

func (s *Server) resume(c *conn, d json.RawMessage) bool {
	var r struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	if json.Unmarshal(d, &r) != nil {
		s.closeWith(c, 4002, "decode error")
		return false
	}
	if s.opts.Token != "" && strings.TrimPrefix(r.Token, "Bot ") != s.opts.Token {
		s.closeWith(c, 4004, "Authentication failed.")
		return false
	}
	s.mu.Lock()
	sess := s.sessions[r.SessionID]
	overlap := s.overlap
	s.mu.Unlock()
	refuse := func() bool {
		s.mu.Lock()
		s.stats.ResumesRefused++
		s.mu.Unlock()
		s.write(c, nil, []byte(`{"op":9,"s":null,"t":null,"d":false}`))
		return true
	}
	if sess == nil {
		return refuse()
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	from := max(r.Seq-overlap, 0)
	if sess.invalid || r.Seq > sess.seq || from < sess.base {
		return refuse()
	}
	if sess.conn != nil && sess.conn != c {
		// A session has one connection; the old one is dead to Discord.
		sess.conn.ws.Close()
		s.detach(sess.conn)
	}
	s.attach(c, sess)
	s.mu.Lock()
	s.stats.Resumes++
	s.mu.Unlock()
	for _, f := range sess.log[from-sess.base:] {
		if !s.write(c, sess, f) {
			return true
		}
	}
	s.dispatchLocked(sess, "RESUMED", []byte(`{}`))
	return true
}

func (s *Server) requestMembers(c *conn, d json.RawMessage) {
	var r struct {
		GuildID   json.RawMessage `json:"guild_id"`
		Presences bool            `json:"presences"`
		Nonce     string          `json:"nonce"`
	}
	if json.Unmarshal(d, &r) != nil {
		return
	}
	var guild string
	if json.Unmarshal(r.GuildID, &guild) != nil {
		var list []string // the deprecated list form
		if json.Unmarshal(r.GuildID, &list) != nil || len(list) == 0 {
			return
		}
		guild = list[0]
	}
	s.mu.Lock()
	sess := c.sess
	s.stats.MemberRequests = append(s.stats.MemberRequests, MemberRequest{GuildID: guild, Nonce: r.Nonce, Presences: r.Presences, At: time.Now()})
	members, presences := s.members[guild], s.presences[guild]
	s.mu.Unlock()
	if sess == nil {
		return
	}
	n := max((len(members)+s.opts.ChunkSize-1)/s.opts.ChunkSize, 1)
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for i := range n {
		part := members[min(i*s.opts.ChunkSize, len(members)):min((i+1)*s.opts.ChunkSize, len(members))]
		chunk := map[string]any{"guild_id": guild, "members": part, "chunk_index": i, "chunk_count": n}
		if r.Nonce != "" {
			chunk["nonce"] = r.Nonce
		}
		if r.Presences {
			ps := []json.RawMessage{}
			for _, m := range part {
				var mu struct {
					User struct {
						ID string `json:"id"`
					} `json:"user"`
				}
				if json.Unmarshal(m, &mu) == nil {
					if p, ok := presences[mu.User.ID]; ok {
						ps = append(ps, p)
					}
				}
			}
			chunk["presences"] = ps
		}
		b, _ := json.Marshal(chunk)
		s.dispatchLocked(sess, "GUILD_MEMBERS_CHUNK", b)
	}
}

// send numbers and sends one dispatch in sess.
func (s *Server) send(sess *session, typ string, d []byte) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	s.dispatchLocked(sess, typ, d)
}

// dispatchLocked numbers a dispatch, keeps it for RESUME and writes it if
// the session is connected. sess.mu is held.
func (s *Server) dispatchLocked(sess *session, typ string, d []byte) {
	sess.seq++
	f := make([]byte, 0, len(d)+len(typ)+48)
	f = append(f, `{"op":0,"s":`...)
	f = strconv.AppendInt(f, sess.seq, 10)
	f = append(f, `,"t":"`...)
	f = append(f, typ...)
	f = append(f, `","d":`...)
	f = append(f, d...)
	f = append(f, '}')
	sess.log = append(sess.log, f)
	if k := s.opts.KeepDispatches; k > 0 && len(sess.log) > 2*k {
		drop := len(sess.log) - k
		sess.log = append(sess.log[:0:0], sess.log[drop:]...)
		sess.base += int64(drop)
	}
	if sess.conn != nil {
		s.write(sess.conn, sess, f)
	}
}

// write sends one frame, compressed when the session asked for it and the
// frame is large. A failed write detaches the connection; the frame stays
// in the session's log for RESUME. sess.mu is held when sess is not nil.
func (s *Server) write(c *conn, sess *session, f []byte) bool {
	typ, msg := websocket.TextMessage, f
	c.wmu.Lock()
	compressed := sess != nil && sess.compress && s.opts.CompressMin > 0 && len(f) >= s.opts.CompressMin
	if compressed {
		c.zb.Reset()
		if c.z == nil {
			c.z = zlib.NewWriter(&c.zb)
		} else {
			c.z.Reset(&c.zb)
		}
		c.z.Write(f) //nolint:errcheck // writes to a buffer
		c.z.Close()  //nolint:errcheck // writes to a buffer
		typ, msg = websocket.BinaryMessage, c.zb.Bytes()
	}
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a failed write says it
	err := c.ws.WriteMessage(typ, msg)
	c.wmu.Unlock()
	s.mu.Lock()
	s.stats.Frames++
	if compressed {
		s.stats.CompressedFrames++
	}
	s.mu.Unlock()
	if err != nil {
		c.ws.Close()
		if sess != nil {
			s.detach(c)
		}
		return false
	}
	return true
}

// attach connects c to sess; sess.mu is held.
func (s *Server) attach(c *conn, sess *session) {
	sess.conn = c
	s.mu.Lock()
	defer s.mu.Unlock()
	c.sess = sess
	n := 0
	for other := range s.conns {
		if other.sess != nil && other.sess.shard == sess.shard {
			n++
		}
	}
	s.stats.MaxShardConnections = max(s.stats.MaxShardConnections, n)
}

// detach disconnects c from its session; the session's mu is held.
func (s *Server) detach(c *conn) {
	s.mu.Lock()
	sess := c.sess
	c.sess = nil
	s.mu.Unlock()
	if sess != nil && sess.conn == c {
		sess.conn = nil
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
