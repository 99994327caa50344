package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// The conformance suite: every test runs against SQLite, and against
// PostgreSQL when SPYWATCHER_TEST_POSTGRES_URL names a database (each test
// gets its own schema there), and through PgBouncer in transaction pooling
// mode when SPYWATCHER_TEST_PGBOUNCER_URL is set (a database per test).

type storeMaker struct {
	name      string
	open      func(t testing.TB) (dsn string)
	pgbouncer bool // Options.PgBouncer
}

func makers(t testing.TB) []storeMaker {
	ms := []storeMaker{{"sqlite", func(t testing.TB) string {
		return filepath.Join(t.TempDir(), "spywatcher.db")
	}, false}}
	if pgb := os.Getenv(storetest.PgBouncerEnv); pgb != "" {
		ms = append(ms, storeMaker{"pgbouncer", func(t testing.TB) string { return storetest.PgBouncerDSN(t, pgb) }, true})
	} else {
		t.Log(storetest.PgBouncerEnv + " not set: skipping the PgBouncer (transaction pooling) run of the store suite")
	}
	pg := os.Getenv(storetest.PostgresEnv)
	if pg == "" {
		t.Log("SPYWATCHER_TEST_POSTGRES_URL not set: skipping the PostgreSQL half of the store suite")
		return ms
	}
	return append(ms, storeMaker{"postgres", func(t testing.TB) string { return storetest.PostgresDSN(t, pg) }, false})
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func forEachStore(t *testing.T, f func(t *testing.T, s *Store, clk *clock)) {
	for _, m := range makers(t) {
		t.Run(m.name, func(t *testing.T) {
			clk := &clock{t: t0.Add(24 * time.Hour)}
			s, err := Open(context.Background(), m.open(t), Options{Now: clk.now, PgBouncer: m.pgbouncer})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, s, clk)
		})
	}
}

const (
	guild   = "41771983423143937"
	guild2  = "41771983423143999"
	channel = "41771983423143938"
	alice   = "80351110224678912"
	bob     = "80351110224678913"
	carol   = "80351110224678914"
	roleA   = "41771983423143940"
	roleB   = "41771983423143941"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

var evSeq atomic.Int64

func ev(kind event.Kind, user string, at time.Duration, d event.Data) event.Event {
	e := event.Event{
		ID: fmt.Sprintf("t-%d", evSeq.Add(1)), Kind: kind, GuildID: guild, UserID: user,
		ChannelID: channel, At: t0.Add(at), Data: d,
	}
	if kind == event.KindPresenceUpdate || kind == event.KindMemberJoin || kind == event.KindMemberUpdate ||
		kind == event.KindMemberLeave || kind == event.KindBanAdd || kind == event.KindBanRemove || kind == event.KindVoiceState {
		e.ChannelID = ""
	}
	if err := e.Validate(); err != nil {
		panic(err)
	}
	return e
}

func presence(user string, at time.Duration, status event.Status, cs event.ClientStatus) event.Event {
	return ev(event.KindPresenceUpdate, user, at, &event.Presence{Status: status, ClientStatus: cs})
}

func message(user string, at time.Duration, id string) event.Event {
	return ev(event.KindMessageCreate, user, at, &event.MessageCreate{MessageID: id, Length: 5, Content: "hello", Mentions: []string{bob}})
}

func join(user, name string, at time.Duration, roles ...string) event.Event {
	return ev(event.KindMemberJoin, user, at, &event.MemberJoin{User: &event.User{ID: user, Username: name}, Roles: roles})
}

func mustIngest(t *testing.T, s *Store, evs ...event.Event) IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestIngestIsIdempotent(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		a := join(alice, "alice", 0)
		m := message(alice, time.Minute, "1100000000000000001")
		res := mustIngest(t, s, a, m, a) // a repeated within the batch
		if len(res.Stored) != 2 || res.Duplicates != 1 {
			t.Fatalf("first ingest: stored %d dup %d", len(res.Stored), res.Duplicates)
		}
		res = mustIngest(t, s, m, a)
		if len(res.Stored) != 0 || res.Duplicates != 2 {
			t.Fatalf("replay: stored %d dup %d, want 0 and 2", len(res.Stored), res.Duplicates)
		}
		// A batch mixing a stored event and a new one (on PostgreSQL the
		// fast COPY fails on the first and the batch is inserted again).
		m2 := message(alice, 2*time.Minute, "1100000000000000002")
		res = mustIngest(t, s, m, m2)
		if len(res.Stored) != 1 || res.Stored[0].ID != m2.ID || res.Duplicates != 1 {
			t.Fatalf("mixed batch: stored %v dup %d, want %s and 1", res.Stored, res.Duplicates, m2.ID)
		}
		mem, err := s.GetMember(context.Background(), guild, alice)
		if err != nil {
			t.Fatal(err)
		}
		if mem.MessageCount != 2 {
			t.Fatalf("message count %d after a replay, want 2", mem.MessageCount)
		}
		act, err := s.Activity(context.Background(), guild, "", t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(act) != 1 || act[0].Messages != 2 || act[0].Joins != 1 {
			t.Fatalf("activity after replay: %+v", act)
		}
	})
}

