package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
)

// maxResumeFailures is how many failed connects in a row make a shard give
// up its session and identify afresh: Discord answers a RESUME of a dead
// session with op 9, but a session that cannot even be reached should not
// be retried forever.
const maxResumeFailures = 5

// shedAt is the fill ratio of a shard's buffer above which presence updates
// are dropped, as the pipeline does with its queue.
const shedAt = 0.8

// item is one dispatch on its way from discordgo's read loop to the worker.
type item struct {
	typ  string
	seq  int64
	data json.RawMessage
	at   time.Time
}

// shard runs one gateway session while its lease is held.
type shard struct {
	src               *Source
	id, count, bucket int
	log               *slog.Logger

	sessMu       sync.Mutex
	sess         *discordgo.Session // replaced by newSession; read with session()
	disconnected chan struct{}      // discordgo closed the connection
	connected    chan struct{}      // a connect succeeded (wakes the member requester)

	connMu sync.Mutex
	conn   net.Conn // latest dialled connection, closed by the open watchdog

	// mu serialises delivery from discordgo's read loops. Normally there is
	// one, but a read loop blocked on a full buffer may still hold its last
	// dispatch when the connection is replaced; mu makes the new loop wait.
	mu      sync.Mutex
	lastSeq int64 // last sequence number delivered in this session
	ready   bool  // READY was seen: the next connect resumes
	closed  bool  // buf is closed
	buf     chan item
	shedAt  int
	stop    chan struct{} // closed when stopping: unblocks a waiting read loop

	members *memberRequests
	wake    chan struct{} // a member request was queued
}

func newShard(src *Source, id, count, conc int, log *slog.Logger) *shard {
	sh := &shard{
		src: src, id: id, count: count, bucket: id % conc, log: log,
		disconnected: make(chan struct{}, 1),
		connected:    make(chan struct{}, 1),
		buf:          make(chan item, src.cfg.Buffer),
		shedAt:       int(float64(src.cfg.Buffer) * shedAt),
		stop:         make(chan struct{}),
		members:      newMemberRequests(src.cfg.MemberRequestEvery, src.cfg.MemberRequestGap),
		wake:         make(chan struct{}, 1),
	}
	sh.newSession()
	return sh
}

// newSession replaces the discordgo session with a fresh one, whose first
// connect identifies.
func (sh *shard) newSession() {
	s, _ := discordgo.New(sh.src.token) // New never fails
	s.Client = sh.src.rest
	s.Dialer = &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: sh.src.cfg.OpenTimeout,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
			if err == nil {
				sh.connMu.Lock()
				sh.conn = c
				sh.connMu.Unlock()
			}
			return c, err
		},
	}
	// The host keeps its own state; discordgo's cache would only cost memory.
	s.StateEnabled = false
	// Handlers in order, on the read loop; the buffer decouples them.
	s.SyncEvents = true
	// run reconnects: discordgo's loop can be neither stopped nor told
	// about fatal close codes.
	s.ShouldReconnectOnError = false
	s.ShouldReconnectVoiceOnSessionError = false
	s.LogLevel = -1 // failures reach run as errors and Disconnect events
	s.ShardID, s.ShardCount = sh.id, sh.count
	s.AddHandler(sh.onEvent)
	s.AddHandler(func(*discordgo.Session, *discordgo.Disconnect) {
		select {
		case sh.disconnected <- struct{}{}:
		default:
		}
	})
	sh.mu.Lock()
	sh.ready = false
	sh.mu.Unlock()
	sh.sessMu.Lock()
	sh.sess = s
	sh.sessMu.Unlock()
}

// session returns the current discordgo session.
func (sh *shard) session() *discordgo.Session {
	sh.sessMu.Lock()
	defer sh.sessMu.Unlock()
	return sh.sess
}

// run connects and reconnects until ctx ends or a fatal error, then closes
// the session and hands the buffered dispatches to the Handler.
func (sh *shard) run(ctx context.Context) error {
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	workDone := make(chan struct{})
	var workErr error
	go func() {
		defer close(workDone)
		workErr = sh.work(workCtx)
	}()
	reqCtx, stopRequests := context.WithCancel(ctx)
	reqDone := make(chan struct{})
	go func() {
		defer close(reqDone)
		sh.requestMembers(reqCtx)
	}()

	// A read loop waiting for buffer room must not hold up stopping, even
	// in the middle of a connect, when a stalled store keeps the buffer full.
	stopOnce := sync.OnceFunc(func() { close(sh.stop) })
	unwatch := context.AfterFunc(ctx, stopOnce)
	defer unwatch()

	err := sh.connectLoop(ctx, workDone)
	stopRequests()
	<-reqDone
	stopOnce()
	if cerr := sh.session().Close(); cerr != nil {
		sh.log.Debug("closing the session", "err", cerr)
	}
	sh.mu.Lock()
	sh.closed = true
	close(sh.buf)
	sh.mu.Unlock()
	drain := time.AfterFunc(sh.src.cfg.DrainTimeout, func() {
		sh.log.Error("stopping: dispatches still buffered after the drain timeout are dropped", "left", len(sh.buf))
		cancelWork()
	})
	<-workDone
	drain.Stop()
	if err != nil {
		return err
	}
	if workErr != nil && !errors.Is(workErr, context.Canceled) {
		return workErr
	}
	return nil
}

