package lease

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaser is what the suite exercises; *store.Store has its own copy of it.
type leaser interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// backends returns Local, and Redis when SPYWATCHER_TEST_REDIS_URL is set.
// expire makes a lease's expiry pass: the Local clock is moved, Redis is
// waited for.
type backend struct {
	name   string
	l      leaser
	expire func(t *testing.T, ttl time.Duration)
}

func backends(t *testing.T) []backend {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	local := &Local{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	bs := []backend{{"local", local, func(_ *testing.T, ttl time.Duration) {
		mu.Lock()
		now = now.Add(ttl)
		mu.Unlock()
	}}}
	url := os.Getenv("SPYWATCHER_TEST_REDIS_URL")
	if url == "" {
		t.Log("SPYWATCHER_TEST_REDIS_URL not set: skipping the Redis lease backend")
		return bs
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	prefix := fmt.Sprintf("spywatcher-test:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return append(bs, backend{"redis", NewRedis(c, prefix), func(t *testing.T, ttl time.Duration) {
		time.Sleep(ttl + 5*time.Millisecond) // Redis keeps its own clock
	}})
}

func TestLeaseLifecycle(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			const ttl = 50 * time.Millisecond
			must := func(holder string, want bool) {
				t.Helper()
				got, err := b.l.AcquireLease(ctx, "shard:0/1", holder, ttl)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("%s acquire = %v, want %v", holder, got, want)
				}
			}
			must("a", true)
			must("b", false)
			must("a", true) // renewal
			b.expire(t, ttl)
			must("b", true) // a died: b takes over
			must("a", false)
			if err := b.l.ReleaseLease(ctx, "shard:0/1", "a"); err != nil {
				t.Fatal(err)
			}
			must("a", false) // a's release of b's lease did nothing
			if err := b.l.ReleaseLease(ctx, "shard:0/1", "b"); err != nil {
				t.Fatal(err)
			}
			must("a", true)
			if _, err := b.l.AcquireLease(ctx, "", "a", ttl); err == nil {
				t.Fatal("empty name accepted")
			}
		})
	}
}

func TestLeaseRace(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			var wins sync.Map
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := b.l.AcquireLease(context.Background(), "race", fmt.Sprint("h", i), time.Minute)
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Store(i, true)
					}
				}()
			}
			wg.Wait()
			n := 0
			wins.Range(func(_, _ any) bool { n++; return true })
			if n != 1 {
				t.Fatalf("%d holders won the race, want 1", n)
			}
		})
	}
}

func TestLeaseFencing(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			f := b.l.(Fenced)
			const ttl = 50 * time.Millisecond
			acq := func(holder string) int64 {
				t.Helper()
				tok, err := f.AcquireFenced(ctx, "fence", holder, ttl)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			valid := func(holder string, tok int64) bool {
				t.Helper()
				ok, err := f.CheckLease(ctx, "fence", holder, tok)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			a := acq("a")
			if a <= 0 || acq("a") != a || acq("b") != 0 || !valid("a", a) {
				t.Fatalf("a's token %d not stable, or b got it", a)
			}
			b.expire(t, ttl)
			bt := acq("b")
			if bt <= a || valid("a", a) || !valid("b", bt) {
				t.Fatalf("takeover token %d after %d, or a's stale token still valid", bt, a)
			}
			if err := f.ReleaseLease(ctx, "fence", "b"); err != nil {
				t.Fatal(err)
			}
			if valid("b", bt) {
				t.Fatal("released lease still valid")
			}
			if again := acq("a"); again <= bt {
				t.Fatalf("token after release %d, want > %d", again, bt)
			}
		})
	}
}
