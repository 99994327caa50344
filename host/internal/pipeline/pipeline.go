// Package pipeline is the one path every event takes after its source:
// validate, drop duplicates, queue, batch, store, publish.
//
// The queue is bounded. Above a high-water mark presence updates — the bulk
// of the traffic and the cheapest to lose, since the next update supersedes
// them — are shed and counted, while every other kind waits for room
// (backpressure on its source). A batch that fails to store for a transient
// reason is retried with backoff until it succeeds, so a database that goes
// away for a while loses nothing; a batch that fails for any other reason is
// split to isolate the bad events, which are written to a dead-letter file
// that `spywatcher replay` can load once the cause is fixed.
//
// Offer answers once an event is queued: a process killed before the batch
// is stored loses it. A source that must know an event is durable uses
// OfferStored instead and waits on the returned Ack, which resolves when the
// batch holding the event is committed (or when the pipeline gives the event
// up: a spill or a hard stop). Durable offers are never shed and skip the
// early duplicate check — the store's unique key makes a second copy
// harmless, while trusting the in-memory window could acknowledge an event
// that is queued but not yet stored.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Writer stores a batch and reports which events were new.
type Writer interface {
	Ingest(ctx context.Context, evs []event.Event) (store.IngestResult, error)
}

// Publisher receives every batch of newly stored events.
type Publisher interface {
	Publish(ctx context.Context, evs []event.Event)
}