func TestMessageContentIsNotStored(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		mustIngest(t, s, message(alice, 0, "1100000000000000002"))
		page, err := s.ListEvents(context.Background(), guild, EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		got := page.Events[0].Data.(*event.MessageCreate)
		if got.Content != "" || got.Length != 5 || got.MessageID != "1100000000000000002" {
			t.Fatalf("stored message payload %+v: content must be stripped, metadata kept", got)
		}
		var n int
		s.r.QueryRow(`SELECT COUNT(*) FROM events WHERE data LIKE '%hello%'`).Scan(&n)
		if s.dialect == Postgres {
			s.r.QueryRow(`SELECT COUNT(*) FROM events WHERE data::text LIKE '%hello%'`).Scan(&n)
		}
		if n != 0 {
			t.Fatal("message content found in the events table")
		}
	})
}

func TestPresenceSessionsPerClient(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, clk *clock) {
		ctx := context.Background()
		on := event.StatusOnline
		mustIngest(t, s,
			presence(alice, 0, on, event.ClientStatus{Desktop: on}),
			presence(alice, 10*time.Minute, on, event.ClientStatus{Desktop: on, Mobile: on}),
		)
		// Another batch: the open stretches must survive between batches.
		mustIngest(t, s,
			presence(alice, 30*time.Minute, event.StatusIdle, event.ClientStatus{Desktop: event.StatusIdle, Mobile: on}),
			presence(alice, 40*time.Minute, on, event.ClientStatus{Mobile: on}),
			// Out of order: older than what is known, kept in the log only.
			presence(alice, 5*time.Minute, event.StatusOffline, event.ClientStatus{}),
		)
		p, err := s.OnlineNow(ctx, guild, 10)
		if err != nil {
			t.Fatal(err)
		}
		if p.Online != 1 || p.ByClient["mobile"] != 1 || p.ByClient["desktop"] != 0 || p.MultiClient != 0 {
			t.Fatalf("online now: %+v", p)
		}
		mustIngest(t, s, presence(alice, 60*time.Minute, event.StatusOffline, event.ClientStatus{}))
		clk.t = t0.Add(2 * time.Hour)
		st, err := s.MemberStats(ctx, guild, alice, t0, t0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]PresenceTime{
			"desktop": {Seconds: 40 * 60, ByStatus: map[string]int64{"online": 30 * 60, "idle": 10 * 60}},
			"mobile":  {Seconds: 50 * 60, ByStatus: map[string]int64{"online": 50 * 60}},
			"web":     {ByStatus: map[string]int64{}},
		}
		if !reflect.DeepEqual(st.Presence, want) {
			t.Fatalf("presence time:\n got %+v\nwant %+v", st.Presence, want)
		}
		// A window that cuts the sessions counts only its part.
		st, _ = s.MemberStats(ctx, guild, alice, t0.Add(20*time.Minute), t0.Add(35*time.Minute))
		if st.Presence["desktop"].Seconds != 15*60 || st.Presence["mobile"].Seconds != 15*60 {
			t.Fatalf("clipped window: %+v", st.Presence)
		}
		p, _ = s.OnlineNow(ctx, guild, 10)
		if p.Online != 0 {
			t.Fatalf("still online after going offline: %+v", p)
		}
	})
}

