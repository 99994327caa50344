package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func mk(i int, kind event.Kind) event.Event {
	ev := event.Event{ID: fmt.Sprintf("e%d", i), Kind: kind, GuildID: "1", UserID: "2", At: t0.Add(time.Duration(i) * time.Millisecond)}
	switch kind {
	case event.KindPresenceUpdate:
		ev.Data = &event.Presence{Status: event.StatusOnline, ClientStatus: event.ClientStatus{Web: event.StatusOnline}}
	case event.KindMessageCreate:
		ev.ChannelID = "3"
		ev.Data = &event.MessageCreate{MessageID: fmt.Sprint(1000 + i), Length: 3, Content: "abc"}
	default:
		ev.Kind = event.KindVoiceState
		ev.Data = &event.VoiceState{}
	}
	return ev
}

// fakeWriter records batches; fail decides per call whether to fail.
type fakeWriter struct {
	mu      sync.Mutex
	stored  []event.Event
	calls   int
	fail    func(call int, batch []event.Event) error
	gate    chan struct{} // when set, each call waits for a receive
	entered chan struct{}
}

func (w *fakeWriter) Ingest(ctx context.Context, evs []event.Event) (store.IngestResult, error) {
	if w.entered != nil {
		select {
		case w.entered <- struct{}{}:
		default:
		}
	}
	if w.gate != nil {
		select {
		case <-w.gate:
		case <-ctx.Done():
			return store.IngestResult{}, ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.fail != nil {
		if err := w.fail(w.calls, evs); err != nil {
			return store.IngestResult{}, err
		}
	}
	w.stored = append(w.stored, evs...)
	return store.IngestResult{Stored: evs}, nil
}

func (w *fakeWriter) ids() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]bool{}
	for _, e := range w.stored {
		m[e.ID] = true
	}
	return m
}

type fakePub struct {
	mu sync.Mutex
	n  int
}

func (p *fakePub) Publish(_ context.Context, evs []event.Event) {
	p.mu.Lock()
	p.n += len(evs)
	p.mu.Unlock()
}

var errTransient = errors.New("connection refused")

func newTest(t *testing.T, cfg Config, w Writer) (*Pipeline, *fakePub, *prometheus.Registry, chan error) {
	t.Helper()
	reg := prometheus.NewRegistry()
	pub := &fakePub{}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0.Add(time.Hour) }
	}
	p, err := New(cfg, w, pub, reg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	return p, pub, reg, done
}

func TestEverythingAcceptedIsStoredAndPublished(t *testing.T) {
	w := &fakeWriter{}
	p, pub, reg, done := newTest(t, Config{BatchSize: 64}, w)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		kind := event.KindPresenceUpdate
		if i%5 == 0 {
			kind = event.KindMessageCreate
		}
		if err := p.Submit(ctx, mk(i, kind)); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(w.ids()) != 1000 || pub.n != 1000 {
		t.Fatalf("stored %d, published %d, want 1000", len(w.ids()), pub.n)
	}
	if n := testutil.CollectAndCount(reg, "spywatcher_pipeline_events_stored_total"); n != 2 {
		t.Fatalf("stored counter has %d kinds, want 2", n)
	}
	if err := p.Submit(ctx, mk(5000, event.KindVoiceState)); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}

func TestRejectsInvalidFutureAndDuplicate(t *testing.T) {
	w := &fakeWriter{}
	p, _, reg, done := newTest(t, Config{}, w)
	ctx := context.Background()
	bad := mk(1, event.KindMessageCreate)
	bad.GuildID = "guild-one"
	var ve *event.ValidationError
	if _, err := p.Offer(ctx, bad); !errors.As(err, &ve) || ve.Fields[0].Field != "guild_id" {
		t.Fatalf("invalid event: %v", err)
	}
	future := mk(2, event.KindMessageCreate)
	future.At = t0.Add(2 * time.Hour)
	if _, err := p.Offer(ctx, future); !errors.As(err, &ve) || ve.Fields[0].Field != "at" {
		t.Fatalf("future event: %v", err)
	}
	score := mk(4, event.KindMessageCreate)
	score.Kind, score.ChannelID, score.Data = event.KindScoreUpdate, "", &event.ScoreUpdate{Scorer: "ghost-score", Score: 12}
	if _, err := p.Offer(ctx, score); !errors.As(err, &ve) || ve.Fields[0].Field != "kind" {
		t.Fatalf("score.update from a source (derived by the host only): %v", err)
	}
	ok := mk(3, event.KindMessageCreate)
	if out, err := p.Offer(ctx, ok); err != nil || out != Queued {
		t.Fatalf("first: %v %v", out, err)
	}
	if out, err := p.Offer(ctx, ok); err != nil || out != Duplicate {
		t.Fatalf("second: %v %v", out, err)
	}
	p.Close()
	<-done
	if len(w.ids()) != 1 {
		t.Fatalf("stored %d", len(w.ids()))
	}
	if v := testutil.ToFloat64(mustVec(t, reg, "spywatcher_pipeline_events_rejected_total")); v != 3 {
		t.Fatalf("rejected %v", v)
	}
}

