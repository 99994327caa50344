package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/wire"
)

// dispatcher hands stored events to the on_events hook of every plugin
// running in the event's guild, through one bounded queue per plugin and
// guild: a slow or failing plugin backs up and sheds only its own queue,
// never ingest or other plugins.
type dispatcher struct {
	h      *Host
	mu     sync.Mutex
	queues map[[2]string]*queue
	wg     sync.WaitGroup
}

func newDispatcher(h *Host) *dispatcher {
	return &dispatcher{h: h, queues: map[[2]string]*queue{}}
}

// queue is the events waiting for one plugin in one guild.
type queue struct {
	mu     sync.Mutex
	events []event.Event
	max    int
	wake   chan struct{}
}

// Start runs the host's background work until ctx ends: dispatching events
// from sub, picking up plugin state changed elsewhere, running ticks, and
// closing idle instances.
func (h *Host) Start(ctx context.Context, sub *bus.Subscription[[]event.Event]) {
	var wg sync.WaitGroup
	if h.cfg.Scores != nil {
		scores := h.cfg.Scores.Subscribe(256)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer scores.Cancel()
			for {
				select {
				case batch, ok := <-scores.C:
					if !ok {
						return
					}
					if evs := h.scoreEvents(batch); len(evs) > 0 {
						h.disp.route(ctx, evs)
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case batch, ok := <-sub.C:
				if !ok {
					return
				}
				h.disp.route(ctx, batch)
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		h.housekeeping(ctx)
	}()
	wg.Wait()
	h.disp.wg.Wait()
}

// housekeeping refreshes state changed by others, runs due ticks and sweeps
// idle instances.
func (h *Host) housekeeping(ctx context.Context) {
	refresh := time.NewTicker(h.cfg.Refresh)
	defer refresh.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	due := map[[2]string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			if err := h.Refresh(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("plugin state refresh", "err", err)
			}
		case <-sweep.C:
			snap := h.snap.Load()
			h.pool.sweep(func(k poolKey) bool {
				st := snap.state(k.plugin, k.guild)
				return st != nil && st.runnable && st.pg.ConfigVersion == k.config && st.grantList == k.grants
			})
		case now := <-tick.C:
			if !h.cfg.ExternalTicks {
				h.runTicks(ctx, now, due)
			}
		}
	}
}

// runTicks calls tick for every plugin and guild whose interval has passed.
func (h *Host) runTicks(ctx context.Context, now time.Time, due map[[2]string]time.Time) {
	snap := h.snap.Load()
	for guild, ids := range snap.byGuild {
		for _, id := range ids {
			l := snap.plugins[id]
			if !l.m.Has(HookTick) {
				continue
			}
			k := [2]string{id, guild}
			next, seen := due[k]
			if !seen {
				due[k] = now.Add(time.Duration(l.m.TickSeconds) * time.Second)
				continue
			}
			if now.Before(next) {
				continue
			}
			due[k] = now.Add(time.Duration(l.m.TickSeconds) * time.Second)
			in, _ := json.Marshal(map[string]any{"now": now.UTC()})
			h.disp.wg.Add(1)
			go func() {
				defer h.disp.wg.Done()
				h.call(ctx, id, guild, HookTick, in) //nolint:errcheck // failures are counted by call
			}()
		}
	}
}

// scoreEvents turns published scores into score.update events. They go
// through the same routing, queues and batching as stored events, but are
// never stored themselves.
func (h *Host) scoreEvents(batch []bus.ScoreUpdate) []event.Event {
	evs := make([]event.Event, 0, len(batch))
	for _, s := range batch {
		if s.At.IsZero() {
			s.At = h.cfg.Now()
		}
		id := s.ID
		if id == "" {
			id = "score:" + s.Scorer + ":" + s.UserID + ":" + strconv.FormatInt(s.At.UnixMilli(), 10)
		}
		ev := event.Event{ID: id, Kind: event.KindScoreUpdate, GuildID: s.GuildID, UserID: s.UserID,
			At:   s.At.UTC().Truncate(time.Millisecond),
			Data: &event.ScoreUpdate{Scorer: s.Scorer, Score: s.Score, Previous: s.Previous, Explanation: s.Explanation}}
		if err := ev.Validate(); err != nil {
			h.log.Warn("score update not delivered to plugins", "guild", s.GuildID, "scorer", s.Scorer, "err", err)
			continue
		}
		evs = append(evs, ev)
	}
	return evs
}

// route splits a stored batch by guild and queues each part for the plugins
// running there that subscribe to the kinds and may read them.
func (d *dispatcher) route(ctx context.Context, batch []event.Event) {
	snap := d.h.snap.Load()
	if len(snap.byGuild) == 0 {
		return
	}
	byGuild := map[string][]event.Event{}
	for _, ev := range batch {
		if len(snap.byGuild[ev.GuildID]) > 0 {
			byGuild[ev.GuildID] = append(byGuild[ev.GuildID], ev)
		}
	}
	for guild, evs := range byGuild {
		for _, id := range snap.byGuild[guild] {
			l := snap.plugins[id]
			if !l.m.Has(HookEvents) {
				continue
			}
			if mine := eventsFor(snap, l, guild, evs); len(mine) > 0 {
				d.enqueue(ctx, l, guild, mine)
			}
		}
	}
}

// eventsFor picks the events a plugin receives: the kinds it subscribes to
// and may read in the guild.
func eventsFor(snap *snapshot, l *loaded, guild string, evs []event.Event) []event.Event {
	var mine []event.Event
	for _, ev := range evs {
		if l.m.Subscribes(ev.Kind) && snap.allowed(l.m.ID, guild, ReadPermission(ev.Kind)) {
			mine = append(mine, ev)
		}
	}
	return mine
}

// Deliver hands events of one guild to one plugin now, in batches of its
// size, through the same filtering and encoding as dispatch, and returns
// how many it received. It is the synchronous path for local testing
// (spywatcher plugin test); the running host dispatches from the bus.
func (h *Host) Deliver(ctx context.Context, pluginID, guild string, evs []event.Event) (int, error) {
	snap := h.snap.Load()
	l := snap.plugins[pluginID]
	st := snap.state(pluginID, guild)
	if l == nil || l.m == nil || st == nil || !st.runnable {
		return 0, ErrNotRunnable
	}
	if !l.m.Has(HookEvents) {
		return 0, nil
	}
	mine := eventsFor(snap, l, guild, evs)
	content := h.permitted(pluginID, guild, PermContentRead)
	var errs []error
	for len(mine) > 0 {
		n := min(len(mine), l.m.Limits.BatchEvents)
		input, err := encodeBatch(l.m, guild, mine[:n], content)
		if err != nil {
			return 0, err
		}
		if _, err := h.call(ctx, pluginID, guild, HookEvents, input); err != nil {
			errs = append(errs, err)
		}
		mine = mine[n:]
	}
	return len(eventsFor(snap, l, guild, evs)), errors.Join(errs...)
}

func (d *dispatcher) enqueue(ctx context.Context, l *loaded, guild string, evs []event.Event) {
	k := [2]string{l.m.ID, guild}
	d.mu.Lock()
	q := d.queues[k]
	if q == nil {
		q = &queue{max: l.m.Limits.QueueEvents, wake: make(chan struct{}, 1)}
		d.queues[k] = q
		d.wg.Add(1)
		go d.work(ctx, l.m.ID, guild, q)
	}
	d.mu.Unlock()
	q.mu.Lock()
	room := q.max - len(q.events)
	if room < len(evs) {
		d.h.m.shed.WithLabelValues(l.m.ID, guild).Add(float64(len(evs) - max(room, 0)))
		evs = evs[:max(room, 0)]
	}
	q.events = append(q.events, evs...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// work delivers one queue's events in batches until ctx ends.
func (d *dispatcher) work(ctx context.Context, pluginID, guild string, q *queue) {
	defer d.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		d.waitForBatch(ctx, pluginID, q)
		for ctx.Err() == nil && d.deliverOne(ctx, pluginID, guild, q) {
		}
	}
}

// waitForBatch lets a batch fill up: it returns when the queue holds a
// full batch or the flush interval has passed.
func (d *dispatcher) waitForBatch(ctx context.Context, pluginID string, q *queue) {
	timer := time.NewTimer(d.h.cfg.FlushInterval)
	defer timer.Stop()
	for {
		l := d.h.snap.Load().plugins[pluginID]
		q.mu.Lock()
		n := len(q.events)
		q.mu.Unlock()
		if l == nil || l.m == nil || n == 0 || n >= l.m.Limits.BatchEvents {
			return
		}
		select {
		case <-timer.C:
			return
		case <-q.wake:
		case <-ctx.Done():
			return
		}
	}
}

// deliverOne sends up to one batch; it reports whether more are waiting.
func (d *dispatcher) deliverOne(ctx context.Context, pluginID, guild string, q *queue) bool {
	snap := d.h.snap.Load()
	l := snap.plugins[pluginID]
	st := snap.state(pluginID, guild)
	q.mu.Lock()
	if l == nil || l.m == nil || st == nil || !st.runnable {
		// Disabled, revoked or quarantined meanwhile: what waits is dropped.
		if len(q.events) > 0 {
			d.h.m.shed.WithLabelValues(pluginID, guild).Add(float64(len(q.events)))
		}
		q.events = nil
		q.mu.Unlock()
		return false
	}
	n := min(len(q.events), l.m.Limits.BatchEvents)
	batch := q.events[:n:n]
	q.events = q.events[n:]
	more := len(q.events) > 0
	q.mu.Unlock()
	if n == 0 {
		return false
	}
	input, err := encodeBatch(l.m, guild, batch, d.h.permitted(pluginID, guild, PermContentRead))
	if err != nil {
		d.h.log.Error("encode batch", "plugin", pluginID, "err", err)
		return more
	}
	if _, err := d.h.call(ctx, pluginID, guild, HookEvents, input); err == nil {
		d.h.m.delivered.WithLabelValues(pluginID).Add(float64(n))
	}
	return more
}

// encodeBatch encodes events as the plugin's manifest asks, without message
// content unless the plugin may read it.
func encodeBatch(m *Manifest, guild string, evs []event.Event, content bool) ([]byte, error) {
	data := func(ev *event.Event) ([]byte, error) {
		d := ev.Data
		if !content {
			d = event.WithoutContent(d)
		}
		return json.Marshal(d)
	}
	if m.EventEncoding == wire.EncodingBinary {
		return wire.AppendBinary(make([]byte, 0, len(evs)*256), guild, evs, data)
	}
	out := make([]byte, 0, len(evs)*300)
	out = append(out, `{"guild_id":`...)
	out, _ = appendJSON(out, guild)
	out = append(out, `,"events":[`...)
	for i := range evs {
		if i > 0 {
			out = append(out, ',')
		}
		ev := evs[i]
		if !content {
			ev.Data = event.WithoutContent(ev.Data)
		}
		var err error
		if out, err = appendJSON(out, ev); err != nil {
			return nil, err
		}
	}
	return append(out, "]}"...), nil
}

func appendJSON(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}