func TestOpenSessionCountsUntilNow(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, clk *clock) {
		on := event.StatusOnline
		mustIngest(t, s, presence(bob, 0, on, event.ClientStatus{Web: on, Desktop: on}))
		clk.t = t0.Add(90 * time.Minute)
		st, err := s.MemberStats(context.Background(), guild, bob, t0, t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if st.Presence["web"].Seconds != 90*60 || st.Presence["desktop"].Seconds != 90*60 {
			t.Fatalf("open sessions: %+v", st.Presence)
		}
		p, _ := s.OnlineNow(context.Background(), guild, 10)
		if p.MultiClient != 1 || p.ByClient["web"] != 1 {
			t.Fatalf("multi-client: %+v", p)
		}
	})
}

func TestMembersRolesAndLeaving(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		mustIngest(t, s, join(alice, "alice", 0, roleA), join(bob, "bob", time.Minute))
		mustIngest(t, s,
			ev(event.KindMemberUpdate, alice, 2*time.Minute, &event.MemberUpdate{RolesAdded: []string{roleB}}),
			// A full role list without a diff: the store works the diff out.
			ev(event.KindMemberUpdate, bob, 3*time.Minute, &event.MemberUpdate{Roles: []string{roleA}}),
		)
		mustIngest(t, s, ev(event.KindMemberUpdate, alice, 4*time.Minute, &event.MemberUpdate{Roles: []string{roleB}}))
		m, err := s.GetMember(ctx, guild, alice)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Roles, []string{roleB}) || m.Name != "alice" || m.JoinedAt == nil || !m.JoinedAt.Equal(t0) {
			t.Fatalf("alice: %+v", m)
		}
		if m.AccountCreated.Year() != 2015 {
			t.Fatalf("account age from snowflake: %v", m.AccountCreated)
		}
		b, _ := s.GetMember(ctx, guild, bob)
		if !reflect.DeepEqual(b.Roles, []string{roleA}) {
			t.Fatalf("bob's roles %v", b.Roles)
		}
		var changes int
		s.r.QueryRow(`SELECT COUNT(*) FROM role_changes`).Scan(&changes)
		if changes != 3 { // alice +B, bob +A, alice -A
			t.Fatalf("role changes %d, want 3", changes)
		}
		mustIngest(t, s, ev(event.KindMemberLeave, bob, 5*time.Minute, &event.MemberLeave{}))
		page, err := s.ListMembers(ctx, guild, MemberQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Members) != 1 || page.Members[0].UserID != alice {
			t.Fatalf("members after bob left: %+v", page.Members)
		}
		page, _ = s.ListMembers(ctx, guild, MemberQuery{IncludeLeft: true})
		if len(page.Members) != 2 {
			t.Fatalf("with left members: %d", len(page.Members))
		}
		b, _ = s.GetMember(ctx, guild, bob)
		if b.LeftAt == nil || len(b.Roles) != 0 {
			t.Fatalf("bob after leaving: %+v", b)
		}
		if _, err := s.GetMember(ctx, guild, carol); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown member: %v", err)
		}
	})
}