// mustVec sums a metric family by name.
func mustVec(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			sum := 0.0
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "sum", nil, nil), prometheus.CounterValue, sum)
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

func TestOverloadShedsPresenceFirst(t *testing.T) {
	w := &fakeWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	p, _, reg, done := newTest(t, Config{QueueSize: 10, ShedAt: 0.5, BatchSize: 1}, w)
	ctx := context.Background()
	// The first event is taken by the writer, which then blocks.
	if err := p.Submit(ctx, mk(0, event.KindVoiceState)); err != nil {
		t.Fatal(err)
	}
	<-w.entered
	for i := 1; i <= 5; i++ {
		if err := p.Submit(ctx, mk(i, event.KindVoiceState)); err != nil {
			t.Fatal(err)
		}
	}
	// Queue holds 5 of 10: at the mark, presence is shed ...
	if out, err := p.Offer(ctx, mk(6, event.KindPresenceUpdate)); err != nil || out != Shed {
		t.Fatalf("presence at the mark: %v %v", out, err)
	}
	// ... while other kinds still get in until the queue is full ...
	for i := 7; i <= 11; i++ {
		if out, err := p.Offer(ctx, mk(i, event.KindMessageCreate)); err != nil || out != Queued {
			t.Fatalf("message %d: %v %v", i, out, err)
		}
	}
	// ... and then wait (backpressure) rather than being dropped.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Offer(wctx, mk(12, event.KindMessageCreate)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("full queue: %v", err)
	}
	// A shed or timed-out event may be offered again later.
	close(w.gate)
	if out, err := p.Offer(ctx, mk(12, event.KindMessageCreate)); err != nil || out != Queued {
		t.Fatalf("retry after backpressure: %v %v", out, err)
	}
	p.Close()
	<-done
	if got := len(w.ids()); got != 12 {
		t.Fatalf("stored %d events, want 12 (all but the shed presence)", got)
	}
	if v := testutil.ToFloat64(mustVec(t, reg, "spywatcher_pipeline_events_shed_total")); v != 1 {
		t.Fatalf("shed %v", v)
	}
}

func TestTransientFailuresAreRetriedUntilStored(t *testing.T) {
	w := &fakeWriter{fail: func(call int, _ []event.Event) error {
		if call <= 3 {
			return errTransient
		}
		return nil
	}}
	p, pub, reg, done := newTest(t, Config{BatchSize: 100, RetryMax: time.Millisecond}, w)
	for i := 0; i < 50; i++ {
		p.Submit(context.Background(), mk(i, event.KindMessageCreate))
	}
	p.Close()
	<-done
	if len(w.ids()) != 50 || pub.n != 50 {
		t.Fatalf("stored %d published %d", len(w.ids()), pub.n)
	}
	if v := testutil.ToFloat64(mustVec(t, reg, "spywatcher_pipeline_store_retries_total")); v < 3 {
		t.Fatalf("retries %v", v)
	}
}

func TestPermanentFailureIsolatesBadEventsIntoSpillFile(t *testing.T) {
	dir := t.TempDir()
	w := &fakeWriter{fail: func(_ int, b []event.Event) error {
		for _, e := range b {
			if e.ID == "e7" {
				return errors.New("constraint violated")
			}
		}
		return nil
	}}
	p, _, reg, done := newTest(t, Config{BatchSize: 32, SpillDir: dir}, w)
	for i := 0; i < 20; i++ {
		p.Submit(context.Background(), mk(i, event.KindMessageCreate))
	}
	p.Close()
	<-done
	ids := w.ids()
	if len(ids) != 19 || ids["e7"] {
		t.Fatalf("stored %d (e7 stored: %v), want the 19 good ones", len(ids), ids["e7"])
	}
	if v := testutil.ToFloat64(mustVec(t, reg, "spywatcher_pipeline_events_spilled_total")); v != 1 {
		t.Fatalf("spilled %v", v)
	}
	spilled := readSpill(t, dir)
	if len(spilled) != 1 || spilled[0].ID != "e7" {
		t.Fatalf("spill file: %+v", spilled)
	}
	if c := spilled[0].Data.(*event.MessageCreate).Content; c != "" {
		t.Fatalf("spill file kept message content %q", c)
	}
}

