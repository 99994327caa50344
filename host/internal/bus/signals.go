package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Signals carries small control messages (such as "the authorization policy
// changed") to every listener in this process. It is the single-instance
// counterpart of RedisSignals.
type Signals struct {
	mu   sync.RWMutex
	next int
	subs map[string]map[int]func([]byte)
}

// NewSignals returns an in-process signal bus.
func NewSignals() *Signals { return &Signals{subs: map[string]map[int]func([]byte){}} }

// Publish calls every subscriber of channel, synchronously.
func (s *Signals) Publish(_ context.Context, channel string, payload []byte) error {
	s.mu.RLock()
	fns := make([]func([]byte), 0, len(s.subs[channel]))
	for _, fn := range s.subs[channel] {
		fns = append(fns, fn)
	}
	s.mu.RUnlock()
	for _, fn := range fns {
		fn(payload)
	}
	return nil
}

// Subscribe calls fn with every message published on channel until cancel.
func (s *Signals) Subscribe(channel string, fn func([]byte)) (cancel func()) {
	s.mu.Lock()
	id := s.next
	s.next++
	if s.subs[channel] == nil {
		s.subs[channel] = map[int]func([]byte){}
	}
	s.subs[channel][id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs[channel], id)
		s.mu.Unlock()
	}
}

// RedisSignals carries control messages between host instances through
// Redis pub/sub. Delivery is at most once: a listener that was disconnected
// misses messages, so consumers treat a message as "reload", never as data.
// After a reconnect go-redis resubscribes by itself.
type RedisSignals struct {
	rdb *redis.Client
	log *slog.Logger
}

// NewRedisSignals returns signals over rdb.
func NewRedisSignals(rdb *redis.Client, log *slog.Logger) *RedisSignals {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RedisSignals{rdb: rdb, log: log}
}

// Publish sends payload to every instance subscribed to channel.
func (r *RedisSignals) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := r.rdb.Publish(ctx, channel, payload).Err(); err != nil {
		return fmt.Errorf("bus: publish %s: %w", channel, err)
	}
	return nil
}

// Subscribe calls fn with every message on channel until cancel. It
// returns once the subscription is live, so a message published after it
// returns is received.
func (r *RedisSignals) Subscribe(channel string, fn func([]byte)) (cancel func()) {
	ctx, stop := context.WithCancel(context.Background())
	ps := r.rdb.Subscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		r.log.Error("bus: subscribe", "channel", channel, "err", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ch := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				fn([]byte(m.Payload))
			}
		}
	}()
	return func() {
		stop()
		ps.Close()
		<-done
	}
}
