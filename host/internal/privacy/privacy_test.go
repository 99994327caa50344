package privacy

import (
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
	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

const (
	guild  = "41771983423143937"
	guild2 = "41771983423143999"
	alice  = "80351110224678912"
	bob    = "80351110224678913"
	chanID = "41771983423143938"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakePlugins records delete_user calls; fail makes a plugin's hook fail.
type fakePlugins struct {
	calls []string
	fail  bool
}

func (f *fakePlugins) DeleteUser(_ context.Context, guildID, userID string) []PluginResult {
	f.calls = append(f.calls, guildID+"/"+userID)
	r := PluginResult{Plugin: "logger", Guild: guild}
	if f.fail {
		r.Error = "trap"
	}
	return []PluginResult{r}
}

type env struct {
	st      *store.Store
	clk     *clock
	svc     *Service
	filter  *Filter
	plugins *fakePlugins
	reg     *prometheus.Registry
}

// forEachStore runs f on SQLite and, when configured, PostgreSQL.
func forEachStore(t *testing.T, f func(t *testing.T, e *env)) {
	dsns := map[string]func(t *testing.T) string{"sqlite": func(t *testing.T) string { return filepath.Join(t.TempDir(), "p.db") }}
	if pg := os.Getenv(storetest.PostgresEnv); pg != "" {
		dsns["postgres"] = func(t *testing.T) string { return storetest.PostgresDSN(t, pg) }
	} else {
		t.Log(storetest.PostgresEnv + " unset: the PostgreSQL half is skipped")
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: t0}
			st, err := store.Open(ctx, dsn(t), store.Options{Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			filter, err := NewFilter(ctx, st, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			pl := &fakePlugins{}
			reg := prometheus.NewRegistry()
			svc, err := New(Config{Now: clk.now, Batch: 3, Grace: 72 * time.Hour}, st, filter, pl, reg)
			if err != nil {
				t.Fatal(err)
			}
			f(t, &env{st: st, clk: clk, svc: svc, filter: filter, plugins: pl, reg: reg})
		})
	}
}

var seq int

func mk(kind event.Kind, g, user string, at time.Time, d event.Data) event.Event {
	seq++
	e := event.Event{ID: fmt.Sprintf("e%d", seq), Kind: kind, GuildID: g, UserID: user, At: at, Data: d}
	if kind == event.KindMessageCreate || kind == event.KindTypingStart {
		e.ChannelID = chanID
	}
	return e
}

func allOn(g string) store.GuildSettings {
	return store.GuildSettings{GuildID: g, Tracking: store.Tracking{Presence: true, Messages: true, Typing: true, Voice: true, Members: true},
		Retention: store.DefaultRetention()}
}

func TestFilter(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		typing := mk(event.KindTypingStart, guild, alice, t0, &event.TypingStart{})
		meta := mk(event.KindGuildUpdate, guild, "", t0, &event.GuildUpdate{Name: "G"})
		presence := mk(event.KindPresenceUpdate, guild, alice, t0, &event.Presence{Status: event.StatusOnline})
		check := func(ev event.Event, want string) {
			t.Helper()
			if got := e.filter.NotCollected(&ev); got != want {
				t.Errorf("%s in %s by %s: %q, want %q", ev.Kind, ev.GuildID, ev.UserID, got, want)
			}
		}
		check(typing, ReasonNotConfigured)
		check(meta, "")
		g := allOn(guild)
		g.Tracking.Presence = false
		if err := e.svc.SaveSettings(ctx, g); err != nil {
			t.Fatal(err)
		}
		check(typing, "") // at once: no poll needed
		check(presence, ReasonNotTracked)
		if err := e.svc.AddOptOut(ctx, store.OptOut{UserID: alice, GuildID: guild2}); err != nil {
			t.Fatal(err)
		}
		check(typing, "")
		if err := e.svc.AddOptOut(ctx, store.OptOut{UserID: alice}); err != nil {
			t.Fatal(err)
		}
		check(typing, ReasonOptedOut)
		check(meta, "")
		if _, err := e.svc.RequestGuildRemoval(ctx, guild, "owner", false); err != nil {
			t.Fatal(err)
		}
		check(meta, ReasonGuildRemoved)
	})
}