// Config tunes the pipeline. Zero fields take the defaults noted.
type Config struct {
	QueueSize int     // events the queue holds; default 65536
	ShedAt    float64 // fill ratio above which presence is shed; default 0.8
	BatchSize int     // most events per store call; default 32768
	// Writers is how many batches are stored at once; default 1. Events are
	// partitioned by member, so one member's events keep their order and
	// concurrent writers never touch the same member's rows.
	Writers       int
	FlushInterval time.Duration // longest an event waits for its batch to fill; default 50ms
	DedupWindow   int           // recent IDs remembered to drop duplicates early; default 200000
	MaxFuture     time.Duration // how far in the future an event may be; default 5m
	SpillDir      string        // where batches that cannot be stored are written; "" disables
	RetryMax      time.Duration // longest pause between retries; default 5s
	// Transient tells a passing failure from a permanent one; default
	// store.IsTransient.
	Transient func(error) bool
	// Filter decides what is collected (per-guild tracking settings,
	// opt-outs); nil collects everything.
	Filter Filter
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 65536
	}
	if c.ShedAt <= 0 || c.ShedAt > 1 {
		c.ShedAt = 0.8
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 32768
	}
	if c.Writers <= 0 {
		c.Writers = 1
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 50 * time.Millisecond
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = 200000
	}
	if c.MaxFuture <= 0 {
		c.MaxFuture = 5 * time.Minute
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.Transient == nil {
		c.Transient = store.IsTransient
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Filter says whether an event may be collected. NotCollected returns ""
// to keep it, or the reason it is dropped (a metrics label).
type Filter interface {
	NotCollected(ev *event.Event) string
}

// Outcome is what Offer did with an event.
type Outcome int

// Offer outcomes.
const (
	Queued       Outcome = iota // accepted; it will be stored
	Duplicate                   // seen recently; dropped
	Shed                        // presence dropped because the queue is nearly full
	NotCollected                // dropped by the privacy filter (guild settings, opt-out)
)

func (o Outcome) String() string {
	return [...]string{"queued", "duplicate", "shed", "not_collected"}[o]
}

// ErrClosed is returned by Offer and Submit after Close.
var ErrClosed = errors.New("pipeline: closed")

// ErrNotStored is returned by Ack.Wait when the pipeline gave the event up
// without storing it (a permanent store failure or a hard stop wrote it to
// the spill file instead).
var ErrNotStored = errors.New("pipeline: event not stored")

// Ack is what OfferStored promises: Wait returns nil once the event is in
// the store (stored by this batch, or already there from an earlier one).
// The zero Ack (an event with nothing to store) is done at once.
type Ack struct{ w *waiter }

// Wait blocks until the event is stored (nil), given up (ErrNotStored) or
// ctx ends (its error; the event may still be stored later).
func (a Ack) Wait(ctx context.Context) error {
	if a.w == nil {
		return nil
	}
	select {
	case <-a.w.done:
		if a.w.stored {
			return nil
		}
		return ErrNotStored
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waiter is shared by every durable offer of one event ID until a batch
// holding that ID is committed or spilled.
type waiter struct {
	done   chan struct{}
	stored bool // set before done is closed
	// Guarded by Pipeline.wmu: offers holding it that have not queued their
	// copy yet, and whether any copy was queued (then only a batch's
	// outcome removes it).
	refs   int
	queued bool
}

// Pipeline moves events from sources to the store and the bus.
type Pipeline struct {
	cfg    Config
	w      Writer
	pub    Publisher
	m      *metrics
	queue  chan event.Event
	shedAt int

	closeOnce sync.Once
	closing   chan struct{} // closed by Close: stop accepting
	mu        sync.RWMutex  // held for reading while sending to queue
	closed    bool

	dedup *recent

	wmu      sync.Mutex
	waiters  map[string]*waiter // event ID → durable offers waiting for it
	nwaiters atomic.Int64       // len(waiters), read without the lock by writers
}

// New returns a pipeline writing to w and publishing to pub. Metrics are
// registered on reg (nil skips them).
func New(cfg Config, w Writer, pub Publisher, reg prometheus.Registerer) (*Pipeline, error) {
	cfg.defaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		cfg:     cfg,
		w:       w,
		pub:     pub,
		m:       m,
		queue:   make(chan event.Event, cfg.QueueSize),
		shedAt:  int(float64(cfg.QueueSize) * cfg.ShedAt),
		closing: make(chan struct{}),
		dedup:   newRecent(cfg.DedupWindow),
		waiters: map[string]*waiter{},
	}
	if err := m.queueDepth(func() float64 { return float64(len(p.queue)) }); err != nil {
		return nil, err
	}
	return p, nil
}

// Submit implements ingest.Sink: it offers ev and reports only failures.
// Duplicates and shed presence updates are counted, not errors.
func (p *Pipeline) Submit(ctx context.Context, ev event.Event) error {
	_, err := p.Offer(ctx, ev)
	return err
}

// Offer validates ev and queues it, waiting for room unless it is a presence
// update and the queue is above the high-water mark. The error wraps
// *event.ValidationError for an invalid event, or is ErrClosed or the
// context's error.
func (p *Pipeline) Offer(ctx context.Context, ev event.Event) (Outcome, error) {
	out, _, err := p.offer(ctx, ev, false)
	return out, err
}

// OfferStored is Offer for a source that acknowledges only what is stored:
// the event is queued like any other (never shed: a presence update waits
// for room too), and the returned Ack resolves once the batch holding it is
// committed. An event already stored resolves as stored once its copy is
// written again (the store drops it as a duplicate). NotCollected events
// get the zero Ack (nothing to wait for).
func (p *Pipeline) OfferStored(ctx context.Context, ev event.Event) (Outcome, Ack, error) {
	return p.offer(ctx, ev, true)
}

func (p *Pipeline) offer(ctx context.Context, ev event.Event, durable bool) (Outcome, Ack, error) {
	out, w, err := p.enqueue(ctx, ev, durable)
	if w == nil {
		return out, Ack{}, err
	}
	return out, Ack{w: w}, err
}

// enqueue does the work of Offer; for a durable offer that was queued it
// returns the event's waiter.
func (p *Pipeline) enqueue(ctx context.Context, ev event.Event, durable bool) (Outcome, *waiter, error) {
	p.m.received.WithLabelValues(string(ev.Kind)).Inc()
	if err := p.validate(&ev); err != nil {
		p.m.rejected.WithLabelValues("invalid").Inc()
		return 0, nil, err
	}
	if p.cfg.Filter != nil {
		if reason := p.cfg.Filter.NotCollected(&ev); reason != "" {
			p.m.rejected.WithLabelValues(reason).Inc()
			return NotCollected, nil, nil
		}
	}
	added := p.dedup.add(ev.ID)
	if !added && !durable {
		p.m.duplicates.Inc()
		return Duplicate, nil, nil
	}
	// undo forgets what this offer did when the event is not queued after all.
	var w *waiter
	undo := func() {
		if added {
			p.dedup.remove(ev.ID)
		}
		if w != nil {
			p.unwait(ev.ID, w)
		}
	}
	if durable {
		// Registered before the event can reach a writer, so that the batch
		// holding it finds the waiter.
		w = p.wait(ev.ID)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		undo()
		return 0, nil, ErrClosed
	}
	if !durable && ev.Kind == event.KindPresenceUpdate && len(p.queue) >= p.shedAt {
		undo()
		p.m.shed.WithLabelValues(string(ev.Kind)).Inc()
		return Shed, nil, nil
	}
	select {
	case p.queue <- ev:
		p.queued(w)
		return Queued, w, nil
	default:
	}
	p.m.backpressure.Inc()
	select {
	case p.queue <- ev:
		p.queued(w)
		return Queued, w, nil
	case <-p.closing:
		undo()
		return 0, nil, ErrClosed
	case <-ctx.Done():
		undo()
		return 0, nil, ctx.Err()
	}
}

// wait returns the waiter of id, creating it, and holds a reference until
// the offer queued the event or gave up.
func (p *Pipeline) wait(id string) *waiter {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	w := p.waiters[id]
	if w == nil {
		w = &waiter{done: make(chan struct{})}
		p.waiters[id] = w
		p.nwaiters.Add(1)
	}
	w.refs++
	return w
}

// queued marks that a copy of w's event is in the queue: the waiter now
// stays until a batch resolves it.
func (p *Pipeline) queued(w *waiter) {
	if w == nil {
		return
	}
	p.wmu.Lock()
	w.refs--
	w.queued = true
	p.wmu.Unlock()
}

// unwait drops an offer's reference; a waiter nobody queued an event for
// is forgotten.
func (p *Pipeline) unwait(id string, w *waiter) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	w.refs--
	if w.refs == 0 && !w.queued && p.waiters[id] == w {
		delete(p.waiters, id)
		p.nwaiters.Add(-1)
	}
}

// resolve settles the waiters of evs: stored, or given up.
func (p *Pipeline) resolve(evs []event.Event, stored bool) {
	if p.nwaiters.Load() == 0 {
		return
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for i := range evs {
		w := p.waiters[evs[i].ID]
		if w == nil {
			continue
		}
		delete(p.waiters, evs[i].ID)
		p.nwaiters.Add(-1)
		w.stored = stored
		close(w.done)
	}
}

func (p *Pipeline) validate(ev *event.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if !ev.Kind.Ingestible() {
		return &event.ValidationError{Fields: []event.FieldError{{
			Field: "kind", Message: fmt.Sprintf("%s is derived by the host and cannot be ingested", ev.Kind),
		}}}
	}
	if ev.At.After(p.cfg.Now().Add(p.cfg.MaxFuture)) {
		return &event.ValidationError{Fields: []event.FieldError{{
			Field: "at", Message: fmt.Sprintf("more than %s in the future", p.cfg.MaxFuture),
		}}}
	}
	// Millisecond precision is what is stored; truncating here keeps what
	// subscribers see equal to what a later read returns.
	ev.At = ev.At.Truncate(time.Millisecond).UTC()
	return nil
}

// Close stops accepting events. Run then stores what is queued and returns.
func (p *Pipeline) Close() {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.mu.Lock()
		p.closed = true
		close(p.queue)
		p.mu.Unlock()
	})
}

// Run batches queued events into the store until Close has been called and
// the queue is drained; it then returns nil. If ctx ends first (a hard stop),
// whatever is still queued is written to the dead-letter file and Run
// returns the context's error.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.cfg.Writers == 1 {
		return p.writeFrom(ctx, p.queue)
	}
	// A router spreads the queue over one channel per writer.
	parts := make([]chan event.Event, p.cfg.Writers)
	errs := make(chan error, len(parts))
	for i := range parts {
		parts[i] = make(chan event.Event, p.cfg.BatchSize)
		go func(ch chan event.Event) { errs <- p.writeFrom(ctx, ch) }(parts[i])
	}
	routed := func() {
		for _, ch := range parts {
			close(ch)
		}
	}
	var err error
