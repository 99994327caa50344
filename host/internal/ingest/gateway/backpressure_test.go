package gateway

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// stallWriter is the store, stalled while its lock is held.
type stallWriter struct {
	mu   sync.RWMutex
	next pipeline.Writer
}

func (w *stallWriter) Ingest(ctx context.Context, evs []event.Event) (store.IngestResult, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.next.Ingest(ctx, evs)
}

// TestSlowStoreShedsPresenceFirst stalls the store under a burst of presence
// updates and messages. The bounded buffers shed presence (counted) and make
// everything else wait; heartbeats keep going meanwhile; once the store is
// back every message is stored, once.
func TestSlowStoreShedsPresenceFirst(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{HeartbeatInterval: 500 * time.Millisecond})
	if err := fake.AddGuild(guildCreate(guildA, 1, false)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), dbDSN(t, "sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &stallWriter{next: st}
	reg := prometheus.NewRegistry()
	p, err := pipeline.New(pipeline.Config{QueueSize: 64, BatchSize: 16, FlushInterval: time.Millisecond}, w, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- p.Run(context.Background()) }()
	h := &host{st: st, pipe: p}

	cfg := testConfig(fake, ingestInto(t, h))
	cfg.Buffer = 64
	r := start(t, cfg)
	waitFor(t, "the guild", func() bool { return h.count(t, guildA) == len(backfillFacts(1)) })

	// The burst: 2000 presence updates with a message after every 20th.
	var burst []traffic
	var messages []string
	for i := range 2000 {
		burst = append(burst, traffic{"PRESENCE_UPDATE", map[string]any{
			"user": map[string]any{"id": user(i % 50)}, "guild_id": guildA, "status": "online",
			"activities":    []any{map[string]any{"type": 0, "name": "p" + strconv.Itoa(i)}},
			"client_status": map[string]any{"web": "online"},
		}, ""})
		if i%20 == 19 {
			m := stream(guildA, 4*i, 1)[0]
			burst = append(burst, m)
			messages = append(messages, m.fact)
		}
	}
	w.mu.Lock() // the store stalls
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		send(t, fake, guildA, burst)
	}()
	waitFor(t, "presence to be shed", func() bool { return testutil.ToFloat64(r.src.m.shed) > 0 })
	// The read loop now waits for room, but discordgo's heartbeats go on.
	beats := fake.Stats().Heartbeats
	waitFor(t, "heartbeats during the stall", func() bool { return fake.Stats().Heartbeats >= beats+2 })
	w.mu.Unlock() // the store is back
	<-sent

	stored := func() (msgs map[string]int, presences int) {
		msgs = map[string]int{}
		for _, ev := range h.events(t, guildA) {
			switch ev.Kind {
			case event.KindMessageCreate:
				msgs[fact(ev)]++
			case event.KindPresenceUpdate:
				presences++
			}
		}
		return msgs, presences
	}
	waitFor(t, "every message", func() bool { m, _ := stored(); return len(m) == len(messages) })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := <-pipeDone; err != nil {
		t.Fatal(err)
	}
	msgs, presences := stored()
	for _, m := range messages {
		if msgs[m] != 1 {
			t.Errorf("%s stored %d times", m, msgs[m])
		}
	}
	shedGateway := int(testutil.ToFloat64(r.src.m.shed))
	shedPipeline := int(gatherSum(t, reg, "spywatcher_pipeline_events_shed_total"))
	// Every presence update was either stored or shed, and counted: none
	// went missing silently (plus the one from GUILD_CREATE).
	if presences+shedGateway+shedPipeline != 2000+1 {
		t.Fatalf("presence: %d stored + %d shed by the gateway + %d by the pipeline != 2001", presences, shedGateway, shedPipeline)
	}
	t.Logf("presence updates: %d stored, %d shed by the shard buffer, %d by the pipeline", presences, shedGateway, shedPipeline)
}

// gatherSum adds up every series of a metric in reg.
func gatherSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestStopWhileTheStoreIsStalled: stopping does not hang on a store that
// does not move; what is still buffered after DrainTimeout is given up.
func TestStopWhileTheStoreIsStalled(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{})
	if err := fake.AddGuild(guildCreate(guildA, 1, false)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), dbDSN(t, "sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &stallWriter{next: st}
	p, err := pipeline.New(pipeline.Config{QueueSize: 16, BatchSize: 4}, w, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pipeCtx, hardStop := context.WithCancel(context.Background())
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- p.Run(pipeCtx) }()
	cfg := testConfig(fake, ingestInto(t, &host{st: st, pipe: p}))
	cfg.Buffer, cfg.DrainTimeout = 16, 100*time.Millisecond
	r := start(t, cfg)
	waitFor(t, "connected", func() bool { return fake.Connected(0) })
	w.mu.Lock()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for _, tr := range stream(guildA, 0, 400) { // messages wait: the store is stalled
			if err := fake.Dispatch(guildA, tr.typ, tr.d); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	// Both buffers full, the read loop waits: the count of dispatches
	// read stops moving.
	last := -1.0
	waitFor(t, "the read loop to wait", func() bool {
		n := testutil.ToFloat64(r.src.m.dispatches)
		stuck := n == last && n > 32
		last = n
		time.Sleep(50 * time.Millisecond)
		return stuck
	})
	r.cancel()
	select {
	case err := <-r.wait():
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop while the store was stalled")
	}
	<-sent
	w.mu.Unlock()
	hardStop()
	<-pipeDone
}