// TestFilterFollowsOtherInstances: a change made through one instance's
// filter reaches another's through the signal bus (in-process, and Redis
// when SPYWATCHER_TEST_REDIS_URL is set), and through the poll without one.
func TestFilterFollowsOtherInstances(t *testing.T) {
	buses := map[string]func(t *testing.T) Notifier{"local": func(*testing.T) Notifier { return bus.NewSignals() }}
	if u := os.Getenv("SPYWATCHER_TEST_REDIS_URL"); u != "" {
		buses["redis"] = func(t *testing.T) Notifier {
			opts, err := redis.ParseURL(u)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { rdb.Close() })
			return bus.NewRedisSignals(rdb, nil)
		}
	} else {
		t.Log("SPYWATCHER_TEST_REDIS_URL unset: the Redis signal case is skipped")
	}
	buses["poll only"] = func(*testing.T) Notifier { return nil }
	for name, mkBus := range buses {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "p.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			n := mkBus(t)
			a, err := NewFilter(ctx, st, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewFilter(ctx, st, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			poll := time.Hour
			if n == nil {
				poll = 10 * time.Millisecond
			}
			done := make(chan struct{})
			go func() { b.Run(ctx, poll); close(done) }()
			defer func() { cancel(); <-done }()
			svc, _ := New(Config{}, st, a, nil, nil)
			ev := mk(event.KindTypingStart, guild, alice, t0, &event.TypingStart{})
			// The subscription is live once Run started; publish until b sees it.
			deadline := time.Now().Add(10 * time.Second)
			for b.NotCollected(&ev) != "" {
				if time.Now().After(deadline) {
					t.Fatal("the other instance never saw the change")
				}
				if err := svc.SaveSettings(ctx, allOn(guild)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// TestFilterCatchesUpWhenRunStarts: a change signalled after an instance
// loaded its filter but before Run subscribed (a host installs its plugins
// in between) is seen as soon as Run starts, not at the first poll.
func TestFilterCatchesUpWhenRunStarts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "p.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := bus.NewSignals()
	a, err := NewFilter(ctx, st, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFilter(ctx, st, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := New(Config{}, st, a, nil, nil)
	if err := svc.SaveSettings(ctx, allOn(guild)); err != nil { // signalled to nobody
		t.Fatal(err)
	}
	ev := mk(event.KindTypingStart, guild, alice, t0, &event.TypingStart{})
	if got := b.NotCollected(&ev); got != ReasonNotConfigured {
		t.Fatalf("before Run: %q", got)
	}
	done := make(chan struct{})
	go func() { b.Run(ctx, time.Hour); close(done) }() // no poll within the test
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for b.NotCollected(&ev) != "" {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the change made before it started")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(t *testing.T, st *store.Store, table, g string) int {
	t.Helper()
	ex, err := st.ExportUser(context.Background(), g, alice)
	if err != nil {
		t.Fatal(err)
	}
	return len(ex.Tables[table])
}

// TestRetentionWithClock: rows past a guild's window go, newer rows and
// other guilds' rows stay; aggregates are kept unless the guild says.
func TestRetentionWithClock(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := allOn(guild)
		g.Retention.EventsDays, g.Retention.MessagesDays, g.Retention.PresenceDays = 2, 5, 0
		if err := e.svc.SaveSettings(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SaveSettings(ctx, allOn(guild2)); err != nil {
			t.Fatal(err)
		}
		var evs []event.Event
		for day := range 10 {
			at := t0.Add(time.Duration(day) * 24 * time.Hour)
			for _, gid := range []string{guild, guild2} {
				evs = append(evs, mk(event.KindMessageCreate, gid, alice, at, &event.MessageCreate{MessageID: fmt.Sprintf("11%d%d00000000000000", day, len(gid)%7), Length: 3}),
					mk(event.KindTypingStart, gid, alice, at, &event.TypingStart{}))
			}
		}
		if _, err := e.st.Ingest(ctx, evs); err != nil {
			t.Fatal(err)
		}
		e.clk.add(10 * 24 * time.Hour) // now: day 10; the events span days 0..9
		rep, err := e.svc.Purge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// events: keep days 8, 9 (2 days) -> 8 days of 2 events go
		if rep.Rows["events"] != 16 || rep.Rows["messages"] != 5 || rep.Rows["typing"] != 5 {
			t.Fatalf("purged %v", rep.Rows)
		}
		if n := count(t, e.st, "events", guild); n != 4 {
			t.Fatalf("events left in the guild: %d, want 4", n)
		}
		if n := count(t, e.st, "activity_hourly", guild); n != 10 {
			t.Fatalf("aggregates left: %d, want all 10 (aggregates_days 0 keeps them)", n)
		}
		if n := count(t, e.st, "events", guild2); n != 20 {
			t.Fatalf("the other guild (30-day window) lost events: %d left", n)
		}
		if got := testutil.ToFloat64(e.svc.m.purged.WithLabelValues("events")); got != 16 {
			t.Fatalf("rows purged metric %v", got)
		}
		if testutil.ToFloat64(e.svc.m.lastRun) != float64(e.clk.now().Unix()) {
			t.Fatal("last run metric not set")
		}
		// A second run finds nothing more.
		if rep, _ := e.svc.Purge(ctx); rep.Rows["events"] != 0 {
			t.Fatalf("second run purged %v", rep.Rows)
		}
	})
}

// TestGuildRemovedAfterGrace: the bot leaves (guild.update removed); the
// data stays through the grace period and goes after it.
func TestGuildRemovedAfterGrace(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if err := e.svc.SaveSettings(ctx, allOn(guild)); err != nil {
			t.Fatal(err)
		}
		evs := []event.Event{
			mk(event.KindTypingStart, guild, alice, t0, &event.TypingStart{}),
			mk(event.KindTypingStart, guild2, alice, t0, &event.TypingStart{}),
			mk(event.KindGuildUpdate, guild, "", t0.Add(time.Minute), &event.GuildUpdate{Removed: true}),
		}
		if _, err := e.st.Ingest(ctx, evs); err != nil {
			t.Fatal(err)
		}
		e.clk.add(71 * time.Hour)
		if rep, err := e.svc.Purge(ctx); err != nil || len(rep.GuildsPurged) != 0 {
			t.Fatalf("within the grace period: %+v %v", rep, err)
		}
		e.clk.add(2 * time.Hour)
		rep, err := e.svc.Purge(ctx)
		if err != nil || len(rep.GuildsPurged) != 1 || rep.GuildsPurged[0] != guild {
			t.Fatalf("after the grace period: %+v %v", rep, err)
		}
		if _, err := e.st.GetGuild(ctx, guild); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("guild still there: %v", err)
		}
		if g, _ := e.st.GetGuildSettings(ctx, guild); g.Configured {
			t.Fatal("settings survived the guild")
		}
		if n := count(t, e.st, "typing", guild2); n != 1 {
			t.Fatalf("the other guild lost data: %d", n)
		}
		reqs, _ := e.st.ListPrivacyRequests(ctx, guild, 10)
		if len(reqs) != 1 || reqs[0].Kind != "guild_delete" || reqs[0].Status != "done" {
			t.Fatalf("requests %+v", reqs)
		}
		if testutil.ToFloat64(e.svc.m.guilds) != 1 {
			t.Fatal("guilds deleted metric")
		}
	})
}

func TestDeleteUserRecordsPluginResults(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if _, err := e.st.Ingest(ctx, []event.Event{mk(event.KindTypingStart, guild, alice, t0, &event.TypingStart{})}); err != nil {
			t.Fatal(err)
		}
		e.plugins.fail = true
		req, err := e.svc.DeleteUser(ctx, DeleteRequest{UserID: alice, By: "acc-1", Reason: "email"})
		if err != nil {
			t.Fatal(err)
		}
		var det DeleteDetail
		json.Unmarshal(req.Detail, &det) //nolint:errcheck // checked below
		if req.Status != "partial" || len(det.Plugins) != 1 || det.Plugins[0].Error != "trap" || det.Rows["typing"] != 1 {
			t.Fatalf("request %+v detail %+v", req, det)
		}
		if len(e.plugins.calls) != 1 || e.plugins.calls[0] != "/"+alice {
			t.Fatalf("plugin calls %v", e.plugins.calls)
		}
		if n := count(t, e.st, "typing", ""); n != 0 {
			t.Fatalf("typing rows left: %d", n)
		}
		page, err := e.st.ListAudit(ctx, store.AuditQuery{Action: "privacy.delete_user"})
		if err != nil || len(page.Entries) != 1 || page.Entries[0].Actor != "acc-1" {
			t.Fatalf("audit %+v %v", page.Entries, err)
		}
		if _, err := e.svc.DeleteUser(ctx, DeleteRequest{UserID: "nope"}); err == nil {
			t.Fatal("a malformed user ID was accepted")
		}
	})
}

// TestLeaverDeletedWhenGuildOptsIn: a member.leave in a guild with
// delete_on_leave deletes the member's data there, not elsewhere.
func TestLeaverDeletedWhenGuildOptsIn(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := allOn(guild)
		g.DeleteOnLeave = true
		if err := e.svc.SaveSettings(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SaveSettings(ctx, allOn(guild2)); err != nil {
			t.Fatal(err)
		}
		leave1 := mk(event.KindMemberLeave, guild, alice, t0.Add(time.Minute), &event.MemberLeave{})
		leave2 := mk(event.KindMemberLeave, guild2, alice, t0.Add(time.Minute), &event.MemberLeave{})
		evs := []event.Event{
			mk(event.KindTypingStart, guild, alice, t0, &event.TypingStart{}),
			mk(event.KindTypingStart, guild2, alice, t0, &event.TypingStart{}),
			leave1, leave2,
		}
		if _, err := e.st.Ingest(ctx, evs); err != nil {
			t.Fatal(err)
		}
		ch := make(chan []event.Event, 1)
		ch <- []event.Event{leave1, leave2}
		close(ch)
		e.svc.WatchLeaves(ctx, ch)
		if n := count(t, e.st, "members", guild); n != 0 {
			t.Fatalf("the leaver is still a member of the opted-in guild")
		}
		if n := count(t, e.st, "typing", guild2); n != 1 {
			t.Fatalf("data in the other guild went: %d", n)
		}
		reqs, _ := e.st.ListPrivacyRequests(ctx, guild, 10)
		if len(reqs) != 1 || reqs[0].RequestedBy != "member-left" {
			t.Fatalf("requests %+v", reqs)
		}
		// A leave the watcher missed is caught by the retention run.
		bobLeft := mk(event.KindMemberLeave, guild, bob, t0.Add(2*time.Minute), &event.MemberLeave{})
		if _, err := e.st.Ingest(ctx, []event.Event{mk(event.KindTypingStart, guild, bob, t0, &event.TypingStart{}), bobLeft}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		if reqs, _ := e.st.ListPrivacyRequests(ctx, guild, 10); len(reqs) != 2 {
			t.Fatalf("missed leave not caught: %+v", reqs)
		}
		if left, _ := e.st.LeftMembers(ctx, guild, 10); len(left) != 0 {
			t.Fatalf("leavers still stored: %v", left)
		}
		if left, _ := e.st.LeftMembers(ctx, guild2, 10); len(left) != 1 {
			t.Fatalf("the other guild keeps leavers: %v", left)
		}
	})
}