route:
	for {
		select {
		case ev, ok := <-p.queue:
			if !ok {
				break route
			}
			ch := parts[partition(&ev, len(parts))]
			select {
			case ch <- ev:
			case <-ctx.Done():
				p.spill([]event.Event{ev}, "hard stop")
				break route
			}
		case <-ctx.Done():
			break route
		}
	}
	routed()
	for range parts {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if ctx.Err() != nil {
		p.spillQueue("hard stop")
	}
	return err
}

// partition picks the writer for an event: by member, or by guild for
// events about no member.
func partition(ev *event.Event, n int) int {
	key := ev.UserID
	if key == "" {
		key = ev.GuildID
	}
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	h ^= uint32(len(ev.GuildID))
	for i := 0; i < len(ev.GuildID); i++ {
		h = (h ^ uint32(ev.GuildID[i])) * 16777619
	}
	return int(h % uint32(n))
}

// writeFrom batches events from ch into the store until ch is closed and
// drained.
func (p *Pipeline) writeFrom(ctx context.Context, ch chan event.Event) error {
	batch := make([]event.Event, 0, p.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if ctx.Err() != nil {
			p.spillChan(ch, "hard stop")
			return ctx.Err()
		}
		var ev event.Event
		var ok bool
		select {
		case ev, ok = <-ch:
		case <-ctx.Done():
			p.spillChan(ch, "hard stop")
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		batch = append(batch[:0], ev)
		open := p.fill(ch, &batch, timer)
		p.write(ctx, batch)
		if !open {
			return nil
		}
	}
}

// fill adds queued events to batch until it is full or the flush interval
// passes; it reports false once the queue is closed and empty.
func (p *Pipeline) fill(ch chan event.Event, batch *[]event.Event, timer *time.Timer) bool {
	// Take what is already queued without arming the timer.
	for len(*batch) < p.cfg.BatchSize {
		select {
		case ev, ok := <-ch:
			if !ok {
				return false
			}
			*batch = append(*batch, ev)
			continue
		default:
		}
		break
	}
	if len(*batch) >= p.cfg.BatchSize {
		return true
	}
	timer.Reset(p.cfg.FlushInterval)
	defer timer.Stop()
	for len(*batch) < p.cfg.BatchSize {
		select {
		case ev, ok := <-ch:
			if !ok {
				return false
			}
			*batch = append(*batch, ev)
		case <-timer.C:
			return true
		}
	}
	return true
}

// write stores a batch, retrying transient failures and isolating events
// that fail permanently, then publishes what was stored.
func (p *Pipeline) write(ctx context.Context, batch []event.Event) {
	start := p.cfg.Now()
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := p.w.Ingest(ctx, batch)
		if err == nil {
			p.m.batchSize.Observe(float64(len(batch)))
			p.m.writeSeconds.Observe(p.cfg.Now().Sub(start).Seconds())
			p.m.duplicates.Add(float64(res.Duplicates))
			for i := range res.Stored {
				p.m.stored.WithLabelValues(string(res.Stored[i].Kind)).Inc()
			}
			p.m.lastStored.Set(float64(p.cfg.Now().Unix()))
			p.resolve(batch, true)
			if p.pub != nil && len(res.Stored) > 0 {
				p.pub.Publish(ctx, res.Stored)
			}
			return
		}
		if ctx.Err() != nil {
			p.spill(batch, "hard stop while storing: "+err.Error())
			return
		}
		if !p.cfg.Transient(err) {
			if len(batch) == 1 {
				p.cfg.Logger.Error("event cannot be stored", "event", batch[0].Subject(), "err", err)
				p.spill(batch, err.Error())
				return
			}
			// Find the bad events by halves; the good ones are stored.
			mid := len(batch) / 2
			p.write(ctx, batch[:mid])
			p.write(ctx, batch[mid:])
			return
		}
		p.m.retries.Inc()
		if attempt == 1 || attempt%20 == 0 {
			p.cfg.Logger.Warn("storing a batch failed; retrying", "events", len(batch), "attempt", attempt, "err", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			p.spill(batch, "hard stop while retrying: "+err.Error())
			return
		}
		backoff = min(backoff*2, p.cfg.RetryMax)
	}
}

// spillQueue writes everything still queued to the dead-letter file.
func (p *Pipeline) spillQueue(reason string) { p.spillChan(p.queue, reason) }

// spillChan writes what ch holds to the dead-letter file.
func (p *Pipeline) spillChan(ch chan event.Event, reason string) {
	var rest []event.Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				p.spill(rest, reason)
				return
			}
			rest = append(rest, ev)
		default:
			p.spill(rest, reason)
			return
		}
	}
}