func TestListMembersSearchSortPaginate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		var evs []event.Event
		for i := 0; i < 25; i++ {
			id := event.NewSnowflake(t0.Add(-time.Duration(i)*time.Hour), 1, uint64(i))
			evs = append(evs, join(id, fmt.Sprintf("user%02d", i), time.Duration(i)*time.Second))
			for j := 0; j < i%4; j++ {
				evs = append(evs, message(id, time.Duration(i)*time.Minute+time.Duration(j)*time.Second, event.NewSnowflake(t0, 2, uint64(i*10+j))))
			}
		}
		mustIngest(t, s, evs...)
		for _, sortBy := range MemberSorts {
			for _, desc := range []bool{false, true} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					page, err := s.ListMembers(ctx, guild, MemberQuery{Sort: sortBy, Desc: desc, Limit: 7, Cursor: cursor})
					if err != nil {
						t.Fatalf("%s: %v", sortBy, err)
					}
					for _, m := range page.Members {
						got = append(got, m.UserID)
					}
					if page.Next == "" {
						break
					}
					if pages > 10 {
						t.Fatal("pagination does not end")
					}
					cursor = page.Next
				}
				if len(got) != 25 || len(uniq(got)) != 25 {
					t.Fatalf("sort %s desc=%v: %d members over pages (%d distinct), want 25", sortBy, desc, len(got), len(uniq(got)))
				}
			}
		}
		page, _ := s.ListMembers(ctx, guild, MemberQuery{Sort: "messages", Desc: true, Limit: 1})
		if page.Members[0].MessageCount != 3 {
			t.Fatalf("top by messages has %d", page.Members[0].MessageCount)
		}
		page, _ = s.ListMembers(ctx, guild, MemberQuery{Search: "USER1"})
		if len(page.Members) != 10 { // user10..user19
			t.Fatalf("search found %d", len(page.Members))
		}
		page, _ = s.ListMembers(ctx, guild, MemberQuery{Search: "%"})
		if len(page.Members) != 0 {
			t.Fatalf("%% must be matched literally, found %d", len(page.Members))
		}
		first, _ := s.ListMembers(ctx, guild, MemberQuery{Sort: "name", Limit: 5})
		if _, err := s.ListMembers(ctx, guild, MemberQuery{Sort: "joined", Cursor: first.Next}); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("cursor of another ordering: %v", err)
		}
		if _, err := s.ListMembers(ctx, guild, MemberQuery{Cursor: "!!!"}); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("garbage cursor: %v", err)
		}
		if _, err := s.ListMembers(ctx, guild, MemberQuery{Sort: "shoe size"}); err == nil {
			t.Fatal("unknown sort accepted")
		}
	})
}

func uniq(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func TestEventsTimelineFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		var evs []event.Event
		for i := 0; i < 30; i++ {
			user := alice
			if i%3 == 0 {
				user = bob
			}
			evs = append(evs, ev(event.KindTypingStart, user, time.Duration(i)*time.Minute, &event.TypingStart{}))
		}
		evs = append(evs, ev(event.KindBanAdd, carol, 90*time.Minute, &event.BanAdd{Reason: "spam"}))
		mustIngest(t, s, evs...)
		var seen []string
		cursor := ""
		for {
			page, err := s.ListEvents(ctx, guild, EventQuery{Limit: 8, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				seen = append(seen, e.ID)
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		if len(seen) != 31 || len(uniq(seen)) != 31 || seen[0] != evs[30].ID {
			t.Fatalf("timeline: %d events, first %s", len(seen), seen[0])
		}
		page, _ := s.ListEvents(ctx, guild, EventQuery{UserID: bob, Limit: 100})
		if len(page.Events) != 10 {
			t.Fatalf("bob's events: %d", len(page.Events))
		}
		page, _ = s.ListEvents(ctx, guild, EventQuery{Kinds: []event.Kind{event.KindBanAdd}})
		if len(page.Events) != 1 || page.Events[0].Data.(*event.BanAdd).Reason != "spam" {
			t.Fatalf("bans: %+v", page.Events)
		}
		page, _ = s.ListEvents(ctx, guild, EventQuery{From: t0.Add(10 * time.Minute), To: t0.Add(20 * time.Minute), Asc: true})
		if len(page.Events) != 10 || !page.Events[0].At.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("time window: %d events", len(page.Events))
		}
		page, _ = s.ListEvents(ctx, guild2, EventQuery{})
		if len(page.Events) != 0 {
			t.Fatal("another guild's timeline is not empty")
		}
		c, _ := s.GetMember(ctx, guild, carol)
		if !c.Banned {
			t.Fatal("carol not marked banned")
		}
		mustIngest(t, s, ev(event.KindBanRemove, carol, 100*time.Minute, &event.BanRemove{}))
		c, _ = s.GetMember(ctx, guild, carol)
		var lifted int
		s.r.QueryRow(`SELECT COUNT(*) FROM bans WHERE lifted_at IS NOT NULL`).Scan(&lifted)
		if c.Banned || lifted != 1 {
			t.Fatalf("ban not lifted: banned=%v lifted rows=%d", c.Banned, lifted)
		}
	})
}

