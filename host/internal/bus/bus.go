// Package bus carries messages from producers to whoever listens in this
// process: stored events (from the pipeline) and events plugins emit for
// dashboards. Local is the in-process default; a Redis-backed bus for
// several host instances builds on the same shape.
package bus

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Topic fans messages of one type out to subscribers. Publish never blocks:
// a subscriber whose buffer is full misses the message, and the miss is
// counted on its subscription, so a slow listener cannot stall a producer.
type Topic[T any] struct {
	mu   sync.RWMutex
	subs map[*Subscription[T]]struct{}
}

// Subscription receives published messages on C until it is cancelled.
type Subscription[T any] struct {
	C       <-chan T
	ch      chan T
	dropped atomic.Int64
	topic   *Topic[T]
	once    sync.Once
}

// Subscribe returns a subscription buffering up to buffer messages.
func (t *Topic[T]) Subscribe(buffer int) *Subscription[T] {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan T, buffer)
	s := &Subscription[T]{C: ch, ch: ch, topic: t}
	t.mu.Lock()
	if t.subs == nil {
		t.subs = map[*Subscription[T]]struct{}{}
	}
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	return s
}

// Dropped returns how many messages this subscriber missed because its
// buffer was full.
func (s *Subscription[T]) Dropped() int64 { return s.dropped.Load() }

// Cancel stops delivery and closes C.
func (s *Subscription[T]) Cancel() {
	s.once.Do(func() {
		s.topic.mu.Lock()
		delete(s.topic.subs, s)
		s.topic.mu.Unlock()
		close(s.ch)
	})
}

// Publish hands msg to every subscriber. Subscribers must not modify it.
func (t *Topic[T]) Publish(msg T) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for s := range t.subs {
		select {
		case s.ch <- msg:
		default:
			s.dropped.Add(1)
		}
	}
}

// PluginEvent is something a plugin emitted for a guild's dashboards.
type PluginEvent struct {
	ID       string          `json:"id"`
	GuildID  string          `json:"guild_id"`
	PluginID string          `json:"plugin_id"`
	Type     string          `json:"type"`
	At       time.Time       `json:"at"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// ScoreUpdate is a member's new score from one scorer, published when a
// scoring run stores it (for live dashboards).
type ScoreUpdate struct {
	ID          string    `json:"id"`
	GuildID     string    `json:"guild_id"`
	UserID      string    `json:"user_id"`
	Scorer      string    `json:"scorer"`
	Score       float64   `json:"score"`
	Previous    *float64  `json:"previous,omitempty"`
	Explanation string    `json:"explanation"`
	At          time.Time `json:"at"`
}

// Local is the in-process bus.
type Local struct {
	// Events carries every batch of newly stored events.
	Events Topic[[]event.Event]
	// PluginEvents carries events emitted by plugins.
	PluginEvents Topic[PluginEvent]
	// Scores carries batches of new scores.
	Scores Topic[[]ScoreUpdate]
}

// NewLocal returns an empty in-process bus.
func NewLocal() *Local { return &Local{} }

// Subscribe subscribes to stored event batches.
func (b *Local) Subscribe(buffer int) *Subscription[[]event.Event] { return b.Events.Subscribe(buffer) }

// Publish hands a batch of stored events to every subscriber (the
// pipeline's Publisher).
func (b *Local) Publish(_ context.Context, evs []event.Event) {
	if len(evs) > 0 {
		b.Events.Publish(evs)
	}
}

// PublishPluginEvent hands a plugin's event to every subscriber.
func (b *Local) PublishPluginEvent(_ context.Context, ev PluginEvent) { b.PluginEvents.Publish(ev) }

// PublishScores hands a batch of new scores to every subscriber.
func (b *Local) PublishScores(_ context.Context, s []ScoreUpdate) {
	if len(s) > 0 {
		b.Scores.Publish(s)
	}
}
