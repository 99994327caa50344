package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLeases(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, clk *clock) {
		ctx := context.Background()
		const name, ttl = "discord:shard:0/1", 30 * time.Second
		start := clk.t

		if _, err := s.GetLease(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("lease before anyone took it: %v", err)
		}
		steps := []struct {
			advance time.Duration
			holder  string
			want    bool
		}{
			{0, "a", true},                // free: a takes it
			{time.Second, "b", false},     // a's is fresh
			{10 * time.Second, "a", true}, // a renews
			{29 * time.Second, "b", false},
			{2 * time.Second, "b", true}, // a stopped renewing 31 s ago: b takes over
			{time.Second, "a", false},    // and a cannot get it back
			{0, "b", true},               // b renews
		}
		for i, st := range steps {
			clk.t = clk.t.Add(st.advance)
			got, err := s.AcquireLease(ctx, name, st.holder, ttl)
			if err != nil {
				t.Fatal(err)
			}
			if got != st.want {
				t.Fatalf("step %d: %s acquire = %v, want %v", i, st.holder, got, st.want)
			}
		}
		l, err := s.GetLease(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		tookOver := start.Add(42 * time.Second)
		if l.Holder != "b" || !l.AcquiredAt.Equal(tookOver) || !l.ExpiresAt.Equal(clk.t.Add(ttl)) {
			t.Fatalf("lease %+v: want holder b since %s until %s", l, tookOver, clk.t.Add(ttl))
		}

		// Releasing someone else's lease does nothing; releasing one's own
		// frees it at once.
		if err := s.ReleaseLease(ctx, name, "a"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.AcquireLease(ctx, name, "a", ttl); ok {
			t.Fatal("a took b's lease after releasing what it did not hold")
		}
		if err := s.ReleaseLease(ctx, name, "b"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.AcquireLease(ctx, name, "a", ttl); !ok {
			t.Fatal("a could not take a released lease")
		}
		if _, err := s.AcquireLease(ctx, "", "a", ttl); err == nil {
			t.Fatal("empty lease name accepted")
		}
	})
}

// TestLeaseRace has many holders race for one free lease: exactly one wins.
func TestLeaseRace(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for _, h := range []string{"a", "b", "c", "d", "e", "f"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.AcquireLease(ctx, "race", h, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					winners = append(winners, h)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("winners %v, want exactly one", winners)
		}
	})
}

// TestLeaseFencing checks the fencing token: the same for renewals, larger
// whenever the lease changed hands or was taken again, never reused after a
// release, and rejected by CheckLease once stale.
func TestLeaseFencing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, clk *clock) {
		ctx := context.Background()
		const name, ttl = "job:score:g1", 10 * time.Second
		acq := func(holder string) int64 {
			t.Helper()
			tok, err := s.AcquireFenced(ctx, name, holder, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		check := func(holder string, tok int64, want bool) {
			t.Helper()
			ok, err := s.CheckLease(ctx, name, holder, tok)
			if err != nil {
				t.Fatal(err)
			}
			if ok != want {
				t.Fatalf("CheckLease(%s, %d) = %v, want %v", holder, tok, ok, want)
			}
		}
		a1 := acq("a")
		if a1 <= 0 {
			t.Fatalf("first token %d", a1)
		}
		if got := acq("a"); got != a1 {
			t.Fatalf("renewal changed the token %d -> %d", a1, got)
		}
		if got := acq("b"); got != 0 {
			t.Fatalf("b got token %d of a held lease", got)
		}
		check("a", a1, true)
		clk.t = clk.t.Add(ttl + time.Millisecond) // a pauses past its expiry
		check("a", a1, false)
		b1 := acq("b")
		if b1 <= a1 {
			t.Fatalf("takeover token %d not above %d", b1, a1)
		}
		check("a", a1, false)
		check("b", b1, true)
		if err := s.ReleaseLease(ctx, name, "b"); err != nil {
			t.Fatal(err)
		}
		check("b", b1, false)
		if b2 := acq("b"); b2 <= b1 {
			t.Fatalf("token after release %d not above %d", b2, b1)
		}
	})
}

// TestAdminTokenRotation: registering another token under the same id
// (a changed SPYWATCHER_ADMIN_TOKEN) retires the old one.
func TestAdminTokenRotation(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		for _, h := range []string{"old", "old", "new"} {
			if err := s.AddAdminToken(ctx, "configured", h); err != nil {
				t.Fatalf("add %s: %v", h, err)
			}
		}
		if _, err := s.AdminTokenID(ctx, "old"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old token after rotation: %v", err)
		}
		if id, err := s.AdminTokenID(ctx, "new"); err != nil || id != "configured" {
			t.Fatalf("new token: %q %v", id, err)
		}
		if n, _ := s.CountAdminTokens(ctx); n != 1 {
			t.Fatalf("%d admin tokens", n)
		}
	})
}
