package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/spywatcher/spywatcher/host/internal/sealing"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// userLike reports whether a column names a person.
func userLike(table, col string) bool {
	switch {
	case table == "users" && col == "id":
		return true
	case col == "user_id", strings.HasSuffix(col, "_user_id"), col == "discord_id", col == "member_id", col == "author_id":
		return true
	}
	return false
}

// TestPersonalTablesRegistered fails when a table with a column naming a
// person is missing from PersonalTables: such a table would escape export
// and deletion.
func TestPersonalTablesRegistered(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		schema, err := s.SchemaColumns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		reg := map[[2]string]PersonalTable{}
		for _, p := range PersonalTables {
			reg[[2]string{p.Table, p.UserColumn}] = p
			cols := strings.Join(schema[p.Table], ",")
			if !strings.Contains(","+cols+",", ","+p.UserColumn+",") {
				t.Errorf("PersonalTables names %s.%s, which is not in the schema", p.Table, p.UserColumn)
			}
			if p.GuildColumn != "" && !strings.Contains(","+cols+",", ","+p.GuildColumn+",") {
				t.Errorf("PersonalTables names %s.%s, which is not in the schema", p.Table, p.GuildColumn)
			}
		}
		found := 0
		for table, cols := range schema {
			for _, c := range cols {
				if !userLike(table, c) {
					continue
				}
				found++
				if _, ok := reg[[2]string{table, c}]; !ok {
					t.Errorf("%s.%s names a person but is not in store.PersonalTables: add it (or say why it is kept)", table, c)
				}
			}
		}
		if found < 12 {
			t.Fatalf("only %d person columns found: is the schema query wrong?", found)
		}
	})
}

// TestGuildTablesRegistered fails when a table with a guild column is
// missing from GuildTables: its rows would survive a guild's removal.
func TestGuildTablesRegistered(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		schema, err := s.SchemaColumns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		reg := map[string]bool{}
		for _, g := range GuildTables {
			reg[g.Table+"."+g.GuildColumn] = true
		}
		for table, cols := range schema {
			for _, c := range cols {
				if c == "guild_id" || table == "guilds" && c == "id" {
					if !reg[table+"."+c] {
						t.Errorf("%s.%s is a guild column but %s is not in store.GuildTables", table, c, table)
					}
					delete(reg, table+"."+c)
				}
			}
		}
		for k := range reg {
			t.Errorf("GuildTables names %s, which is not in the schema", k)
		}
	})
}

