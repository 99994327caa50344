package gateway

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
)

// backfillFacts are the events the test guild's GUILD_CREATE stores.
func backfillFacts(members int) []string {
	out := []string{"guild.update  ", "channel.update  " + channel}
	for i := range members {
		out = append(out, fmt.Sprintf("member.join %s backfill=true", user(i)), "presence.update "+user(i)+" ")
	}
	return out
}

// checkStored compares the stored events' facts with want, as multisets.
func checkStored(t *testing.T, h *host, guild string, want []string) {
	t.Helper()
	got := map[string]int{}
	for _, ev := range h.events(t, guild) {
		got[fact(ev)]++
	}
	wantN := map[string]int{}
	for _, f := range want {
		wantN[f]++
	}
	for _, f := range slices.Sorted(maps.Keys(wantN)) {
		if got[f] != wantN[f] {
			t.Errorf("%q stored %d times, want %d", f, got[f], wantN[f])
		}
	}
	for _, f := range slices.Sorted(maps.Keys(got)) {
		if wantN[f] == 0 {
			t.Errorf("%q stored %d times but never sent", f, got[f])
		}
	}
}

func facts(ts []traffic) []string {
	out := make([]string, len(ts))
	for i, tr := range ts {
		out[i] = tr.fact
	}
	return out
}

// TestResumeLosesAndDuplicatesNothing drives the real pipeline and store
// through faults that end in a RESUME: what was sent while the client was
// away is replayed by the fake and stored, and nothing is stored twice.
func TestResumeLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name      string
		heartbeat time.Duration
		fault     func(f *gatewaytest.Server)
		healed    func(f *gatewaytest.Server) bool
		dups      float64 // dispatches the client must drop as already delivered
	}{
		{name: "dropped connection",
			fault: func(f *gatewaytest.Server) { f.DropConnection(0) }},
		{name: "op 7 reconnect",
			fault: func(f *gatewaytest.Server) { f.SendReconnect(0) }},
		{name: "missing heartbeat ACKs", heartbeat: 50 * time.Millisecond,
			fault: func(f *gatewaytest.Server) { f.SetHeartbeatAcks(false) },
			healed: func(f *gatewaytest.Server) bool {
				if f.Stats().Resumes == 0 {
					return false
				}
				f.SetHeartbeatAcks(true)
				return true
			}},
		{name: "resume replays delivered dispatches too",
			fault: func(f *gatewaytest.Server) { f.SetResumeOverlap(5); f.DropConnection(0) },
			dups:  5},
	}
	// SQLite only: what is under test is the gateway path, and the store
	// suite covers PostgreSQL's dedup; TestShardHandOver runs on both.
	for _, dialect := range []string{"sqlite"} {
		for _, tt := range faults {
			t.Run(dialect+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				fake := newFake(t, gatewaytest.Options{HeartbeatInterval: tt.heartbeat, CompressMin: 1024})
				if err := fake.AddGuild(guildCreate(guildA, 5, false)); err != nil {
					t.Fatal(err)
				}
				h := newHost(t, dbDSN(t, dialect), pipeline.Config{})
				r := start(t, testConfig(fake, ingestInto(t, h)))
				waitFor(t, "connected", func() bool { return fake.Connected(0) })

				before, during, after := stream(guildA, 0, 60), stream(guildA, 60, 60), stream(guildA, 120, 60)
				send(t, fake, guildA, before)
				tt.fault(fake)
				send(t, fake, guildA, during) // kept by the fake for the resume
				healed := tt.healed
				if healed == nil {
					healed = func(f *gatewaytest.Server) bool { return f.Stats().Resumes >= 1 }
				}
				waitFor(t, "a resume", func() bool { return healed(fake) && fake.Connected(0) })
				send(t, fake, guildA, after)

				want := append(backfillFacts(5), facts(slices.Concat(before, during, after))...)
				waitFor(t, "every event stored", func() bool { return h.count(t, guildA) >= len(want) })
				if err := r.stop(); err != nil {
					t.Fatal(err)
				}
				checkStored(t, h, guildA, want)

				st := fake.Stats()
				if len(st.Identifies) != 1 || st.ResumesRefused != 0 {
					t.Fatalf("identifies %d, refused resumes %d: the session was not resumed", len(st.Identifies), st.ResumesRefused)
				}
				if n := testutil.ToFloat64(r.src.m.duplicates); n != tt.dups {
					t.Fatalf("dropped %v dispatches as already delivered, want %v", n, tt.dups)
				}
				if n := testutil.ToFloat64(r.src.m.gaps); n != 0 {
					t.Fatalf("%v sequence gaps", n)
				}
			})
		}
	}
}