func TestMessagesEditsDeletesAndActivity(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		const id = "1100000000000000009"
		mustIngest(t, s,
			message(alice, 0, id),
			ev(event.KindMessageUpdate, alice, time.Minute, &event.MessageUpdate{MessageID: id, Length: 9}),
			message(alice, 70*time.Minute, "1100000000000000010"),
		)
		mustIngest(t, s, ev(event.KindMessageDelete, "", 2*time.Minute, &event.MessageDelete{MessageID: id}))
		var length, edits int
		var deleted sql.NullInt64
		if err := s.r.QueryRow(s.q(`SELECT length, edit_count, deleted_at FROM messages WHERE id = ?`), id).Scan(&length, &edits, &deleted); err != nil {
			t.Fatal(err)
		}
		if length != 9 || edits != 1 || !deleted.Valid {
			t.Fatalf("message row: length %d edits %d deleted %v", length, edits, deleted)
		}
		act, err := s.Activity(ctx, guild, alice, t0, t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(act) != 3 || act[0].Messages != 1 || act[0].Edits != 1 || act[1].Messages != 1 || act[2].Messages != 0 {
			t.Fatalf("alice's hours: %+v", act)
		}
		g, _ := s.Activity(ctx, guild, "", t0, t0.Add(time.Hour))
		if g[0].Deletes != 1 {
			t.Fatalf("guild deletes: %+v", g)
		}
		m, _ := s.GetMember(ctx, guild, alice)
		if m.MessageCount != 2 || m.LastMessageAt == nil || !m.LastMessageAt.Equal(t0.Add(70*time.Minute)) {
			t.Fatalf("alice: %+v", m)
		}
	})
}

func TestGuildsAndChannels(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		g := ev(event.KindGuildUpdate, "", 0, &event.GuildUpdate{Name: "Chess Club", MemberCount: 42})
		g.ChannelID = ""
		c := ev(event.KindChannelUpdate, "", 0, &event.ChannelUpdate{Name: "general", Type: event.ChannelText})
		mustIngest(t, s, g, c, join(alice, "alice", time.Minute), presence(alice, 2*time.Minute, event.StatusDND, event.ClientStatus{Mobile: event.StatusDND}))
		gs, err := s.ListGuilds(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != 1 || gs[0].Name != "Chess Club" || gs[0].MemberCount != 42 || gs[0].Members != 1 || gs[0].Online != 1 {
			t.Fatalf("guilds: %+v", gs)
		}
		// A later update without a name keeps the name.
		mustIngest(t, s, ev(event.KindGuildUpdate, "", time.Hour, &event.GuildUpdate{MemberCount: 43}))
		one, err := s.GetGuild(ctx, guild)
		if err != nil || one.Name != "Chess Club" || one.MemberCount != 43 {
			t.Fatalf("guild after update: %+v %v", one, err)
		}
		if _, err := s.GetGuild(ctx, guild2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown guild: %v", err)
		}
		chs, err := s.ListChannels(ctx, guild)
		if err != nil || len(chs) != 1 || chs[0].Name != "general" {
			t.Fatalf("channels: %+v %v", chs, err)
		}
		latest, err := s.LatestEventAt(ctx, guild)
		if err != nil || !latest.Equal(t0.Add(time.Hour)) {
			t.Fatalf("latest event: %v %v", latest, err)
		}
	})
}

func TestAdminTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		if n, _ := s.CountAdminTokens(ctx); n != 0 {
			t.Fatal("fresh store has tokens")
		}
		if err := s.AddAdminToken(ctx, "tok1", "hash1"); err != nil {
			t.Fatal(err)
		}
		if id, err := s.AdminTokenID(ctx, "hash1"); err != nil || id != "tok1" {
			t.Fatalf("lookup: %q %v", id, err)
		}
		if _, err := s.AdminTokenID(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}
	})
}