// seedPeople stores a little of everything for alice and bob in two guilds,
// and plugin data tied to each.
func seedPeople(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	var evs []event.Event
	for _, g := range []string{guild, guild2} {
		for _, u := range []string{alice, bob} {
			in := func(e event.Event) event.Event { e.GuildID = g; e.ID = g + e.ID; return e }
			evs = append(evs,
				in(join(u, "n"+u, 0, roleA)),
				in(presence(u, time.Minute, event.StatusOnline, event.ClientStatus{Desktop: event.StatusOnline})),
				in(presence(u, 2*time.Minute, event.StatusIdle, event.ClientStatus{Mobile: event.StatusIdle})),
				in(message(u, 3*time.Minute, g[10:]+u[10:]+"1")),
				in(ev(event.KindTypingStart, u, 4*time.Minute, &event.TypingStart{})),
				in(ev(event.KindMemberUpdate, u, 5*time.Minute, &event.MemberUpdate{RolesAdded: []string{roleB}})),
				in(ev(event.KindBanAdd, u, 6*time.Minute, &event.BanAdd{Reason: "x"})),
				in(ev(event.KindMemberLeave, u, 7*time.Minute, &event.MemberLeave{})),
			)
		}
	}
	// bob mentions alice: her deletion must scrub his event.
	mention := ev(event.KindMessageCreate, bob, 9*time.Minute, &event.MessageCreate{MessageID: "1100000000000000999", Length: 2, Mentions: []string{alice}})
	evs = append(evs, mention)
	mustIngest(t, s, evs...)
	var n int
	s.r.QueryRowContext(context.Background(), s.q(`SELECT COUNT(*) FROM events WHERE user_id = ? AND `+map[bool]string{true: "data::text", false: "CAST(data AS TEXT)"}[s.dialect == Postgres]+` LIKE ?`), bob, "%"+alice+"%").Scan(&n)
	if n != 1 {
		t.Fatalf("the mention of alice was not stored: %d", n)
	}
	for _, g := range []string{guild, guild2} {
		for _, u := range []string{alice, bob} {
			if err := s.KVSet(ctx, "p1", g, "note:"+u, u, []byte("about "+u), 1<<20); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.KVSet(ctx, "p1", g, "state", "", []byte("guild state"), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
}

// mentions counts rows of every table (but those kept on purpose) where
// any column holds the user ID, in guildID ("" for any).
func mentions(t *testing.T, s *Store, userID, guildID string) map[string]int {
	t.Helper()
	ctx := context.Background()
	schema, err := s.SchemaColumns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, p := range PersonalTables {
		if p.Keep != "" {
			kept[p.Table] = true
		}
	}
	kept["audit_log"] = true
	out := map[string]int{}
	for table, cols := range schema {
		if kept[table] {
			continue
		}
		var conds []string
		hasGuild := false
		for _, c := range cols {
			if c == "guild_id" {
				hasGuild = true
			}
			cast := c
			if s.dialect == Postgres {
				cast = c + "::text"
			} else {
				cast = "CAST(" + c + " AS TEXT)"
			}
			conds = append(conds, cast+" LIKE ?")
		}
		q := `SELECT COUNT(*) FROM ` + table + ` WHERE (` + strings.Join(conds, " OR ") + `)`
		args := make([]any, 0, len(cols)+1)
		for range cols {
			args = append(args, "%"+userID+"%")
		}
		if guildID != "" {
			if !hasGuild {
				continue
			}
			q += ` AND guild_id = ?`
			args = append(args, guildID)
		}
		var n int
		if err := s.r.QueryRowContext(ctx, s.q(q), args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n > 0 {
			out[table] = n
		}
	}
	return out
}

func TestDeleteUserEverywhere(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		seedPeople(t, s)
		if m := mentions(t, s, alice, ""); len(m) < 10 {
			t.Fatalf("seed stored too little about alice: %v", m)
		}
		before := mentions(t, s, bob, "")
		got, err := s.DeleteUser(ctx, "", alice, 2) // tiny batches: the loop must finish them all
		if err != nil {
			t.Fatal(err)
		}
		if got["events"] == 0 || got["plugin_kv"] != 2 || got["users"] != 1 || got["events.data (mentions redacted)"] != 1 {
			t.Fatalf("deleted %v", got)
		}
		if m := mentions(t, s, alice, ""); len(m) > 0 {
			t.Fatalf("rows still name alice after her deletion: %v", m)
		}
		after := mentions(t, s, bob, "")
		for table, n := range before {
			if table == "events" {
				continue // bob's events mentioned alice, never bob: unchanged count
			}
			if after[table] != n {
				t.Errorf("bob's %s rows: %d before, %d after alice's deletion", table, n, after[table])
			}
		}
		if v, err := s.KVGet(ctx, "p1", guild, "state"); err != nil || string(v) != "guild state" {
			t.Fatalf("a plugin's own state went with alice: %q %v", v, err)
		}
	})
}

func TestDeleteUserInOneGuild(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		seedPeople(t, s)
		if _, err := s.DeleteUser(ctx, guild, alice, 100); err != nil {
			t.Fatal(err)
		}
		if m := mentions(t, s, alice, guild); len(m) > 0 {
			t.Fatalf("rows in %s still name alice: %v", guild, m)
		}
		if m := mentions(t, s, alice, guild2); m["members"] != 1 || m["events"] == 0 || m["plugin_kv"] != 1 {
			t.Fatalf("alice's data in the other guild: %v", m)
		}
		if m := mentions(t, s, alice, ""); m["users"] != 1 {
			t.Fatalf("the user row went while another guild holds alice: %v", m)
		}
	})
}

func TestExportUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		seedPeople(t, s)
		if err := s.AddOptOut(ctx, OptOut{UserID: alice, GuildID: guild2}); err != nil {
			t.Fatal(err)
		}
		ex, err := s.ExportUser(ctx, "", alice)
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"members", "member_presence", "events", "messages", "typing", "presence_sessions", "users", "opt_outs", "bans"} {
			if len(ex.Tables[table]) == 0 {
				t.Errorf("export has no %s rows", table)
			}
		}
		if len(ex.Tables["members"]) != 2 {
			t.Errorf("members rows %d, want 2 (two guilds)", len(ex.Tables["members"]))
		}
		for _, r := range ex.Tables["events"] {
			if r["user_id"] != alice {
				t.Fatalf("exported someone else's event: %v", r)
			}
		}
		if kv := ex.Plugins["p1"]; len(kv) != 2 || kv[0].Value != "about "+alice {
			t.Fatalf("plugin data: %+v", ex.Plugins)
		}
		if ex.Omitted["accounts"] == "" {
			t.Fatal("accounts should be omitted with a reason")
		}
		one, err := s.ExportUser(ctx, guild, alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(one.Tables["opt_outs"]) != 0 {
			t.Fatalf("a guild's export shows an opt-out in another guild: %v", one.Tables["opt_outs"])
		}
		if len(one.Tables["members"]) != 1 || len(one.Plugins["p1"]) != 1 {
			t.Fatalf("guild export: %d members rows, %d plugin values", len(one.Tables["members"]), len(one.Plugins["p1"]))
		}
	})
}

func TestPurgeExpiredInBatches(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		var evs []event.Event
		for i := range 50 {
			evs = append(evs, ev(event.KindTypingStart, alice, time.Duration(i)*time.Hour, &event.TypingStart{}))
		}
		e2 := ev(event.KindTypingStart, alice, 0, &event.TypingStart{})
		e2.GuildID = guild2
		evs = append(evs, e2)
		mustIngest(t, s, evs...)
		var events RetainedTable
		for _, r := range RetainedTables {
			if r.Table == "events" {
				events = r
			}
		}
		n, err := s.PurgeExpired(ctx, events, guild, t0.Add(20*time.Hour), 7)
		if err != nil || n != 20 {
			t.Fatalf("purged %d (%v), want 20", n, err)
		}
		var left, other int
		s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM events WHERE guild_id = ?`), guild).Scan(&left)
		s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM events WHERE guild_id = ?`), guild2).Scan(&other)
		if left != 30 || other != 1 {
			t.Fatalf("left %d in the guild (want 30), %d in the other (want 1)", left, other)
		}
	})
}

