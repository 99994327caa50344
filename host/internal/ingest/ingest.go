// Package ingest is the home of Spywatcher's event sources: the Discord
// gateway, the simulator, replay of recorded files and HTTP ingest. A source
// only produces events; validation, dedup, storage and delivery happen in the
// pipeline behind the Sink it is given.
package ingest

import (
	"context"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Sink accepts events from a source. Submit returns an error wrapping
// *event.ValidationError when the event is rejected (the source should count
// it and go on), or the context's error when the sink is shutting down or the
// caller gave up while waiting for room (backpressure).
type Sink interface {
	Submit(ctx context.Context, ev event.Event) error
}

// SinkFunc adapts a function to Sink; tests use it to collect events.
type SinkFunc func(ctx context.Context, ev event.Event) error

// Submit calls f.
func (f SinkFunc) Submit(ctx context.Context, ev event.Event) error { return f(ctx, ev) }
