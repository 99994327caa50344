package ratelimit

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func exercise(t *testing.T, l Limiter, key string) {
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		r, err := l.Allow(ctx, key, 3, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed != (i <= 3) || r.Count != i || r.Limit != 3 || r.Reset <= 0 || r.Reset > time.Hour {
			t.Fatalf("request %d: %+v", i, r)
		}
		if want := max(0, 3-i); r.Remaining != want {
			t.Fatalf("request %d: remaining %d, want %d", i, r.Remaining, want)
		}
	}
	// Another key and another window size count separately.
	if r, _ := l.Allow(ctx, key+"-other", 3, time.Hour); r.Count != 1 {
		t.Fatalf("keys share a counter: %+v", r)
	}
	if r, _ := l.Allow(ctx, key, 3, 2*time.Hour); r.Count != 1 {
		t.Fatalf("windows share a counter: %+v", r)
	}
}

func TestMemory(t *testing.T) {
	exercise(t, NewMemory(nil), "k")
}

func TestMemoryWindowsRoll(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 59, 0, time.UTC)
	m := NewMemory(func() time.Time { return now })
	ctx := context.Background()
	m.Allow(ctx, "k", 1, time.Minute)
	if r, _ := m.Allow(ctx, "k", 1, time.Minute); r.Allowed || r.Reset != time.Second {
		t.Fatalf("second request in the window: %+v", r)
	}
	now = now.Add(time.Second)
	if r, _ := m.Allow(ctx, "k", 1, time.Minute); !r.Allowed {
		t.Fatalf("a new window must start afresh: %+v", r)
	}
	now = now.Add(3 * time.Minute)
	m.Allow(ctx, "other", 1, time.Minute)
	if len(m.windows) != 1 {
		t.Fatalf("expired windows not swept: %d left", len(m.windows))
	}
}

func redisClient(t *testing.T) *redis.Client {
	url := os.Getenv("SPYWATCHER_TEST_REDIS_URL")
	if url == "" {
		t.Skip("SPYWATCHER_TEST_REDIS_URL unset: skipping the Redis limiter")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedis(t *testing.T) {
	c := redisClient(t)
	exercise(t, NewRedis(c, fmt.Sprintf("test:%d:", time.Now().UnixNano())), "k")
}

// TestRedisShared: two limiters (two instances) on one Redis share a count.
func TestRedisShared(t *testing.T) {
	c := redisClient(t)
	prefix := fmt.Sprintf("test:%d:", time.Now().UnixNano())
	a, b := NewRedis(c, prefix), NewRedis(redisClient(t), prefix)
	allowed := 0
	for i := 0; i < 10; i++ {
		l := Limiter(a)
		if i%2 == 1 {
			l = b
		}
		r, err := l.Allow(context.Background(), "shared", 4, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		}
	}
	if allowed != 4 {
		t.Fatalf("allowed %d of 10 across two limiters, want 4", allowed)
	}
}