func TestPurgeGuild(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		seedPeople(t, s)
		if err := s.PutGuildSettings(ctx, GuildSettings{GuildID: guild, Tracking: Tracking{Presence: true}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRules(ctx, []Rule{{PType: "g", V: [4]string{"user:x", "role:admin", guild}}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.PurgeGuild(ctx, guild, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got["guilds"] != 1 || got["authz_rules"] != 1 || got["guild_settings"] != 1 {
			t.Fatalf("purged %v", got)
		}
		schema, _ := s.SchemaColumns(ctx)
		for _, g := range GuildTables {
			if g.Keep != "" {
				continue
			}
			var n int
			if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+g.Table+` WHERE `+g.GuildColumn+` = ?`), guild).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s: %d rows of the purged guild left (%v)", g.Table, n, err)
			}
		}
		var other int
		s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM members WHERE guild_id = ?`), guild2).Scan(&other)
		if other != 2 || len(schema) == 0 {
			t.Fatalf("the other guild lost members: %d", other)
		}
	})
}

func TestGuildSettingsAndOptOuts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, clk *clock) {
		ctx := context.Background()
		v0, _ := s.PrivacyVersion(ctx)
		g, err := s.GetGuildSettings(ctx, guild)
		if err != nil || g.Configured || g.Tracking != (Tracking{}) || g.Retention != DefaultRetention() {
			t.Fatalf("unconfigured guild: %+v %v", g, err)
		}
		want := GuildSettings{GuildID: guild, Timezone: "Europe/Paris", Tracking: Tracking{Presence: true, Voice: true},
			Retention:     Retention{EventsDays: 7, PresenceDays: 1, MessagesDays: 2, ScoresDays: 3, PluginDataDays: 4, AggregatesDays: 5},
			DeleteOnLeave: true, UpdatedBy: "acc-1"}
		if err := s.PutGuildSettings(ctx, want); err != nil {
			t.Fatal(err)
		}
		g, err = s.GetGuildSettings(ctx, guild)
		if err != nil || !g.Configured || g.Timezone != "Europe/Paris" || g.Tracking != want.Tracking || g.Retention != want.Retention || !g.DeleteOnLeave {
			t.Fatalf("saved settings: %+v %v", g, err)
		}
		if all, _ := s.ListGuildSettings(ctx); len(all) != 1 {
			t.Fatalf("list: %+v", all)
		}
		if err := s.AddOptOut(ctx, OptOut{UserID: alice}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddOptOut(ctx, OptOut{UserID: bob, GuildID: guild2}); err != nil {
			t.Fatal(err)
		}
		if l, _ := s.ListOptOuts(ctx, guild); len(l) != 1 || l[0].UserID != alice {
			t.Fatalf("opt-outs in guild: %+v", l)
		}
		if err := s.RemoveOptOut(ctx, bob, guild); !errors.Is(err, ErrNotFound) {
			t.Fatalf("remove a missing opt-out: %v", err)
		}
		if v1, _ := s.PrivacyVersion(ctx); v1 != v0+3 {
			t.Fatalf("privacy version %d, want %d", v1, v0+3)
		}
		// Removal: due after the grace period only.
		at := clk.t
		if err := s.RequestGuildRemoval(ctx, guild2, "acc-1", &at); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.GuildsToPurge(ctx, at); len(due) != 0 {
			t.Fatalf("due at once: %v", due)
		}
		if due, _ := s.GuildsToPurge(ctx, at.Add(time.Second)); len(due) != 1 || due[0] != guild2 {
			t.Fatalf("due after: %v", due)
		}
		if err := s.RequestGuildRemoval(ctx, guild2, "acc-1", nil); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.GuildsToPurge(ctx, at.Add(time.Hour)); len(due) != 0 {
			t.Fatalf("due after cancelling: %v", due)
		}
	})
}

func TestPluginValuesSealedAndRotated(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		const oldSecret, newSecret = "old-secret-old-secret-old-secret-1", "new-secret-new-secret-new-secret-2"
		if err := s.KVSet(ctx, "p1", guild, "plain", "", []byte("written before any key"), 1<<20); err != nil {
			t.Fatal(err)
		}
		old, _ := sealing.New(oldSecret, nil)
		s.SetSeal(old)
		if err := s.KVSet(ctx, "p1", guild, "k", alice, []byte("secret message content"), 1<<20); err != nil {
			t.Fatal(err)
		}
		var raw []byte
		var kid string
		s.r.QueryRowContext(ctx, s.q(`SELECT value, enc_key FROM plugin_kv WHERE key = 'k'`)).Scan(&raw, &kid)
		if bytes.Contains(raw, []byte("secret")) || kid != sealing.KeyID(oldSecret) {
			t.Fatalf("stored in the clear or without its key: %q %q", raw, kid)
		}
		if v, err := s.KVGet(ctx, "p1", guild, "k"); err != nil || string(v) != "secret message content" {
			t.Fatalf("round trip: %q %v", v, err)
		}
		// A sealed value moved to another row does not open.
		s.w.ExecContext(ctx, s.q(`INSERT INTO plugin_kv (plugin_id, guild_id, key, value, enc_key, updated_at) VALUES ('p1', ?, 'moved', ?, ?, 0)`), guild, raw, kid)
		if _, err := s.KVGet(ctx, "p1", guild, "moved"); err == nil {
			t.Fatal("a value copied to another key opened")
		}
		s.w.ExecContext(ctx, `DELETE FROM plugin_kv WHERE key = 'moved'`)

		// Rotation: the new key seals, the old one still opens.
		both, _ := sealing.New(newSecret, []string{oldSecret})
		s.SetSeal(both)
		if v, err := s.KVGet(ctx, "p1", guild, "k"); err != nil || string(v) != "secret message content" {
			t.Fatalf("old value under the rotated keyring: %q %v", v, err)
		}
		if err := s.KVSet(ctx, "p1", guild, "k2", "", []byte("new"), 1<<20); err != nil {
			t.Fatal(err)
		}
		res, err := s.ResealPluginData(ctx, 1)
		if err != nil || res.Resealed != 2 || res.Failed != 0 {
			t.Fatalf("reseal: %+v %v (want the old-key and the plain value)", res, err)
		}
		var stale int
		s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM plugin_kv WHERE enc_key <> ?`), sealing.KeyID(newSecret)).Scan(&stale)
		if stale != 0 {
			t.Fatalf("%d values not under the new key", stale)
		}
		// The old secret can go now.
		only, _ := sealing.New(newSecret, nil)
		s.SetSeal(only)
		list, err := s.KVList(ctx, "p1", guild, "", "", 10)
		if err != nil || len(list) != 3 || string(list[0].Value) != "secret message content" || string(list[2].Value) != "written before any key" {
			t.Fatalf("after rotation: %+v %v", list, err)
		}
	})
}

