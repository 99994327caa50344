package simulate

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// monday is a Monday midnight UTC, the start of most test windows.
var monday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func generate(t testing.TB, cfg Config, from time.Time, d time.Duration) (*Simulator, []event.Event) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	if err := s.Generate(context.Background(), from, from.Add(d), func(ev event.Event) error {
		evs = append(evs, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return s, evs
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{"zero config uses defaults", Config{}, ""},
		{"full config", Config{Seed: 7, GuildID: "41771983423143937", GuildName: "Test", Members: 100000, Channels: 30,
			VoiceChannels: 3, Timezone: time.FixedZone("X", 3600), Mix: map[Archetype]float64{Lurker: 1},
			JoinsPerHour: -1, LeavesPerHour: 2, BansPerHour: -1, MessageScale: 0.5}, ""},
		{"negative members", Config{Members: -1}, "members -1"},
		{"too many members", Config{Members: MaxMembers + 1}, "members"},
		{"too many channels", Config{Channels: MaxChannels + 1}, "channels"},
		{"negative voice channels", Config{VoiceChannels: -2}, "voice channels"},
		{"bad guild id", Config{GuildID: "guild-1"}, "guild id"},
		{"long guild name", Config{GuildName: strings.Repeat("x", 101)}, "guild name"},
		{"invalid utf8 name", Config{GuildName: "\xff"}, "guild name"},
		{"unknown archetype", Config{Mix: map[Archetype]float64{"wizard": 1}}, `unknown archetype "wizard"`},
		{"negative weight", Config{Mix: map[Archetype]float64{Chatty: -1, Lurker: 1}}, "mix weight of chatty"},
		{"all weights zero", Config{Mix: map[Archetype]float64{Chatty: 0}}, "weight 0"},
		{"nan rate", Config{JoinsPerHour: nan()}, "joins per hour"},
		{"negative message scale", Config{MessageScale: -1}, "message scale"},
		{"huge message scale", Config{MessageScale: 1e6}, "message scale"},
		{"huge rate", Config{LeavesPerHour: 1e9}, "leaves per hour"},
		{"epoch before discord", Config{Epoch: time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)}, "epoch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "simulate: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

// interval is a stretch of time a member was online.
type interval struct{ from, to time.Time }

// onlineIntervals replays presence into per-member online stretches.
func onlineIntervals(evs []event.Event, end time.Time) map[string][]interval {
	since := map[string]time.Time{}
	out := map[string][]interval{}
	for _, ev := range evs {
		switch d := ev.Data.(type) {
		case *event.Presence:
			t0, on := since[ev.UserID]
			switch {
			case d.Status.Online() && !on:
				since[ev.UserID] = ev.At
			case !d.Status.Online() && on:
				out[ev.UserID] = append(out[ev.UserID], interval{t0, ev.At})
				delete(since, ev.UserID)
			}
		case *event.MemberLeave:
			if t0, on := since[ev.UserID]; on {
				out[ev.UserID] = append(out[ev.UserID], interval{t0, ev.At})
				delete(since, ev.UserID)
			}
		}
	}
	for u, t0 := range since {
		out[u] = append(out[u], interval{t0, end})
	}
	return out
}

func onlineAt(iv []interval, t time.Time) bool {
	for _, x := range iv {
		if !t.Before(x.from) && t.Before(x.to) {
			return true
		}
	}
	return false
}

func TestGeneratedGuild(t *testing.T) {
	const days = 3
	cfg := Config{Seed: 42, Members: 300, JoinsPerHour: 2, BansPerHour: 0.1}
	from, to := monday, monday.Add(days*24*time.Hour)
	s, evs := generate(t, cfg, from, to.Sub(from))
	tr := s.Truth()
	arch := func(u string) Archetype { return tr.Members[u] }
	byUser := map[string][]event.Event{}
	kinds := map[event.Kind]int{}
	for _, ev := range evs {
		kinds[ev.Kind]++
		if ev.UserID != "" {
			byUser[ev.UserID] = append(byUser[ev.UserID], ev)
		}
	}
	online := onlineIntervals(evs, to)
	onlineHours := func(u string) float64 {
		h := 0.0
		for _, x := range online[u] {
			h += x.to.Sub(x.from).Hours()
		}
		return h
	}
	count := func(u string, k event.Kind) int {
		n := 0
		for _, ev := range byUser[u] {
			if ev.Kind == k {
				n++
			}
		}
		return n
	}
	membersOf := func(a Archetype) []string {
		var us []string
		for u, x := range tr.Members {
			if x == a {
				us = append(us, u)
			}
		}
		sort.Strings(us)
		return us
	}
	t.Logf("%d events: %v", len(evs), kinds)

	t.Run("every event validates", func(t *testing.T) {
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				t.Fatalf("%s: %v", ev.Subject(), err)
			}
		}
	})
	t.Run("time order within the window at ms precision in UTC", func(t *testing.T) {
		for i, ev := range evs {
			if ev.At.Location() != time.UTC || !ev.At.Equal(ev.At.Truncate(time.Millisecond)) {
				t.Fatalf("event %d at %v: not UTC ms", i, ev.At)
			}
			if ev.At.Before(from) || !ev.At.Before(to) {
				t.Fatalf("event %d at %v outside [%v, %v)", i, ev.At, from, to)
			}
			if i > 0 && ev.At.Before(evs[i-1].At) {
				t.Fatalf("event %d at %v before its predecessor at %v", i, ev.At, evs[i-1].At)
			}
		}
	})
	t.Run("unique ids", func(t *testing.T) {
		seen := make(map[string]bool, len(evs))
		for _, ev := range evs {
			if seen[ev.ID] || len(ev.ID) > event.MaxIDLen {
				t.Fatalf("duplicate or long id %q", ev.ID)
			}
			seen[ev.ID] = true
		}
	})
	t.Run("setup at the window start", func(t *testing.T) {
		g, ok := evs[0].Data.(*event.GuildUpdate)
		if !ok || g.Name != "Spywatcher Demo" || g.MemberCount != cfg.Members || g.OwnerID != tr.OwnerID || evs[0].GuildID != tr.GuildID {
			t.Fatalf("first event = %+v %+v", evs[0], evs[0].Data)
		}
		types := map[event.ChannelType]int{}
		joins := 0
		for _, ev := range evs[1:] {
			if !ev.At.Equal(from) {
				break
			}
			switch d := ev.Data.(type) {
			case *event.ChannelUpdate:
				types[d.Type]++
			case *event.MemberJoin:
				if !d.Backfill || d.User == nil || d.User.ID != ev.UserID || d.User.Username == "" {
					t.Fatalf("setup join %+v", d)
				}
				joins++
			}
		}
		if types[event.ChannelText] != 8 || types[event.ChannelVoice] != 2 || types[event.ChannelCategory] != 2 {
			t.Fatalf("channels by type = %v", types)
		}
		if joins != cfg.Members {
			t.Fatalf("%d backfilled joins, want %d", joins, cfg.Members)
		}
	})
	t.Run("every archetype is present", func(t *testing.T) {
		for _, a := range Archetypes() {
			if tr.Count(a) == 0 {
				t.Errorf("no %s member", a)
			}
		}
	})
	t.Run("presence is most of the stream", func(t *testing.T) {
		share := float64(kinds[event.KindPresenceUpdate]) / float64(len(evs))
		t.Logf("presence share %.3f", share)
		if share < 0.7 || share > 0.9 {
			t.Fatalf("presence share %.2f, want 0.7..0.9", share)
		}
		for _, k := range event.Kinds() {
			if kinds[k] == 0 && k != event.KindBanRemove { // unbans are rare
				t.Errorf("no %s event", k)
			}
		}
	})
	t.Run("account ages", func(t *testing.T) {
		established, inRange := 0, 0
		for u, a := range tr.Members {
			created, err := event.SnowflakeTime(u)
			if err != nil {
				t.Fatal(err)
			}
			age := from.Sub(created)
			switch a {
			case Suspicious:
				if age > 46*24*time.Hour {
					t.Errorf("suspicious %s is %v old", u, age)
				}
			case Newcomer:
			default:
				established++
				if age >= 365*24*time.Hour && age <= 8*366*24*time.Hour {
					inRange++
				}
			}
		}
		if float64(inRange) < 0.85*float64(established) {
			t.Fatalf("%d of %d established accounts are 1..8 years old", inRange, established)
		}
	})
	t.Run("client status agrees with status", func(t *testing.T) {
		for _, ev := range evs {
			p, ok := ev.Data.(*event.Presence)
			if !ok {
				continue
			}
			var on, idle, dnd, connected int
			for _, c := range event.Clients() {
				switch p.ClientStatus.Get(c) {
				case event.StatusOnline:
					on++
				case event.StatusIdle:
					idle++
				case event.StatusDND:
					dnd++
				}
			}
			connected = on + idle + dnd
			good := false
			switch p.Status {
			case event.StatusOffline:
				good = connected == 0
			case event.StatusOnline:
				good = on > 0
			case event.StatusIdle:
				good = connected > 0 && idle == connected
			case event.StatusDND:
				good = connected > 0 && dnd == connected
			}
			if !good {
				t.Fatalf("%s: status %s with clients %+v", ev.Subject(), p.Status, p.ClientStatus)
			}
		}
	})
	t.Run("posting, typing and voice only while online", func(t *testing.T) {
		for _, ev := range evs {
			switch ev.Kind {
			case event.KindMessageCreate, event.KindTypingStart, event.KindVoiceState:
				if !onlineAt(online[ev.UserID], ev.At) {
					// A voice leave happens at the instant the session ends.
					if ev.Kind == event.KindVoiceState && ev.ChannelID == "" {
						continue
					}
					t.Fatalf("%s by %s while offline", ev.Kind, ev.UserID)
				}
			}
		}
	})
	t.Run("lurkers never type or post", func(t *testing.T) {
		lurkers := membersOf(Lurker)
		active := 0
		for _, u := range lurkers {
			if n := count(u, event.KindMessageCreate) + count(u, event.KindTypingStart); n > 0 {
				t.Fatalf("lurker %s has %d messages or typings", u, n)
			}
			if onlineHours(u) > 0 {
				active++
			}
		}
		if active < len(lurkers)*8/10 {
			t.Fatalf("only %d of %d lurkers were ever online", active, len(lurkers))
		}
	})
	t.Run("ghosts stay online for long and write little", func(t *testing.T) {
		var ghostH, regularH float64
		ghostMsgs := 0
		for _, u := range membersOf(Ghost) {
			ghostH += onlineHours(u)
			ghostMsgs += count(u, event.KindMessageCreate)
		}
		for _, u := range membersOf(Regular) {
			regularH += onlineHours(u)
		}
		ghosts, regulars := float64(tr.Count(Ghost)), float64(tr.Count(Regular))
		perDay := ghostH / ghosts / days
		t.Logf("online h/day: ghost %.1f, regular %.1f; ghost messages %d", perDay, regularH/regulars/days, ghostMsgs)
		if perDay < 10 || perDay < 3*regularH/regulars/days {
			t.Fatalf("ghosts online %.1f h/day, regulars %.1f h/day", perDay, regularH/regulars/days)
		}
		if perWeek := float64(ghostMsgs) / ghosts / days * 7; perWeek > 3 {
			t.Fatalf("ghosts write %.1f messages a week", perWeek)
		}
	})
	t.Run("multi-client members use several clients", func(t *testing.T) {
		multi, total := 0, 0
		for _, u := range membersOf(MultiClient) {
			seen := false
			for _, ev := range byUser[u] {
				if p, ok := ev.Data.(*event.Presence); ok && p.Status.Online() {
					total++
					if p.ClientStatus.OnlineCount() >= 2 {
						multi++
						seen = true
					}
				}
			}
			if !seen && onlineHours(u) > 0 {
				t.Errorf("multi-client %s never had two clients", u)
			}
		}
		othersMulti, othersTotal := 0, 0
		for _, u := range membersOf(Regular) {
			for _, ev := range byUser[u] {
				if p, ok := ev.Data.(*event.Presence); ok && p.Status.Online() {
					othersTotal++
					if p.ClientStatus.OnlineCount() >= 2 {
						othersMulti++
					}
				}
			}
		}
		m, o := float64(multi)/float64(total), float64(othersMulti)/float64(othersTotal)
		t.Logf("2+ clients: multi %.2f, regular %.2f", m, o)
		if m < 0.5 || o > 0.15 {
			t.Fatalf("share of online presences with 2+ clients: multi-client %.2f, regular %.2f", m, o)
		}
	})
	t.Run("suspicious accounts post like a metronome at any hour", func(t *testing.T) {
		regularity := func(us []string) (float64, int) {
			on, all := 0, 0
			for _, u := range us {
				var gaps []time.Duration
				var last time.Time
				for _, ev := range byUser[u] {
					if ev.Kind != event.KindMessageCreate {
						continue
					}
					if g := ev.At.Sub(last); !last.IsZero() && g > 5*time.Second && g < 2*time.Hour {
						gaps = append(gaps, g)
					}
					last = ev.At
				}
				if len(gaps) < 4 {
					continue
				}
				med := slices.Clone(gaps)
				slices.Sort(med)
				m := med[len(med)/2]
				for _, g := range gaps {
					all++
					if (g - m).Abs() <= time.Second {
						on++
					}
				}
			}
			return float64(on) / float64(max(all, 1)), all
		}
		sus, n := regularity(membersOf(Suspicious))
		reg, _ := regularity(membersOf(Chatty))
		t.Logf("regularity: suspicious %.2f over %d gaps, chatty %.2f", sus, n, reg)
		if n == 0 || sus < 0.6 || reg > 0.1 {
			t.Fatalf("gaps within 1s of the member's median: suspicious %.2f (%d gaps), chatty %.2f", sus, n, reg)
		}
		night := func(us []string) float64 {
			n, all := 0, 0
			for _, u := range us {
				for _, ev := range byUser[u] {
					if ev.Kind == event.KindMessageCreate {
						all++
						if h := ev.At.Hour(); h >= 2 && h < 6 {
							n++
						}
					}
				}
			}
			return float64(n) / float64(max(all, 1))
		}
		sn, cn := night(membersOf(Suspicious)), night(membersOf(Chatty))
		t.Logf("night share: suspicious %.2f, chatty %.2f", sn, cn)
		if sn < 0.1 || sn < 2*cn {
			t.Fatalf("share of messages between 2:00 and 6:00: suspicious %.2f, chatty %.2f", sn, cn)
		}
		burst, typing, roleChanges := false, 0, 0
		for _, u := range membersOf(Suspicious) {
			typing += count(u, event.KindTypingStart)
			roleChanges += count(u, event.KindMemberUpdate)
			var ts []time.Time
			for _, ev := range byUser[u] {
				if ev.Kind == event.KindMessageCreate {
					ts = append(ts, ev.At)
				}
			}
			for i := 4; i < len(ts); i++ {
				if ts[i].Sub(ts[i-4]) < 10*time.Second {
					burst = true
				}
			}
		}
		if !burst || typing != 0 {
			t.Fatalf("burst seen %v, typings %d", burst, typing)
		}
		if perDay := float64(roleChanges) / float64(tr.Count(Suspicious)) / days; perDay < 3 {
			t.Fatalf("suspicious role changes %.1f a day", perDay)
		}
	})
	t.Run("day and night", func(t *testing.T) {
		atHour := func(h int) int {
			n := 0
			for d := range days {
				at := from.Add(time.Duration(d*24+h) * time.Hour)
				for u, iv := range online {
					if arch(u) != Suspicious && onlineAt(iv, at) {
						n++
					}
				}
			}
			return n
		}
		night, evening := atHour(4), atHour(20)
		t.Logf("online at 04:00 %d, at 20:00 %d", night, evening)
		if evening < 2*night {
			t.Fatalf("online at 04:00 %d, at 20:00 %d", night, evening)
		}
	})
	t.Run("messages refer to earlier messages", func(t *testing.T) {
		type msg struct{ author, channel string }
		msgs := map[string]msg{}
		edits, replies := 0, 0
		for _, ev := range evs {
			switch d := ev.Data.(type) {
			case *event.MessageCreate:
				if d.ReplyTo != "" {
					replies++
					if m, ok := msgs[d.ReplyTo]; !ok || m.channel != ev.ChannelID {
						t.Fatalf("reply to unknown message %s", d.ReplyTo)
					}
				}
				for _, u := range d.Mentions {
					if _, ok := tr.Members[u]; !ok || u == ev.UserID {
						t.Fatalf("mention of %s by %s", u, ev.UserID)
					}
				}
				if d.Length != len(d.Content) {
					t.Fatalf("length %d of %q", d.Length, d.Content)
				}
				msgs[d.MessageID] = msg{ev.UserID, ev.ChannelID}
			case *event.MessageUpdate:
				edits++
				if m, ok := msgs[d.MessageID]; !ok || m.author != ev.UserID || m.channel != ev.ChannelID || !d.EditedAt.Equal(ev.At) {
					t.Fatalf("edit %+v of %+v", d, m)
				}
			case *event.MessageDelete:
				if m, ok := msgs[d.MessageID]; !ok || m.channel != ev.ChannelID {
					t.Fatalf("delete of unknown message %s", d.MessageID)
				}
			}
		}
		if edits == 0 || replies == 0 {
			t.Fatalf("%d edits, %d replies", edits, replies)
		}
	})
	t.Run("roles add up", func(t *testing.T) {
		roles := map[string][]string{}
		for _, ev := range evs {
			switch d := ev.Data.(type) {
			case *event.MemberJoin:
				roles[ev.UserID] = d.Roles
			case *event.MemberUpdate:
				want := slices.Clone(roles[ev.UserID])
				want = append(want, d.RolesAdded...)
				want = slices.DeleteFunc(want, func(r string) bool { return slices.Contains(d.RolesRemoved, r) })
				got := slices.Clone(d.Roles)
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(got, want) || len(d.RolesAdded)+len(d.RolesRemoved) != 1 {
					t.Fatalf("%s: roles %v after %+v, want %v", ev.UserID, d.Roles, d, want)
				}
				roles[ev.UserID] = d.Roles
			}
		}
	})
	t.Run("newcomers join, some greet soon, some leave", func(t *testing.T) {
		joinedAt := map[string]time.Time{}
		for _, ev := range evs {
			if d, ok := ev.Data.(*event.MemberJoin); ok && !d.Backfill {
				joinedAt[ev.UserID] = ev.At
			}
		}
		if len(joinedAt) == 0 || len(joinedAt) != len(tr.Joined) {
			t.Fatalf("%d live joins, truth lists %d", len(joinedAt), len(tr.Joined))
		}
		greeted, left := 0, 0
		for u, at := range joinedAt {
			for _, ev := range byUser[u] {
				if ev.Kind == event.KindMessageCreate && ev.At.Sub(at) < 2*time.Hour && arch(u) == Newcomer {
					greeted++
					break
				}
			}
			if slices.Contains(tr.Left, u) {
				left++
			}
		}
		if greeted == 0 || left == 0 {
			t.Fatalf("of %d joiners %d greeted within 2h, %d left", len(joinedAt), greeted, left)
		}
	})
	t.Run("members are silent after leaving", func(t *testing.T) {
		gone := map[string]bool{}
		bans := 0
		for i, ev := range evs {
			switch ev.Kind {
			case event.KindBanAdd:
				bans++
				next := evs[i+1]
				if ev.Data.(*event.BanAdd).Reason == "" || next.Kind != event.KindMemberLeave || next.UserID != ev.UserID {
					t.Fatalf("ban %+v followed by %+v", ev, next)
				}
				if arch(ev.UserID) != Suspicious {
					t.Fatalf("banned a %s", arch(ev.UserID))
				}
			case event.KindMemberLeave:
				gone[ev.UserID] = true
			case event.KindBanRemove:
			default:
				if gone[ev.UserID] {
					t.Fatalf("%s from %s after leaving", ev.Kind, ev.UserID)
				}
			}
		}
		if bans == 0 || bans != len(tr.Banned) {
			t.Fatalf("%d bans, truth lists %d", bans, len(tr.Banned))
		}
	})
	t.Run("voice channels", func(t *testing.T) {
		voice := map[string]bool{"": true}
		for _, c := range tr.Channels {
			if c.Type == event.ChannelVoice {
				voice[c.ID] = true
			}
		}
		for _, ev := range evs {
			if ev.Kind == event.KindVoiceState && !voice[ev.ChannelID] {
				t.Fatalf("voice state in %s", ev.ChannelID)
			}
		}
	})
}

func TestDeterminism(t *testing.T) {
	digest := func(cfg Config, from time.Time) [32]byte {
		h := sha256.New()
		_, evs := generate(t, cfg, from, 24*time.Hour)
		enc := json.NewEncoder(h)
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
		return [32]byte(h.Sum(nil))
	}
	cfg := Config{Seed: 1, Members: 200}
	a := digest(cfg, monday)
	tests := []struct {
		name string
		cfg  Config
		from time.Time
		same bool
	}{
		{"same seed", cfg, monday, true},
		{"other seed", Config{Seed: 2, Members: 200}, monday, false},
		{"other start", cfg, monday.Add(time.Hour), false},
		{"other timezone", Config{Seed: 1, Members: 200, Timezone: time.FixedZone("X", 5*3600)}, monday, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b := digest(tt.cfg, tt.from); (a == b) != tt.same {
				t.Fatalf("streams equal = %v, want %v", a == b, tt.same)
			}
		})
	}
	t.Run("same simulator twice", func(t *testing.T) {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var ids [2][]string
		for i := range ids {
			err := s.Generate(context.Background(), monday, monday.Add(2*time.Hour), func(ev event.Event) error {
				ids[i] = append(ids[i], ev.ID)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(ids[0], ids[1]) {
			t.Fatal("second run gave other ids")
		}
	})
	t.Run("pinned epoch keeps members across windows", func(t *testing.T) {
		pinned := Config{Seed: 1, Members: 200, Epoch: monday}
		s1, _ := generate(t, pinned, monday, time.Minute)
		s2, _ := generate(t, pinned, monday.Add(36*time.Hour), time.Minute)
		m1, m2 := s1.Truth().Members, s2.Truth().Members
		if len(m1) != 200 || len(m1) != len(m2) {
			t.Fatalf("%d and %d members", len(m1), len(m2))
		}
		for u, a := range m1 {
			if m2[u] != a {
				t.Fatalf("member %s is %s, then %q", u, a, m2[u])
			}
		}
		s3, err := New(pinned)
		if err != nil {
			t.Fatal(err)
		}
		if tr := s3.Truth(); len(tr.Members) != 200 || tr.Members[s1.Truth().OwnerID] == "" {
			t.Fatal("Truth before any run does not describe the pinned roster")
		}
	})
}

func TestTimezoneMovesTheRhythm(t *testing.T) {
	tokyo := time.FixedZone("UTC+9", 9*3600)
	_, evs := generate(t, Config{Seed: 3, Members: 300, Timezone: tokyo}, monday, 48*time.Hour)
	online := onlineIntervals(evs, monday.Add(48*time.Hour))
	at := func(localHour int) int {
		n := 0
		for d := range 2 {
			// Local midnight of day d is 15:00 UTC the day before.
			t0 := time.Date(2026, 3, 2+d, localHour, 0, 0, 0, tokyo)
			if t0.Before(monday) {
				t0 = t0.Add(24 * time.Hour)
			}
			for _, iv := range online {
				if onlineAt(iv, t0) {
					n++
				}
			}
		}
		return n
	}
	if night, evening := at(4), at(20); evening < 2*night {
		t.Fatalf("online at 04:00 Tokyo %d, at 20:00 Tokyo %d", night, evening)
	}
}

func TestGenerateWindowAndErrors(t *testing.T) {
	s, err := New(Config{Seed: 5, Members: 50})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keep := func(event.Event) error { return nil }
	t.Run("sub-millisecond bounds", func(t *testing.T) {
		from, to := monday.Add(1500*time.Microsecond), monday.Add(time.Hour+500*time.Microsecond)
		n := 0
		err := s.Generate(ctx, from, to, func(ev event.Event) error {
			n++
			if ev.At.Before(from) || !ev.At.Before(to) {
				t.Fatalf("event at %v outside [%v, %v)", ev.At, from, to)
			}
			return nil
		})
		if err != nil || n == 0 {
			t.Fatalf("%d events, %v", n, err)
		}
		if tr := s.Truth(); !tr.From.Equal(monday.Add(2*time.Millisecond)) || !tr.To.Equal(monday.Add(time.Hour+time.Millisecond)) {
			t.Fatalf("truth window %v..%v", tr.From, tr.To)
		}
	})
	stop := errors.New("stop")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		from, to time.Time
		emit     func(event.Event) error
		want     string
		wantIs   error
	}{
		{"empty window", ctx, monday, monday, keep, "empty window", nil},
		{"before discord", ctx, time.Date(2014, 6, 1, 0, 0, 0, 0, time.UTC), monday, keep, "before Discord existed", nil},
		{"nil emit", ctx, monday, monday.Add(time.Hour), nil, "nil emit", nil},
		{"emit error", ctx, monday, monday.Add(time.Hour), func(event.Event) error { return stop }, "simulate: emit", stop},
		{"cancelled", cancelled, monday, monday.Add(time.Hour), keep, "simulate: generate", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Generate(tt.ctx, tt.from, tt.to, tt.emit)
			if err == nil || !strings.Contains(err.Error(), tt.want) || tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %q (%v)", err, tt.want, tt.wantIs)
			}
		})
	}
	t.Run("start before pinned epoch", func(t *testing.T) {
		p, err := New(Config{Seed: 5, Members: 5, Epoch: monday})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Generate(ctx, monday.Add(-time.Hour), monday, keep); err == nil || !strings.Contains(err.Error(), "Epoch") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLargeGuild(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 members")
	}
	const n = 100000
	s, err := New(Config{Seed: 9, Members: n})
	if err != nil {
		t.Fatal(err)
	}
	joins, total := 0, 0
	start := time.Now()
	err = s.Generate(context.Background(), monday, monday.Add(10*time.Minute), func(ev event.Event) error {
		total++
		if ev.Kind == event.KindMemberJoin {
			joins++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if joins < n || s.Truth().Count(Lurker) != n/4 {
		t.Fatalf("%d joins, %d lurkers", joins, s.Truth().Count(Lurker))
	}
	t.Logf("%d events in %v", total, time.Since(start))
}

func TestTruthIsJSON(t *testing.T) {
	s, _ := generate(t, Config{Seed: 4, Members: 40, JoinsPerHour: 5}, monday, 6*time.Hour)
	tr := s.Truth()
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var back Truth
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.GuildID != tr.GuildID || len(back.Members) != len(tr.Members) || len(back.Channels) != 12 || len(back.Roles) != numRoles {
		t.Fatalf("round trip lost data: %s", b)
	}
	// Truth hands out copies.
	tr.Members["1"] = Ghost
	if _, ok := s.Truth().Members["1"]; ok {
		t.Fatal("Truth shares its map")
	}
}