func TestReadyAndNewerSchemaRefused(t *testing.T) {
	for _, m := range makers(t) {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := m.open(t)
			s, err := Open(ctx, dsn, Options{PgBouncer: m.pgbouncer})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Ready(ctx); err != nil {
				t.Fatalf("ready: %v", err)
			}
			cur, latest, err := s.MigrationStatus(ctx)
			if err != nil || cur != latest || cur == 0 {
				t.Fatalf("migration status %d/%d %v", cur, latest, err)
			}
			if _, err := s.w.Exec(s.q(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, true)`), latest+1); err != nil {
				t.Fatal(err)
			}
			// A running instance stays ready when a newer release migrated
			// (rolling upgrade); only a start is refused, below.
			if err := s.Ready(ctx); err != nil {
				t.Fatalf("not ready after a newer release migrated: %v", err)
			}
			if _, err := s.w.Exec(s.q(`DELETE FROM goose_db_version WHERE version_id >= ?`), latest); err != nil {
				t.Fatal(err)
			}
			if err := s.Ready(ctx); err == nil {
				t.Fatal("ready with a migration missing")
			}
			if _, err := s.w.Exec(s.q(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, true), (?, true)`), latest, latest+1); err != nil {
				t.Fatal(err)
			}
			s.Close()
			_, err = Open(ctx, dsn, Options{PgBouncer: m.pgbouncer})
			if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
				t.Fatalf("opening a newer database: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "", Options{}); err == nil {
		t.Fatal("empty DSN accepted")
	}
	_, err := Open(ctx, "postgres://nobody:sekrit@127.0.0.1:1/none?connect_timeout=1", Options{})
	if err == nil {
		t.Fatal("unreachable postgres accepted")
	}
	if strings.Contains(err.Error(), "sekrit") {
		t.Fatalf("password leaked in %v", err)
	}
	if !IsTransient(err) {
		t.Fatalf("connection refused should be transient: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "not-a-db"), []byte("this is not sqlite, just text that is long enough to look like a header................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, filepath.Join(dir, "not-a-db"), Options{}); err == nil {
		t.Fatal("a text file opened as a database")
	}
}

func TestRebind(t *testing.T) {
	s := &Store{dialect: Postgres}
	got := s.q(`SELECT '?' FROM x WHERE a = ? AND b IN (?, ?)`)
	if got != `SELECT '?' FROM x WHERE a = $1 AND b IN ($2, $3)` {
		t.Fatal(got)
	}
}

// TestScoresAndHistory: the latest score per member and scorer, ranked;
// history keeps the scores a moved score replaced, and a first score costs
// no history row (the current score is the newest point).
func TestScoresAndHistory(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		const g, sc = "41771983423143937", "ghost-score"
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		put := func(user string, score float64, when time.Time, moved bool) {
			t.Helper()
			if err := s.PutScores(ctx, []MemberScore{{GuildID: g, Scorer: sc, UserID: user, Score: score,
				Factors: json.RawMessage(`[]`), Explanation: "why", RunID: "r", ComputedAt: when, History: moved}}); err != nil {
				t.Fatal(err)
			}
		}
		const u = "80351110224678912"
		put(u, 40, at, false)
		var n int
		if err := s.r.QueryRow(`SELECT COUNT(*) FROM score_history`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("history rows after a first score: %d %v", n, err)
		}
		put(u, 40.2, at.Add(time.Hour), false)  // a small move: replaced, not kept
		put(u, 72.5, at.Add(2*time.Hour), true) // a move: 40.2 becomes a point
		hist, err := s.ScoreHistory(ctx, g, u, sc, time.Time{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].Score != 40.2 || !hist[0].At.Equal(at.Add(time.Hour)) || hist[1].Score != 72.5 {
			t.Fatalf("history %+v", hist)
		}
		if hist, _ := s.ScoreHistory(ctx, g, u, sc, at.Add(90*time.Minute), 10); len(hist) != 1 || hist[0].Score != 72.5 {
			t.Fatalf("history since: %+v", hist)
		}
		latest, err := s.LatestScores(ctx, g, sc)
		if err != nil || latest[u] != 72.5 {
			t.Fatalf("latest %v %v", latest, err)
		}
	})
}