// TestInvalidSessionIdentifiesAgain: op 9 makes the client identify a new
// session. Without a resume Discord cannot replay anything: what the old
// session delivered is stored once, and the new session's GUILD_CREATE
// backfills the guild again (as of that moment, with new event IDs).
func TestInvalidSessionIdentifiesAgain(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		fault func(f *gatewaytest.Server)
	}{
		{"op 9 on a live connection", func(f *gatewaytest.Server) { f.InvalidateSession(0, false) }},
		{"op 9 answering a resume", func(f *gatewaytest.Server) { f.ExpireSession(0); f.DropConnection(0) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t, gatewaytest.Options{})
			if err := fake.AddGuild(guildCreate(guildA, 3, false)); err != nil {
				t.Fatal(err)
			}
			h := newHost(t, dbDSN(t, "sqlite"), pipeline.Config{})
			r := start(t, testConfig(fake, ingestInto(t, h)))
			waitFor(t, "connected", func() bool { return fake.Connected(0) })
			before := stream(guildA, 0, 40)
			send(t, fake, guildA, before)
			// Everything sent so far is stored before the fault, because the
			// second case loses what the dead session had not delivered.
			waitFor(t, "the first session's events", func() bool { return h.count(t, guildA) == len(backfillFacts(3))+len(before) })
			old := fake.SessionID(0)
			tt.fault(fake)
			waitFor(t, "a new session", func() bool {
				return len(fake.Stats().Identifies) == 2 && fake.SessionID(0) != old && fake.Connected(0)
			})
			after := stream(guildA, 40, 40)
			send(t, fake, guildA, after)
			want := slices.Concat(backfillFacts(3), backfillFacts(3), facts(before), facts(after))
			waitFor(t, "every event stored", func() bool { return h.count(t, guildA) >= len(want) })
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			checkStored(t, h, guildA, want)
			if n := testutil.ToFloat64(r.src.m.sessions.WithLabelValues("identify")); n != 2 {
				t.Fatalf("sessions identified: %v", n)
			}
		})
	}
}

// TestOutageStartsANewSession: when the gateway cannot be reached for
// several attempts in a row, the shard stops trying to resume and
// identifies a new session once Discord is back.
func TestOutageStartsANewSession(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{})
	if err := fake.AddGuild(guildCreate(guildA, 2, false)); err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	r := start(t, testConfig(fake, c))
	waitFor(t, "connected", func() bool { return fake.Connected(0) })
	fake.SetRefuseConnections(true)
	fake.DropConnection(0)
	// Back after maxResumeFailures failed connects: the next one identifies.
	waitFor(t, "the shard to give up resuming", func() bool { return fake.Stats().Refused >= maxResumeFailures })
	fake.SetRefuseConnections(false)
	waitFor(t, "a new session", func() bool { return len(fake.Stats().Identifies) == 2 && fake.Connected(0) })
	send(t, fake, guildA, stream(guildA, 0, 4))
	waitFor(t, "traffic", func() bool { return c.count("MESSAGE_CREATE") == 1 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if n := fake.Stats().Resumes; n != 0 {
		t.Fatalf("%d resumes after the outage", n)
	}
}
