package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Ingest is the Handler of `spywatcher serve`: it normalises each dispatch
// with the same discord.Normalizer that replay uses and submits the events
// to a sink, the pipeline. Dispatches it cannot convert are counted and
// logged, not fatal: one odd payload must not stop a guild's ingest.
type Ingest struct {
	norm *discord.Normalizer
	sink ingest.Sink
	log  *slog.Logger

	malformed atomic.Int64 // dispatches the normaliser could not convert
	rejected  atomic.Int64 // events the sink refused as invalid
	failed    atomic.Int64 // dispatches lost to a failed role lookup
}

// NewIngest returns an Ingest. Its counters are registered on reg unless
// reg is nil.
func NewIngest(norm *discord.Normalizer, sink ingest.Sink, log *slog.Logger, reg prometheus.Registerer) (*Ingest, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	in := &Ingest{norm: norm, sink: sink, log: log}
	if reg != nil {
		for name, c := range map[string]*atomic.Int64{
			"dispatches_malformed_total": &in.malformed,
			"events_rejected_total":      &in.rejected,
			"dispatches_failed_total":    &in.failed,
		} {
			err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: "spywatcher", Subsystem: "gateway", Name: name,
				Help: "Gateway " + name[:len(name)-len("_total")] + " while normalising and submitting.",
			}, func() float64 { return float64(c.Load()) }))
			if err != nil {
				return nil, fmt.Errorf("gateway: metrics: %w", err)
			}
		}
	}
	return in, nil
}

// HandleDispatch normalises d and submits its events. It returns an error
// only when the sink cannot take events any more (closed, or ctx ended).
func (in *Ingest) HandleDispatch(ctx context.Context, d discord.Dispatch) error {
	res, err := in.norm.Normalize(ctx, d, d.RecordedAt)
	if err != nil {
		var me *discord.MalformedError
		if errors.As(err, &me) {
			in.note(&in.malformed, "a gateway dispatch could not be normalised", d, err)
		} else {
			in.note(&in.failed, "a gateway dispatch was lost", d, err)
		}
		return nil
	}
	for _, ev := range res.Events {
		err := in.sink.Submit(ctx, ev)
		var ve *event.ValidationError
		switch {
		case err == nil:
		case errors.As(err, &ve):
			in.note(&in.rejected, "an event from the gateway was rejected", d, err)
		default:
			return err
		}
	}
	return nil
}

// note counts a problem and logs the first few of each kind, then every
// thousandth, so that a payload shape Discord changed cannot flood the log.
func (in *Ingest) note(c *atomic.Int64, msg string, d discord.Dispatch, err error) {
	if n := c.Add(1); n <= 10 || n%1000 == 0 {
		in.log.Warn(msg, "type", d.Type, "seq", d.Seq, "count", n, "err", err)
	}
}

// Recorder is the Handler of `spywatcher record`: it writes each dispatch as
// one JSONL line, {"t":…,"s":…,"op":0,"d":…,"at":…}, with d byte for byte as
// received and at the receive time, which is what `spywatcher replay` reads
// and what makes a replay produce the event IDs a live run would have.
// It is safe for concurrent use by several shards.
type Recorder struct {
	mu   sync.Mutex
	w    *bufio.Writer
	line []byte
	n    int64
}

// NewRecorder returns a Recorder writing to w. Call Flush before closing w.
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{w: bufio.NewWriterSize(w, 1<<16)}
}

// HandleDispatch writes d as one line.
func (r *Recorder) HandleDispatch(_ context.Context, d discord.Dispatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := append(r.line[:0], `{"t":`...)
	b = strconv.AppendQuote(b, d.Type)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, d.Seq, 10)
	b = append(b, `,"op":0,"d":`...)
	switch {
	case len(d.Data) == 0:
		b = append(b, "null"...)
	case bytes.ContainsAny(d.Data, "\r\n"):
		// Only whitespace between tokens can hold a raw line break, and
		// Discord sends compact JSON; keep the file one line per dispatch.
		var c bytes.Buffer
		if err := json.Compact(&c, d.Data); err != nil {
			return fmt.Errorf("gateway: record %s: %w", d.Type, err)
		}
		b = append(b, c.Bytes()...)
	default:
		b = append(b, d.Data...)
	}
	b = append(b, `,"at":"`...)
	b = d.RecordedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\"}\n"...)
	r.line = b
	if _, err := r.w.Write(b); err != nil {
		return fmt.Errorf("gateway: record: %w", err)
	}
	r.n++
	return nil
}

// Flush writes buffered lines through.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("gateway: record: %w", err)
	}
	return nil
}

// Count returns how many dispatches were written.
func (r *Recorder) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
