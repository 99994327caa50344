package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
	"github.com/spywatcher/spywatcher/host/internal/ingest/replay"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// tee hands each dispatch to several handlers.
type tee []Handler

func (t tee) HandleDispatch(ctx context.Context, d discord.Dispatch) error {
	for _, h := range t {
		if err := h.HandleDispatch(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// events collects what a sink is given.
type events struct {
	mu  sync.Mutex
	evs []event.Event
}

func (e *events) sink() ingest.Sink {
	return ingest.SinkFunc(func(_ context.Context, ev event.Event) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.evs = append(e.evs, ev)
		return nil
	})
}

func (e *events) json(t *testing.T) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestRecordReplaysToTheLiveEvents records a live session across a resume
// while ingesting it, then replays the recording: replay produces exactly
// the events, IDs included, that the live ingest did.
func TestRecordReplaysToTheLiveEvents(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{CompressMin: 1024})
	if err := fake.AddGuild(guildCreate(guildA, 4, true)); err != nil {
		t.Fatal(err)
	}
	if err := fake.SetMembers(guildA, []any{member(guildA, 7), member(guildA, 8)}, nil); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	rec := NewRecorder(&file)
	live := &events{}
	in, err := NewIngest(discord.NewNormalizer(nil), live.sink(), testLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	cfg := testConfig(fake, tee{rec, in, c})
	cfg.MemberRequestEvery = 50 * time.Millisecond
	r := start(t, cfg)
	waitFor(t, "connected", func() bool { return fake.Connected(0) })
	send(t, fake, guildA, stream(guildA, 0, 30))
	fake.DropConnection(0)
	send(t, fake, guildA, stream(guildA, 30, 30))
	waitFor(t, "the resume", func() bool { return fake.Stats().Resumes == 1 })
	// READY, GUILD_CREATE, a member chunk, 60 dispatches and RESUMED.
	waitFor(t, "every dispatch", func() bool {
		return c.count("RESUMED") == 1 && c.count("GUILD_MEMBERS_CHUNK") >= 1 && len(c.types()) >= 64
	})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}

	// Every line has the shape replay reads.
	sc := bufio.NewScanner(bytes.NewReader(file.Bytes()))
	sc.Buffer(nil, 1<<20)
	var types []string
	for sc.Scan() {
		var l struct {
			T  string          `json:"t"`
			S  int64           `json:"s"`
			Op *int            `json:"op"`
			D  json.RawMessage `json:"d"`
			At time.Time       `json:"at"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if l.T == "" || l.S == 0 || l.Op == nil || *l.Op != 0 || len(l.D) == 0 || l.At.IsZero() {
			t.Fatalf("line lacks t, s, op 0, d or at: %s", sc.Text())
		}
		types = append(types, l.T)
	}
	if !slices.Contains(types, "GUILD_MEMBERS_CHUNK") || types[0] != "READY" || !slices.Contains(types, "RESUMED") {
		t.Fatalf("recorded %v", types)
	}

	replayed := &events{}
	st, err := replay.Run(context.Background(), bytes.NewReader(file.Bytes()), replayed.sink(), replay.Options{})
	if err != nil || st.Malformed != 0 || st.Rejected != 0 {
		t.Fatalf("replay: %+v, %v", st, err)
	}
	got, want := replayed.json(t), live.json(t)
	if len(want) < 60 || !slices.Equal(got, want) {
		t.Fatalf("replay gave %d events, live %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