func readSpill(t *testing.T, dir string) []event.Event {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "spill-*.jsonl"))
	var out []event.Event
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var ev event.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("spill line %q: %v", sc.Text(), err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("spilled event invalid: %v", err)
			}
			out = append(out, ev)
		}
		fh.Close()
	}
	return out
}

func TestHardStopSpillsWhatCouldNotBeStored(t *testing.T) {
	dir := t.TempDir()
	w := &fakeWriter{fail: func(int, []event.Event) error { return errTransient }}
	reg := prometheus.NewRegistry()
	p, err := New(Config{BatchSize: 10, SpillDir: dir, RetryMax: time.Millisecond}, w, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 35; i++ {
		p.Submit(context.Background(), mk(i, event.KindMessageCreate))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Close()
	if err := p.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run: %v", err)
	}
	got := readSpill(t, dir)
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.ID] = true
	}
	if len(seen) != 35 {
		t.Fatalf("spilled %d distinct events, want all 35", len(seen))
	}
}

func TestSpillWithoutDirectoryIsLogged(t *testing.T) {
	w := &fakeWriter{fail: func(int, []event.Event) error { return errors.New("permanent") }}
	p, _, reg, done := newTest(t, Config{}, w)
	p.Submit(context.Background(), mk(1, event.KindMessageCreate))
	p.Close()
	<-done
	if v := testutil.ToFloat64(mustVec(t, reg, "spywatcher_pipeline_events_spilled_total")); v != 1 {
		t.Fatalf("spilled %v", v)
	}
}

func TestParallelWritersKeepEachMembersOrder(t *testing.T) {
	w := &fakeWriter{}
	p, pub, _, done := newTest(t, Config{BatchSize: 16, Writers: 3}, w)
	for i := 0; i < 600; i++ {
		ev := mk(i, event.KindVoiceState)
		ev.UserID = fmt.Sprint(100 + i%7)
		if err := p.Submit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(w.ids()) != 600 || pub.n != 600 {
		t.Fatalf("stored %d, published %d", len(w.ids()), pub.n)
	}
	last := map[string]time.Time{}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.stored {
		if ev.At.Before(last[ev.UserID]) {
			t.Fatalf("user %s's events stored out of order", ev.UserID)
		}
		last[ev.UserID] = ev.At
	}
}

func TestParallelWritersSpillOnHardStop(t *testing.T) {
	dir := t.TempDir()
	w := &fakeWriter{fail: func(int, []event.Event) error { return errTransient }}
	p, err := New(Config{BatchSize: 5, Writers: 2, SpillDir: dir, RetryMax: time.Millisecond}, w, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		ev := mk(i, event.KindMessageCreate)
		ev.UserID = fmt.Sprint(100 + i%5)
		p.Submit(context.Background(), ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Close()
	if err := p.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run: %v", err)
	}
	seen := map[string]bool{}
	for _, e := range readSpill(t, dir) {
		seen[e.ID] = true
	}
	if len(seen) != 40 {
		t.Fatalf("spilled %d distinct events, want 40", len(seen))
	}
}

// dropPresence is a Filter that does not collect presence.
type dropPresence struct{}

func (dropPresence) NotCollected(ev *event.Event) string {
	if ev.Kind == event.KindPresenceUpdate {
		return "not_tracked"
	}
	return ""
}

func TestFilterDropsBeforeAnythingIsStored(t *testing.T) {
	w := &fakeWriter{}
	p, pub, _, done := newTest(t, Config{Filter: dropPresence{}}, w)
	ctx := context.Background()
	out, err := p.Offer(ctx, mk(1, event.KindPresenceUpdate))
	if err != nil || out != NotCollected {
		t.Fatalf("presence: %v %v", out, err)
	}
	if out, err := p.Offer(ctx, mk(2, event.KindMessageCreate)); err != nil || out != Queued {
		t.Fatalf("message: %v %v", out, err)
	}
	// A dropped event's ID is not remembered: collected later, it is new.
	p.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ids := w.ids(); len(ids) != 1 || !ids["e2"] || pub.n != 1 {
		t.Fatalf("stored %v, published %d", ids, pub.n)
	}
	if got := testutil.ToFloat64(p.m.rejected.WithLabelValues("not_tracked")); got != 1 {
		t.Fatalf("rejected{not_tracked} = %v", got)
	}
}
