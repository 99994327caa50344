// Package ratelimit counts requests in fixed windows: in process by default,
// in Redis when several host instances must share the counts. Windows are
// aligned to the clock (a one-minute window starts at every full minute),
// so that every instance counts into the same window without coordination.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Result is one counted request.
type Result struct {
	Allowed   bool
	Limit     int
	Remaining int           // requests left in the window after this one
	Reset     time.Duration // until the window ends
	Count     int           // requests in the window, this one included
}

// Limiter counts a request against key and says whether it is within limit
// requests per window.
type Limiter interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration) (Result, error)
}

func result(count, limit int, reset time.Duration) Result {
	rem := limit - count
	if rem < 0 {
		rem = 0
	}
	return Result{Allowed: count <= limit, Limit: limit, Remaining: rem, Reset: reset, Count: count}
}

// windowOf returns the index of the window containing now and the time left in it.
func windowOf(now time.Time, window time.Duration) (int64, time.Duration) {
	w := window.Milliseconds()
	if w <= 0 {
		w = 1
	}
	ms := now.UnixMilli()
	idx := ms / w
	return idx, time.Duration((idx+1)*w-ms) * time.Millisecond
}

// Memory is the in-process limiter.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	windows map[string]*memWindow
	sweepAt time.Time
}

type memWindow struct {
	count int
	ends  time.Time
}

// NewMemory returns an in-process limiter; now may be nil.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, windows: map[string]*memWindow{}}
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, limit int, window time.Duration) (Result, error) {
	now := m.now()
	idx, reset := windowOf(now, window)
	k := key + "|" + strconv.FormatInt(window.Milliseconds(), 10) + "|" + strconv.FormatInt(idx, 10)
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.sweepAt) {
		for k, w := range m.windows {
			if now.After(w.ends) {
				delete(m.windows, k)
			}
		}
		m.sweepAt = now.Add(time.Minute)
	}
	w := m.windows[k]
	if w == nil {
		w = &memWindow{ends: now.Add(reset)}
		m.windows[k] = w
	}
	w.count++
	return result(w.count, limit, reset), nil
}

// Redis is the limiter shared by every instance using the same Redis.
type Redis struct {
	rdb    *redis.Client
	prefix string
	now    func() time.Time
}

// NewRedis returns a limiter storing its counters under prefix in rdb.
func NewRedis(rdb *redis.Client, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix, now: time.Now}
}

// The counter and its expiry are set in one step, so that a crash between
// the two cannot leave a counter that never expires.
var incr = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string, limit int, window time.Duration) (Result, error) {
	idx, reset := windowOf(r.now(), window)
	k := r.prefix + key + "|" + strconv.FormatInt(window.Milliseconds(), 10) + "|" + strconv.FormatInt(idx, 10)
	n, err := incr.Run(ctx, r.rdb, []string{k}, (reset + time.Second).Milliseconds()).Int()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return result(n, limit, reset), nil
}

var (
	_ Limiter = (*Memory)(nil)
	_ Limiter = (*Redis)(nil)
)