// connectLoop opens the session and opens it again whenever discordgo
// reports it closed. It returns nil when ctx ends, the worker's error when
// the worker stopped, and a fatal error when Discord refuses the bot.
func (sh *shard) connectLoop(ctx context.Context, workDone <-chan struct{}) error {
	wait := sh.src.cfg.ReconnectMin
	failures := 0
	for {
		sh.mu.Lock()
		resume := sh.ready
		sh.mu.Unlock()
		sess := sh.session()
		asked := sess.Identify.Intents
		if !resume {
			if err := sh.src.waitIdentify(ctx, sh.bucket); err != nil {
				return nil
			}
			asked = sh.src.intents(ctx)
			sess.Identify.Intents = asked
		}
		err := sh.open(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			failures, wait = 0, sh.src.cfg.ReconnectMin
			sh.log.Info("connected to the gateway", "resumed", resume)
			if resume {
				sh.members.requeueUnanswered()
				select {
				case sh.wake <- struct{}{}:
				default:
				}
			}
			select {
			case sh.connected <- struct{}{}:
			default:
			}
			select {
			case <-ctx.Done():
				return nil
			case <-workDone:
				return nil // run reports the worker's error
			case <-sh.disconnected:
			}
			sh.src.m.disconnects.Inc()
			sh.log.Info("gateway connection closed; resuming")
			// discordgo has already waited a second closing the socket.
			continue
		}
		if f := fatal(err, asked); f != nil {
			sh.log.Error("Discord refused the bot", "err", f)
			return f
		}
		failures++
		if resume && failures >= maxResumeFailures {
			sh.log.Warn("cannot resume; starting a new session", "failures", failures)
			sh.newSession()
		}
		sh.log.Warn("cannot connect to the gateway; retrying", "in", wait, "err", err)
		select {
		case <-time.After(jitter(wait)):
		case <-ctx.Done():
			return nil
		case <-workDone:
			return nil
		}
		wait = min(wait*2, sh.src.cfg.ReconnectMax)
	}
}

// open opens the session. discordgo reads the handshake without deadlines,
// so a watchdog closes the connection if the handshake stalls or ctx ends.
func (sh *shard) open(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTimer(sh.src.cfg.OpenTimeout)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
		case <-ctx.Done():
		}
		sh.connMu.Lock()
		if sh.conn != nil {
			sh.conn.Close()
		}
		sh.connMu.Unlock()
	}()
	return sh.session().Open()
}

// onEvent runs on discordgo's read loop for every dispatch. It drops
// dispatches already delivered in this session, and queues the rest for the
// worker: at once when there is room, presence updates not at all above the
// high-water mark, everything else after waiting for room.
func (sh *shard) onEvent(_ *discordgo.Session, e *discordgo.Event) {
	if e.Operation != 0 || e.Type == "" {
		return
	}
	at := sh.src.cfg.Now()
	sh.src.m.dispatches.Inc()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return
	}
	switch e.Type {
	case "READY":
		sh.lastSeq = 0 // a new session numbers from 1
		sh.ready = true
		sh.src.m.sessions.WithLabelValues("identify").Inc()
	case "RESUMED":
		sh.src.m.sessions.WithLabelValues("resume").Inc()
	}
	if e.Sequence > 0 {
		if e.Sequence <= sh.lastSeq {
			sh.src.m.duplicates.Inc()
			return
		}
		if sh.lastSeq > 0 && e.Sequence > sh.lastSeq+1 {
			sh.src.m.gaps.Inc()
			sh.log.Warn("dispatches missing from the session", "after", sh.lastSeq, "next", e.Sequence)
		}
		sh.lastSeq = e.Sequence
	}
	it := item{typ: e.Type, seq: e.Sequence, data: e.RawData, at: at}
	if e.Type == "PRESENCE_UPDATE" && len(sh.buf) >= sh.shedAt {
		sh.src.m.shed.Inc()
		return
	}
	select {
	case sh.buf <- it:
	case <-sh.stop:
	}
}

// work hands buffered dispatches to the Handler until the buffer is closed
// and empty, or the Handler fails.
func (sh *shard) work(ctx context.Context) error {
	h := sh.src.cfg.Handler
	for it := range sh.buf {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if sh.src.allow != nil {
			if g, ok := guildOf(it.typ, it.data); ok && !sh.src.allow[g] {
				sh.src.m.filtered.Inc()
				continue
			}
		}
		switch it.typ {
		case "GUILD_CREATE":
			sh.maybeRequestMembers(it.data)
		case "GUILD_MEMBERS_CHUNK":
			sh.chunkAnswered(it.data)
		}
		d := discord.Dispatch{Type: it.typ, Seq: it.seq, Data: it.data, RecordedAt: it.at}
		if err := h.HandleDispatch(ctx, d); err != nil {
			sh.log.Error("handling a dispatch failed; stopping", "type", it.typ, "err", err)
			return fmt.Errorf("gateway: shard %d: %w", sh.id, err)
		}
	}
	return nil
}

// guildOf returns the guild a dispatch belongs to, if it names one.
func guildOf(typ string, data []byte) (string, bool) {
	var v struct {
		GuildID string `json:"guild_id"`
		ID      string `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return "", false
	}
	switch typ {
	case "GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE":
		return v.ID, v.ID != ""
	}
	return v.GuildID, v.GuildID != ""
}
