package bus

import (
	"context"
	"testing"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

func TestLocalDeliversAndCountsDrops(t *testing.T) {
	b := NewLocal()
	fast := b.Subscribe(4)
	slow := b.Subscribe(1)
	batch := []event.Event{{ID: "a"}}
	for i := 0; i < 3; i++ {
		b.Publish(context.Background(), batch)
	}
	if len(fast.C) != 3 {
		t.Fatalf("fast subscriber got %d batches, want 3", len(fast.C))
	}
	if len(slow.C) != 1 || slow.Dropped() != 2 {
		t.Fatalf("slow subscriber: %d buffered, %d dropped; want 1 and 2", len(slow.C), slow.Dropped())
	}
	slow.Cancel()
	slow.Cancel() // idempotent
	b.Publish(context.Background(), batch)
	if len(fast.C) != 4 {
		t.Fatal("cancelling one subscriber affected another")
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 1 {
		t.Fatalf("cancelled channel drained %d batches, want the 1 buffered", n)
	}
}

func TestPluginEventsTopic(t *testing.T) {
	b := NewLocal()
	s := b.PluginEvents.Subscribe(2)
	defer s.Cancel()
	b.PublishPluginEvent(context.Background(), PluginEvent{ID: "1", Type: "alert"})
	if ev := <-s.C; ev.Type != "alert" {
		t.Fatalf("got %+v", ev)
	}
}