// spill appends events to a JSONL file in SpillDir so that nothing accepted
// is silently lost. Message content is stripped, as the store would.
func (p *Pipeline) spill(evs []event.Event, reason string) {
	if len(evs) == 0 {
		return
	}
	p.resolve(evs, false)
	p.m.spilled.Add(float64(len(evs)))
	if p.cfg.SpillDir == "" {
		p.cfg.Logger.Error("events lost: no spill directory configured", "events", len(evs), "reason", reason)
		return
	}
	path := filepath.Join(p.cfg.SpillDir, fmt.Sprintf("spill-%s.jsonl", p.cfg.Now().UTC().Format("20060102T150405.000000000")))
	err := func() error {
		if err := os.MkdirAll(p.cfg.SpillDir, 0o750); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(f)
		for i := range evs {
			ev := evs[i]
			ev.Data = event.WithoutContent(ev.Data)
			if err := enc.Encode(ev); err != nil {
				f.Close()
				return err
			}
		}
		return f.Close()
	}()
	if err != nil {
		p.cfg.Logger.Error("events lost: cannot write spill file", "events", len(evs), "path", path, "err", err, "reason", reason)
		return
	}
	p.cfg.Logger.Error("events written to a spill file; load them with `spywatcher replay`", "events", len(evs), "path", path, "reason", reason)
}

// QueueLen returns how many events wait to be stored.
func (p *Pipeline) QueueLen() int { return len(p.queue) }
