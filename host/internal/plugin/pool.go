package plugin

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// poolKey identifies interchangeable instances: the same plugin version in
// the same guild with the same configuration and grants. An instance keeps
// its memory between calls, so one that served guild A must never serve
// guild B. grants is part of the key because an instance is told its grants
// when it starts (spywatcher.grants): a grant or revocation starts new ones.
type poolKey struct {
	plugin, version, guild string
	config                 int64
	grants                 string
}

// pool keeps idle instances for reuse, bounds concurrent calls per key, and
// evicts the least recently used idle instances when the memory of all live
// instances exceeds its bound.
type pool struct {
	mu       sync.Mutex
	slots    map[poolKey]*slot
	lru      *list.List // idle *pooled, most recently used at the front
	bytes    int64      // memory of every live instance, idle or busy
	maxBytes int64
	idleTTL  time.Duration
	now      func() time.Time
	onEvict  func(n int)
}

type slot struct {
	sem  chan struct{} // one token per concurrent call
	idle []*pooled
}

type pooled struct {
	key   poolKey
	inst  instance
	bytes int64
	elem  *list.Element
	used  time.Time
}

func newPool(maxBytes int64, idleTTL time.Duration) *pool {
	return &pool{slots: map[poolKey]*slot{}, lru: list.New(), maxBytes: maxBytes, idleTTL: idleTTL, now: time.Now}
}

// acquire returns an instance for key, reusing an idle one or creating one
// with create; it waits while limit calls for key are running.
func (p *pool) acquire(ctx context.Context, key poolKey, limit int, create func() (instance, error)) (*pooled, error) {
	p.mu.Lock()
	s := p.slots[key]
	if s == nil {
		s = &slot{sem: make(chan struct{}, limit)}
		p.slots[key] = s
	}
	p.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if n := len(s.idle); n > 0 {
		x := s.idle[n-1]
		s.idle = s.idle[:n-1]
		p.lru.Remove(x.elem)
		x.elem = nil
		p.mu.Unlock()
		return x, nil
	}
	p.mu.Unlock()
	inst, err := create()
	if err != nil {
		<-s.sem
		return nil, err
	}
	x := &pooled{key: key, inst: inst, bytes: inst.MemoryBytes()}
	p.mu.Lock()
	p.bytes += x.bytes
	p.mu.Unlock()
	return x, nil
}

// release returns x after a call. A healthy instance goes back to the idle
// list; a broken one is closed.
func (p *pool) release(x *pooled, healthy bool) {
	p.mu.Lock()
	s := p.slots[x.key]
	var closing []*pooled
	if healthy && s != nil {
		nb := x.inst.MemoryBytes()
		p.bytes += nb - x.bytes
		x.bytes, x.used = nb, p.now()
		x.elem = p.lru.PushFront(x)
		s.idle = append(s.idle, x)
		closing = p.evictLocked()
	} else {
		p.bytes -= x.bytes
		closing = append(closing, x)
	}
	p.mu.Unlock()
	if s != nil {
		<-s.sem
	}
	p.close(closing)
}

// evictLocked removes least recently used idle instances while over budget.
func (p *pool) evictLocked() []*pooled {
	var out []*pooled
	for p.bytes > p.maxBytes {
		e := p.lru.Back()
		if e == nil {
			break
		}
		out = append(out, p.removeLocked(e.Value.(*pooled)))
	}
	return out
}

func (p *pool) removeLocked(x *pooled) *pooled {
	p.lru.Remove(x.elem)
	x.elem = nil
	p.bytes -= x.bytes
	if s := p.slots[x.key]; s != nil {
		for i, y := range s.idle {
			if y == x {
				s.idle = append(s.idle[:i], s.idle[i+1:]...)
				break
			}
		}
	}
	return x
}

func (p *pool) close(xs []*pooled) {
	for _, x := range xs {
		x.inst.Close(context.Background())
	}
	if len(xs) > 0 && p.onEvict != nil {
		p.onEvict(len(xs))
	}
}

// sweep closes idle instances unused for idleTTL and those whose key keep
// rejects (a disabled plugin, an old version or configuration).
func (p *pool) sweep(keep func(poolKey) bool) {
	p.mu.Lock()
	var closing []*pooled
	cutoff := p.now().Add(-p.idleTTL)
	for e := p.lru.Back(); e != nil; {
		prev := e.Prev()
		x := e.Value.(*pooled)
		if x.used.Before(cutoff) || !keep(x.key) {
			closing = append(closing, p.removeLocked(x))
		}
		e = prev
	}
	for k, s := range p.slots {
		if len(s.idle) == 0 && len(s.sem) == 0 && !keep(k) {
			delete(p.slots, k)
		}
	}
	p.mu.Unlock()
	p.close(closing)
}

// stats reports live instances and their memory.
func (p *pool) stats() (idle int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len(), p.bytes
}

// closeAll closes every idle instance (at shutdown).
func (p *pool) closeAll() {
	p.sweep(func(poolKey) bool { return false })
}
