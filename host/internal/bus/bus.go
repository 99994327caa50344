// Package bus carries stored events from the pipeline to whoever listens in
// this process: WebSocket delivery and plugin dispatch. Local is the
// in-process default; a Redis-backed bus for several host instances builds on
// the same Publisher/Subscriber shape.
package bus

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Local is an in-process bus. Publish never blocks: a subscriber whose buffer
// is full misses the batch, and the miss is counted on its subscription, so a
// slow listener cannot stall ingest.
type Local struct {
	mu   sync.RWMutex
	subs map[*Subscription]struct{}
}

// NewLocal returns an empty in-process bus.
func NewLocal() *Local { return &Local{subs: map[*Subscription]struct{}{}} }

// Subscription receives published batches on C until it is cancelled.
type Subscription struct {
	C       <-chan []event.Event
	ch      chan []event.Event
	dropped atomic.Int64
	bus     *Local
	once    sync.Once
}

// Subscribe returns a subscription buffering up to buffer batches.
func (b *Local) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan []event.Event, buffer)
	s := &Subscription{C: ch, ch: ch, bus: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Dropped returns how many batches this subscriber missed because its buffer
// was full.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Cancel stops delivery and closes C.
func (s *Subscription) Cancel() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.ch)
	})
}

// Publish hands a batch to every subscriber. Subscribers must not modify it.
func (b *Local) Publish(_ context.Context, evs []event.Event) {
	if len(evs) == 0 {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		select {
		case s.ch <- evs:
		default:
			s.dropped.Add(1)
		}
	}
}
