package store

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// TestPresenceHours checks the presence aggregate against a hand-computed
// timeline, split over several batches, with an hour boundary crossed, two
// clients overlapping, changes that keep the set of clients, and a stretch
// still open at query time.
func TestPresenceHours(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		on := event.StatusOnline
		// alice: desktop 10:00–11:30, mobile too from 10:40 to 11:10, an
		// idle toggle at 10:50 (same clients), offline at 11:30; web from
		// 12:00, still open.
		mustIngest(t, s, join(alice, "alice", 0), presence(alice, 0, on, event.ClientStatus{Desktop: on}))
		mustIngest(t, s, presence(alice, 40*time.Minute, on, event.ClientStatus{Desktop: on, Mobile: on}),
			presence(alice, 50*time.Minute, event.StatusIdle, event.ClientStatus{Desktop: event.StatusIdle, Mobile: on}))
		mustIngest(t, s, presence(alice, 70*time.Minute, on, event.ClientStatus{Desktop: on}))
		mustIngest(t, s, presence(alice, 90*time.Minute, event.StatusOffline, event.ClientStatus{}),
			presence(alice, 120*time.Minute, on, event.ClientStatus{Web: on}))
		now := t0.Add(150 * time.Minute)
		hours, err := s.PresenceHours(ctx, guild, alice, t0, t0.Add(6*time.Hour), now)
		if err != nil {
			t.Fatal(err)
		}
		min := func(n int) int64 { return int64(n) * 60000 }
		want := []PresenceHour{
			{Hour: t0, OnlineMS: min(60), MultiMS: min(20), DesktopMS: min(60), MobileMS: min(20)},
			{Hour: t0.Add(time.Hour), OnlineMS: min(30), MultiMS: min(10), DesktopMS: min(30), MobileMS: min(10)},
			{Hour: t0.Add(2 * time.Hour), OnlineMS: min(30), WebMS: min(30)}, // open: 12:00–12:30 (now)
		}
		if len(hours) != len(want) {
			t.Fatalf("hours %+v, want %+v", hours, want)
		}
		for i := range want {
			if hours[i] != want[i] {
				t.Errorf("hour %d: %+v, want %+v", i, hours[i], want[i])
			}
		}
		// The guild's total is the sum over members.
		mustIngest(t, s, join(bob, "bob", 0), presence(bob, 10*time.Minute, on, event.ClientStatus{Mobile: on}),
			presence(bob, 20*time.Minute, event.StatusOffline, event.ClientStatus{}))
		g, err := s.PresenceHours(ctx, guild, "", t0, t0.Add(time.Hour), now)
		if err != nil {
			t.Fatal(err)
		}
		if len(g) != 1 || g[0].OnlineMS != min(70) || g[0].MobileMS != min(30) {
			t.Fatalf("guild hour: %+v", g)
		}
		// A replay changes nothing.
		mustIngest(t, s, presence(alice, 40*time.Minute, on, event.ClientStatus{Desktop: on, Mobile: on}))
		again, _ := s.PresenceHours(ctx, guild, alice, t0, t0.Add(time.Hour), now)
		if again[0] != want[0] {
			t.Fatalf("after a replay: %+v", again[0])
		}
	})
}

