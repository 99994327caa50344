package simulate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// runFor runs s until stop returns true for a submitted event or d passes,
// and returns Run's error and the submitted events.
func runFor(t *testing.T, s *Simulator, from time.Time, speed float64, d time.Duration,
	submit func(ev event.Event) error, stop func(n int, ev event.Event) bool) (error, []event.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var got []event.Event
	sink := ingest.SinkFunc(func(ctx context.Context, ev event.Event) error {
		if ev.At.After(time.Now()) {
			t.Errorf("event at %v submitted early, at %v", ev.At, time.Now())
		}
		if err := submit(ev); err != nil {
			return err
		}
		mu.Lock()
		got = append(got, ev)
		n := len(got)
		mu.Unlock()
		if stop != nil && stop(n, ev) {
			cancel()
		}
		return nil
	})
	err := s.Run(ctx, sink, from, speed)
	mu.Lock()
	defer mu.Unlock()
	return err, got
}

func accept(event.Event) error { return nil }

func TestRun(t *testing.T) {
	t.Run("replays history then goes live", func(t *testing.T) {
		// Enough members for several live events a second.
		s, err := New(Config{Seed: 11, Members: 20000})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// Half an hour of history at 3600x takes half a second, then live.
		err, got := runFor(t, s, start.Add(-30*time.Minute), 3600, 3*time.Second, accept, nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		history, live := 0, 0
		for i, ev := range got {
			if i > 0 && ev.At.Before(got[i-1].At) {
				t.Fatal("events out of order")
			}
			if ev.At.Before(start.Add(-time.Minute)) {
				history++
			}
			if !ev.At.Before(start) {
				live++
			}
		}
		if history == 0 || live == 0 {
			t.Fatalf("%d history and %d live events", history, live)
		}
		st := s.Stats()
		if st.Submitted != uint64(len(got)) || st.Rejected != 0 || !st.Clock.Equal(got[len(got)-1].At) {
			t.Fatalf("stats %+v after %d events", st, len(got))
		}
	})
	t.Run("validation errors are counted, not fatal", func(t *testing.T) {
		s, err := New(Config{Seed: 12, Members: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		reject := func(ev event.Event) error {
			n++
			if n%3 == 0 {
				return fmt.Errorf("pipeline: %w", &event.ValidationError{Fields: []event.FieldError{{Field: "id", Message: "test"}}})
			}
			return nil
		}
		err, got := runFor(t, s, time.Now().Add(-24*time.Hour), 1e9, 10*time.Second, reject,
			func(n int, _ event.Event) bool { return n >= 600 })
		if err != nil || len(got) < 600 {
			t.Fatalf("Run: %v after %d events", err, len(got))
		}
		if st := s.Stats(); st.Rejected < 250 || st.Submitted != uint64(len(got)) {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("other sink errors end the run", func(t *testing.T) {
		s, err := New(Config{Seed: 13, Members: 100})
		if err != nil {
			t.Fatal(err)
		}
		full := errors.New("disk full")
		n := 0
		err, _ = runFor(t, s, time.Now().Add(-time.Hour), 1e6, 10*time.Second, func(event.Event) error {
			if n++; n == 5 {
				return full
			}
			return nil
		}, nil)
		if !errors.Is(err, full) || !strings.HasPrefix(err.Error(), "simulate: submit") {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("stops promptly at any speed", func(t *testing.T) {
		s, err := New(Config{Seed: 14, Members: 100000})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- s.Run(ctx, ingest.SinkFunc(func(context.Context, event.Event) error { return nil }),
				time.Now().Add(-30*24*time.Hour), 1e12)
		}()
		time.Sleep(300 * time.Millisecond)
		cancel()
		stopped := time.Now()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v, want nil on cancellation", err)
			}
			if d := time.Since(stopped); d > time.Second {
				t.Fatalf("Run took %v to notice cancellation", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run ignored cancellation")
		}
	})
	t.Run("waits without spinning", func(t *testing.T) {
		s, err := New(Config{Seed: 15, Members: 3, JoinsPerHour: -1, LeavesPerHour: -1, BansPerHour: -1})
		if err != nil {
			t.Fatal(err)
		}
		err, got := runFor(t, s, time.Now(), 1, 1500*time.Millisecond, accept, nil)
		if err != nil || len(got) < 1+12+3 {
			t.Fatalf("Run: %v after %d events", err, len(got))
		}
		// Sleeps are capped at maxSleep, so 1.5s may take a few wakeups
		// (plus one per event due within the window), not thousands.
		if w := s.wakeups.Load(); w > 10 {
			t.Fatalf("%d wakeups in 1.5s", w)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		s, err := New(Config{Seed: 16, Members: 3})
		if err != nil {
			t.Fatal(err)
		}
		sink := ingest.SinkFunc(func(context.Context, event.Event) error { return nil })
		for _, tc := range []struct {
			name  string
			sink  ingest.Sink
			speed float64
			from  time.Time
		}{
			{"nil sink", nil, 1, time.Now()},
			{"zero speed", sink, 0, time.Now()},
			{"negative speed", sink, -1, time.Now()},
			{"infinite speed", sink, 1 / zero(), time.Now()},
			{"before discord", sink, 1, time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)},
		} {
			if err := s.Run(context.Background(), tc.sink, tc.from, tc.speed); err == nil || !strings.HasPrefix(err.Error(), "simulate: ") {
				t.Errorf("%s: Run = %v", tc.name, err)
			}
		}
	})
}

func zero() float64 { return 0 }