func TestOAuthVerifierSealed(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, clk *clock) {
		ctx := context.Background()
		k, _ := sealing.New("a-secret-key-a-secret-key-a-secret", nil)
		s.SetSeal(k)
		if err := s.AddOAuthState(ctx, "h1", OAuthState{Verifier: "pkce-verifier-value", CreatedAt: clk.t}, clk.t.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		var raw string
		s.r.QueryRowContext(ctx, `SELECT verifier FROM oauth_states`).Scan(&raw)
		if strings.Contains(raw, "pkce") || !strings.HasPrefix(raw, "sealed:") {
			t.Fatalf("verifier stored as %q", raw)
		}
		st, err := s.TakeOAuthState(ctx, "h1")
		if err != nil || st.Verifier != "pkce-verifier-value" {
			t.Fatalf("take: %+v %v", st, err)
		}
	})
}

// TestMigrationsAllowGap shows what the numbering relies on: goose applies
// 00001, 00002, 00004 with 00003 missing (00006 is written while 00005 is
// on another branch). A gap filled after a later number was applied is
// refused, so both land before a release.
func TestMigrationsAllowGap(t *testing.T) {
	up := func(v string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE t" + v + " (id INTEGER);\n-- +goose Down\nDROP TABLE t" + v + ";\n")}
	}
	fsys := fstest.MapFS{"00001_a.sql": up("1"), "00002_b.sql": up("2"), "00004_d.sql": up("4")}
	s, err := connect(context.Background(), t.TempDir()+"/gap.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(context.Background()); err != nil {
		t.Fatalf("a gap in the numbering: %v", err)
	}
	if v, _ := p.GetDBVersion(context.Background()); v != 4 {
		t.Fatalf("version %d, want 4", v)
	}
	fsys["00003_c.sql"] = up("3")
	p, _ = goose.NewProvider(goose.DialectSQLite3, s.w, fsys, goose.WithDisableGlobalRegistry(true))
	if _, err := p.Up(context.Background()); err == nil {
		t.Fatal("goose applied a migration older than the database: expected a refusal")
	}
	// And the real set: this binary's migrations include 00006.
	real, err := Open(context.Background(), t.TempDir()+"/real.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	if cur, latest, err := real.MigrationStatus(context.Background()); err != nil || cur != latest || cur < 6 {
		t.Fatalf("migrations: current %d latest %d %v", cur, latest, err)
	}
}
