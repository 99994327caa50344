package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// done reports whether ack has resolved, without waiting.
func ackState(a Ack) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return a.Wait(ctx)
}

// TestOfferStoredResolvesOnlyAfterTheBatchIsCommitted: the Ack of a durable
// offer stays open while its batch is being written and resolves once the
// write returned.
func TestOfferStoredResolvesOnlyAfterTheBatchIsCommitted(t *testing.T) {
	w := &fakeWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	p, _, _, done := newTest(t, Config{BatchSize: 8}, w)
	ctx := context.Background()
	out, ack, err := p.OfferStored(ctx, mk(1, event.KindMessageCreate))
	if err != nil || out != Queued {
		t.Fatalf("offer: %v %v", out, err)
	}
	<-w.entered // the writer holds the batch and has not committed it
	if err := ackState(ack); !errors.Is(err, context.Canceled) {
		t.Fatalf("ack resolved before the batch was stored: %v", err)
	}
	close(w.gate)
	if err := ack.Wait(ctx); err != nil {
		t.Fatalf("ack after the write: %v", err)
	}
	if !w.ids()["e1"] {
		t.Fatal("acknowledged event is not in the writer")
	}
	p.Close()
	<-done
	if n := p.nwaiters.Load(); n != 0 {
		t.Fatalf("%d waiters left", n)
	}
}

// TestOfferStoredDoesNotTrustTheDuplicateWindow: an event offered once
// (queued, not stored yet) and again durably is queued again and
// acknowledged only after a write, not answered "duplicate" from memory.
func TestOfferStoredDoesNotTrustTheDuplicateWindow(t *testing.T) {
	w := &fakeWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	p, _, _, done := newTest(t, Config{BatchSize: 1}, w)
	ctx := context.Background()
	if err := p.Submit(ctx, mk(0, event.KindMessageCreate)); err != nil {
		t.Fatal(err)
	}
	<-w.entered
	if err := p.Submit(ctx, mk(1, event.KindMessageCreate)); err != nil {
		t.Fatal(err)
	}
	if out, _ := p.Offer(ctx, mk(1, event.KindMessageCreate)); out != Duplicate {
		t.Fatalf("plain offer of a queued event: %v, want duplicate", out)
	}
	out, ack, err := p.OfferStored(ctx, mk(1, event.KindMessageCreate))
	if err != nil || out != Queued {
		t.Fatalf("durable offer of a queued event: %v %v, want queued", out, err)
	}
	if err := ackState(ack); !errors.Is(err, context.Canceled) {
		t.Fatalf("ack of an event not yet stored: %v", err)
	}
	close(w.gate)
	if err := ack.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	<-done
}

// TestOfferStoredReportsGivenUpEvents: an event that fails permanently is
// spilled and its Ack says not stored; the rest of the batch is stored.
func TestOfferStoredReportsGivenUpEvents(t *testing.T) {
	w := &fakeWriter{fail: func(_ int, b []event.Event) error {
		for _, e := range b {
			if e.ID == "e3" {
				return errors.New("constraint violated")
			}
		}
		return nil
	}}
	p, _, _, done := newTest(t, Config{BatchSize: 8, SpillDir: t.TempDir()}, w)
	ctx := context.Background()
	acks := make([]Ack, 6)
	for i := range acks {
		_, a, err := p.OfferStored(ctx, mk(i, event.KindMessageCreate))
		if err != nil {
			t.Fatal(err)
		}
		acks[i] = a
	}
	for i, a := range acks {
		err := a.Wait(ctx)
		if i == 3 && !errors.Is(err, ErrNotStored) {
			t.Fatalf("e3: %v, want ErrNotStored", err)
		}
		if i != 3 && err != nil {
			t.Fatalf("e%d: %v", i, err)
		}
	}
	p.Close()
	<-done
}

// TestOfferStoredHardStop: events a hard stop spills are not acknowledged.
func TestOfferStoredHardStop(t *testing.T) {
	w := &fakeWriter{fail: func(int, []event.Event) error { return errTransient }}
	p, err := New(Config{BatchSize: 4, RetryMax: 1}, w, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var acks []Ack
	for i := 0; i < 10; i++ {
		_, a, err := p.OfferStored(context.Background(), mk(i, event.KindMessageCreate))
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- p.Run(ctx) }()
	p.Close()
	// Run retries the first batch until the hard stop.
	cancel()
	<-runDone
	for i, a := range acks {
		if err := a.Wait(context.Background()); !errors.Is(err, ErrNotStored) {
			t.Fatalf("e%d after a hard stop: %v, want ErrNotStored", i, err)
		}
	}
}

// TestOfferStoredIsNotShed: above the high-water mark a durable presence
// update is queued (it waits for room) instead of dropped; after Close a
// durable offer fails and leaves no waiter behind.
func TestOfferStoredIsNotShed(t *testing.T) {
	w := &fakeWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	p, _, _, done := newTest(t, Config{QueueSize: 10, ShedAt: 0.5, BatchSize: 1}, w)
	ctx := context.Background()
	if err := p.Submit(ctx, mk(0, event.KindVoiceState)); err != nil {
		t.Fatal(err)
	}
	<-w.entered
	for i := 1; i <= 6; i++ {
		if err := p.Submit(ctx, mk(i, event.KindVoiceState)); err != nil {
			t.Fatal(err)
		}
	}
	if out, _ := p.Offer(ctx, mk(7, event.KindPresenceUpdate)); out != Shed {
		t.Fatalf("plain presence above the mark: %v, want shed", out)
	}
	out, ack, err := p.OfferStored(ctx, mk(8, event.KindPresenceUpdate))
	if err != nil || out != Queued {
		t.Fatalf("durable presence above the mark: %v %v, want queued", out, err)
	}
	close(w.gate)
	if err := ack.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	<-done
	if _, _, err := p.OfferStored(ctx, mk(9, event.KindMessageCreate)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if n := p.nwaiters.Load(); n != 0 {
		t.Fatalf("%d waiters left", n)
	}
}