// TestMessageRhythmAndScoringMembers checks gaps, per-minute peaks,
// channels, role changes and first message as scoring reads them.
func TestMessageRhythmAndScoringMembers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		other := "41771983423143939"
		m2 := message(alice, 10*time.Minute+20*time.Second, "1100000000000000002")
		m2.ChannelID = other
		mustIngest(t, s, join(alice, "alice", 0, roleA), message(alice, 10*time.Minute, "1100000000000000001"), m2)
		// Across a batch: same minute as the last message, then 10 minutes later.
		mustIngest(t, s, message(alice, 10*time.Minute+40*time.Second, "1100000000000000003"),
			message(alice, 20*time.Minute+40*time.Second, "1100000000000000004"),
			ev(event.KindMemberUpdate, alice, 30*time.Minute, &event.MemberUpdate{RolesAdded: []string{roleB}, RolesRemoved: []string{roleA}}))
		mustIngest(t, s, join(bob, "bob", 0))
		ms, err := s.ScoringMembers(ctx, guild, t0, t0.Add(24*time.Hour), t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]*ScoringMember{}
		for _, m := range ms {
			by[m.UserID] = m
		}
		a := by[alice]
		if a == nil || by[bob] == nil {
			t.Fatalf("members: %+v", ms)
		}
		if a.Messages != 4 || a.Gaps != 3 || a.PeakPerMinute != 3 || a.Channels != 2 || a.RoleChanges != 2 {
			t.Fatalf("alice: messages %d gaps %d peak %d channels %d role changes %d", a.Messages, a.Gaps, a.PeakPerMinute, a.Channels, a.RoleChanges)
		}
		if math.Abs(a.GapSum-640) > 1e-9 || math.Abs(a.GapSumSq-(400+400+360000)) > 1e-6 {
			t.Fatalf("gap sums %v %v", a.GapSum, a.GapSumSq)
		}
		if a.FirstMessageAt != t0.Add(10*time.Minute).UnixMilli() || a.JoinedAt != t0.UnixMilli() {
			t.Fatalf("first message %d joined %d", a.FirstMessageAt, a.JoinedAt)
		}
		if len(a.MessageHours) != 1 || a.MessageHours[t0.UnixMilli()] != 4 {
			t.Fatalf("message hours %v", a.MessageHours)
		}
		if b := by[bob]; b.Messages != 0 || b.FirstMessageAt != 0 || b.LastMessageAt != 0 {
			t.Fatalf("bob: %+v", b)
		}
		d, err := s.RoleDrift(ctx, guild, "", t0, t0.Add(time.Hour), 1, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Gained) != 1 || d.Gained[0].RoleID != roleB || len(d.Lost) != 1 || d.MembersChanged != 1 || d.Members != 2 ||
			len(d.Timeline) != 1 || d.Next == "" {
			t.Fatalf("role drift: %+v", d)
		}
		d2, err := s.RoleDrift(ctx, guild, "", t0, t0.Add(time.Hour), 1, d.Next)
		if err != nil || len(d2.Timeline) != 1 || d2.Timeline[0].RoleID == d.Timeline[0].RoleID || d2.Next != "" {
			t.Fatalf("second page: %+v %v", d2, err)
		}
	})
}

// TestRoleDriftAcrossDays checks that a guild's role drift over a window of
// whole and partial days (read from the per-day aggregates and the raw
// changes at the ends) counts exactly the changes inside the window.
func TestRoleDriftAcrossDays(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, _ *clock) {
		ctx := context.Background()
		day := 24 * time.Hour
		upd := func(user string, at time.Duration, add ...string) event.Event {
			return ev(event.KindMemberUpdate, user, at, &event.MemberUpdate{RolesAdded: add})
		}
		// t0 is 10:00 UTC: changes on day 0 at 10:00, day 1 at 12:00 (two),
		// day 2 at 09:00 and day 3 at 10:00.
		mustIngest(t, s, join(alice, "alice", 0), join(bob, "bob", 0), upd(alice, 0, roleA), upd(bob, day+2*time.Hour, roleA, roleB))
		mustIngest(t, s, upd(alice, 2*day-time.Hour, roleB), upd(carol, 3*day, roleA))
		count := func(from, to time.Time) (int64, int64) {
			d, err := s.RoleDrift(ctx, guild, "", from, to, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, g := range d.Gained {
				n += g.Count
			}
			return n, d.MembersChanged
		}
		cases := []struct {
			from, to      time.Duration
			changes, mems int64
		}{
			{-time.Hour, 2 * day, 4, 2},                   // day 0 from 09:00, day 1 whole, day 2 to 10:00
			{time.Hour, 2 * day, 3, 2},                    // without the first change
			{-10 * time.Hour, 3*day - 10*time.Hour, 4, 2}, // exactly days 0-2
			{-10 * time.Hour, 4 * day, 5, 3},              // everything
			{day, day + 3*time.Hour, 2, 1},                // inside one day
		}
		for _, c := range cases {
			n, m := count(t0.Add(c.from), t0.Add(c.to))
			if n != c.changes || m != c.mems {
				t.Errorf("window %v..%v: %d changes by %d members, want %d by %d", c.from, c.to, n, m, c.changes, c.mems)
			}
		}
	})
}
