package discord

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

var update = flag.Bool("update", false, "rewrite golden files")

func updateGolden() bool { return *update || os.Getenv("UPDATE_GOLDEN") != "" }

// fallbackAt is the receive time of test lines that carry no "at".
var fallbackAt = time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC)

// recorded is one line of testdata/dispatches.jsonl, the recording format
// replay reads.
type recorded struct {
	T  string          `json:"t"`
	S  int64           `json:"s"`
	D  json.RawMessage `json:"d"`
	At *time.Time      `json:"at"`
}

func (r recorded) dispatch() (Dispatch, time.Time) {
	d := Dispatch{Type: r.T, Seq: r.S, Data: r.D}
	if r.At == nil {
		return d, fallbackAt
	}
	d.RecordedAt = *r.At
	return d, *r.At
}

func readRecorded(t *testing.T, path string) []recorded {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recorded
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r recorded
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", path, len(out)+1, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type goldenEntry struct {
	Line   int           `json:"line"`
	Type   string        `json:"t"`
	Skip   SkipReason    `json:"skip,omitempty"`
	Events []event.Event `json:"events,omitempty"`
}

func normalizeAll(t *testing.T, n *Normalizer, recs []recorded) []goldenEntry {
	t.Helper()
	var out []goldenEntry
	for i, r := range recs {
		d, at := r.dispatch()
		res, err := n.Normalize(context.Background(), d, at)
		if err != nil {
			t.Fatalf("line %d (%s): %v", i+1, r.T, err)
		}
		if (len(res.Events) == 0) == (res.Skip == "") {
			t.Fatalf("line %d (%s): want either events or a skip reason, got %+v", i+1, r.T, res)
		}
		out = append(out, goldenEntry{Line: i + 1, Type: r.T, Skip: res.Skip, Events: res.Events})
	}
	return out
}

// TestGolden normalises one realistic dispatch of every handled type (and a
// few that are skipped) and pins the resulting events.
func TestGolden(t *testing.T) {
	recs := readRecorded(t, "testdata/dispatches.jsonl")
	got := normalizeAll(t, NewNormalizer(nil), recs)

	kinds := map[event.Kind]bool{}
	for _, g := range got {
		for _, ev := range g.Events {
			if err := ev.Validate(); err != nil {
				t.Errorf("line %d: %v", g.Line, err)
			}
			kinds[ev.Kind] = true
		}
	}
	for _, k := range event.Kinds() {
		if !kinds[k] {
			t.Errorf("testdata produces no %s event", k)
		}
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep message content readable in the golden file
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	const path = "testdata/events.golden.json"
	if updateGolden() {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update or UPDATE_GOLDEN=1 to create it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Fatalf("events differ from %s; if intended, rerun with -update and review the diff\n%s", path, b)
	}
}

func TestIDsAreDeterministic(t *testing.T) {
	recs := readRecorded(t, "testdata/dispatches.jsonl")
	ids := func(recs []recorded) []string {
		var out []string
		for _, g := range normalizeAll(t, NewNormalizer(nil), recs) {
			for _, ev := range g.Events {
				out = append(out, ev.ID)
			}
		}
		return out
	}
	first, second := ids(recs), ids(recs)
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("two runs gave different IDs:\n%v\n%v", first, second)
	}
	seen := map[string]bool{}
	for _, id := range first {
		if seen[id] {
			t.Errorf("duplicate ID %s", id)
		}
		seen[id] = true
		if len(id) > event.MaxIDLen || strings.ContainsAny(id, " \t\n") {
			t.Errorf("bad ID %q", id)
		}
	}

	t.Run("recording time changes only hash IDs", func(t *testing.T) {
		shifted := make([]recorded, len(recs))
		for i, r := range recs {
			if r.At != nil {
				at := r.At.Add(time.Hour)
				r.At = &at
			}
			shifted[i] = r
		}
		a := normalizeAll(t, NewNormalizer(nil), recs)
		b := normalizeAll(t, NewNormalizer(nil), shifted)
		for i := range a {
			for j, ev := range a[i].Events {
				// Hash IDs embed the dotted kind; lines without "at" have no
				// recording time to shift.
				same := !strings.Contains(ev.ID, ".") || recs[i].At == nil
				if got := b[i].Events[j].ID; same != (got == ev.ID) {
					t.Errorf("line %d event %d: %s became %s", a[i].Line, j, ev.ID, got)
				}
			}
		}
	})

	t.Run("no recording time ignores the receive time", func(t *testing.T) {
		d := Dispatch{Type: "PRESENCE_UPDATE", Seq: 7, Data: json.RawMessage(`{"user":{"id":"1"},"guild_id":"2","status":"online"}`)}
		a := mustNormalize(t, NewNormalizer(nil), d, fallbackAt)
		b := mustNormalize(t, NewNormalizer(nil), d, fallbackAt.Add(24*time.Hour))
		if a.Events[0].ID != b.Events[0].ID || !strings.HasPrefix(a.Events[0].ID, "dc:presence.update:") {
			t.Fatalf("IDs %s and %s", a.Events[0].ID, b.Events[0].ID)
		}
		d.Seq = 8
		if c := mustNormalize(t, NewNormalizer(nil), d, fallbackAt); c.Events[0].ID == a.Events[0].ID {
			t.Fatal("a different sequence number gave the same ID")
		}
	})
}

func mustNormalize(t *testing.T, n *Normalizer, d Dispatch, at time.Time) Result {
	t.Helper()
	res, err := n.Normalize(context.Background(), d, at)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

const (
	guild = "1050478296420171836"
	alice = "80351110224678912"
	r1    = "1050480000000000001"
	r2    = "1050480000000000002"
	r3    = "1050480000000000003"
)

func memberDispatch(typ, nick string, roles ...string) Dispatch {
	b, _ := json.Marshal(map[string]any{
		"guild_id": guild,
		"user":     map[string]any{"id": alice, "username": "nelly"},
		"nick":     nick,
		"roles":    roles,
	})
	return Dispatch{Type: typ, Data: b}
}

// fakeLookup is a RoleLookup backed by a function; calls counts the calls.
type fakeLookup struct {
	calls int
	f     func(guildID, userID string) ([]string, bool, error)
}

func (l *fakeLookup) MemberRoles(_ context.Context, guildID, userID string) ([]string, bool, error) {
	l.calls++
	return l.f(guildID, userID)
}

func TestMemberUpdateRoleDiff(t *testing.T) {
	errStore := errors.New("store down")
	lookup := func(roles []string, ok bool, err error) *fakeLookup {
		return &fakeLookup{f: func(g, u string) ([]string, bool, error) {
			if g != guild || u != alice {
				return nil, false, fmt.Errorf("asked for %s/%s", g, u)
			}
			return roles, ok, err
		}}
	}
	guildCreate := Dispatch{Type: "GUILD_CREATE", Data: json.RawMessage(`{"id":"` + guild + `","name":"g","members":[{"user":{"id":"` + alice + `","username":"nelly"},"nick":"n","roles":["` + r2 + `","` + r1 + `"]}]}`)}
	tests := []struct {
		name        string
		lookup      *fakeLookup
		before      []Dispatch
		update      Dispatch
		wantSkip    SkipReason
		wantErr     error
		added, rems []string
		roles       []string
		wantCalls   int
	}{
		{
			name:   "cache hit from member add",
			lookup: lookup(nil, false, errStore), // must not be asked
			before: []Dispatch{memberDispatch("GUILD_MEMBER_ADD", "n", r1, r2)},
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n", r3, r2),
			added:  []string{r3}, rems: []string{r1}, roles: []string{r2, r3},
		},
		{
			name:   "cache hit from guild create backfill",
			before: []Dispatch{guildCreate},
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n", r1),
			rems:   []string{r2}, roles: []string{r1},
		},
		{
			name:   "all roles removed",
			before: []Dispatch{memberDispatch("GUILD_MEMBER_ADD", "n", r1, r2)},
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n"),
			rems:   []string{r1, r2},
		},
		{
			name:     "unchanged is skipped",
			before:   []Dispatch{memberDispatch("GUILD_MEMBER_ADD", "n", r1, r2)},
			update:   memberDispatch("GUILD_MEMBER_UPDATE", "n", r2, r1, r2),
			wantSkip: SkipUnchanged,
		},
		{
			name:   "nick change without role change",
			before: []Dispatch{memberDispatch("GUILD_MEMBER_ADD", "n", r1)},
			update: memberDispatch("GUILD_MEMBER_UPDATE", "new nick", r1),
			roles:  []string{r1},
		},
		{
			name:   "cache miss answered by lookup",
			lookup: lookup([]string{r1, r2}, true, nil),
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n", r2, r3),
			added:  []string{r3}, rems: []string{r1}, roles: []string{r2, r3},
			wantCalls: 1,
		},
		{
			name:      "lookup knows the member with the same roles",
			lookup:    lookup([]string{r1}, true, nil),
			update:    memberDispatch("GUILD_MEMBER_UPDATE", "n", r1),
			roles:     []string{r1},
			wantCalls: 1,
		},
		{
			name:      "unknown to lookup: full roles, no diff",
			lookup:    lookup(nil, false, nil),
			update:    memberDispatch("GUILD_MEMBER_UPDATE", "n", r2, r3),
			roles:     []string{r2, r3},
			wantCalls: 1,
		},
		{
			name:   "no lookup: full roles, no diff",
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n", r1),
			roles:  []string{r1},
		},
		{
			name:   "member remove forgets roles",
			before: []Dispatch{memberDispatch("GUILD_MEMBER_ADD", "n", r1), memberDispatch("GUILD_MEMBER_REMOVE", "")},
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n", r1),
			roles:  []string{r1},
		},
		{
			name:   "guild delete forgets roles",
			before: []Dispatch{memberDispatch("GUILD_MEMBER_ADD", "n", r1), {Type: "GUILD_DELETE", Data: json.RawMessage(`{"id":"` + guild + `"}`)}},
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n", r1),
			roles:  []string{r1},
		},
		{
			name:   "guild outage keeps roles",
			before: []Dispatch{memberDispatch("GUILD_MEMBER_ADD", "n", r1), {Type: "GUILD_DELETE", Data: json.RawMessage(`{"id":"` + guild + `","unavailable":true}`)}},
			update: memberDispatch("GUILD_MEMBER_UPDATE", "n", r2),
			added:  []string{r2}, rems: []string{r1}, roles: []string{r2},
		},
		{
			name:      "lookup error",
			lookup:    lookup(nil, false, errStore),
			update:    memberDispatch("GUILD_MEMBER_UPDATE", "n", r1),
			wantErr:   errStore,
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n *Normalizer
			if tt.lookup != nil {
				n = NewNormalizer(tt.lookup)
			} else {
				n = NewNormalizer(nil)
			}
			for _, d := range tt.before {
				mustNormalize(t, n, d, fallbackAt)
			}
			res, err := n.Normalize(context.Background(), tt.update, fallbackAt)
			if tt.wantErr != nil {
				var me *MalformedError
				if !errors.Is(err, tt.wantErr) || errors.As(err, &me) {
					t.Fatalf("err = %v, want a lookup error wrapping %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.lookup != nil && tt.lookup.calls != tt.wantCalls {
				t.Errorf("lookup called %d times, want %d", tt.lookup.calls, tt.wantCalls)
			}
			if res.Skip != tt.wantSkip {
				t.Fatalf("skip = %q, want %q (%+v)", res.Skip, tt.wantSkip, res.Events)
			}
			if tt.wantSkip != "" {
				return
			}
			if len(res.Events) != 1 {
				t.Fatalf("got %d events", len(res.Events))
			}
			d := res.Events[0].Data.(*event.MemberUpdate)
			if !reflect.DeepEqual(d.RolesAdded, tt.added) || !reflect.DeepEqual(d.RolesRemoved, tt.rems) || !reflect.DeepEqual(d.Roles, tt.roles) {
				t.Fatalf("added %v removed %v roles %v; want %v %v %v", d.RolesAdded, d.RolesRemoved, d.Roles, tt.added, tt.rems, tt.roles)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		typ, d string
		want   string // fragment of the error
	}{
		{"PRESENCE_UPDATE", `{"user":`, "bad JSON"},
		{"PRESENCE_UPDATE", `[1,2]`, "bad JSON"},
		{"MESSAGE_CREATE", ``, "missing d"},
		{"PRESENCE_UPDATE", `{"user":{"id":"1"},"status":"online"}`, "missing guild_id"},
		{"PRESENCE_UPDATE", `{"user":{},"guild_id":"2","status":"online"}`, "missing user.id"},
		{"PRESENCE_UPDATE", `{"user":{"id":"1"},"guild_id":"2","status":"away"}`, "data.status"},
		{"PRESENCE_UPDATE", `{"user":{"id":"x1"},"guild_id":"2","status":"online"}`, "user_id"},
		{"MESSAGE_CREATE", `{"id":"5","channel_id":"3","guild_id":"2","content":"hi"}`, "missing author.id"},
		{"MESSAGE_CREATE", `{"id":"5","channel_id":"3","guild_id":"2","author":{"id":"1"},"timestamp":"yesterday"}`, "bad timestamp"},
		{"MESSAGE_UPDATE", `{"id":"5","guild_id":"2","edited_timestamp":"2026-01-01T00:00:00Z"}`, "missing channel_id"},
		{"MESSAGE_DELETE", `{"id":"5","channel_id":"3","guild_id":"abc"}`, "guild_id"},
		{"MESSAGE_DELETE_BULK", `{"ids":[],"channel_id":"3","guild_id":"2"}`, "missing ids"},
		{"TYPING_START", `{"channel_id":"3","guild_id":"2","timestamp":1}`, "missing user_id"},
		{"GUILD_MEMBER_ADD", `{"user":{"id":"1"},"roles":[]}`, "missing guild_id"},
		{"GUILD_MEMBER_ADD", `{"guild_id":"2","user":{"id":"1"},"joined_at":"soon"}`, "bad joined_at"},
		{"GUILD_MEMBER_UPDATE", `{"guild_id":"2","user":{"id":"1"},"roles":["r1"]}`, "bad roles"},
		{"GUILD_MEMBER_UPDATE", `{"guild_id":"2","roles":[]}`, "missing user.id"},
		{"GUILD_MEMBER_REMOVE", `{"guild_id":"2"}`, "missing user.id"},
		{"GUILD_BAN_ADD", `{"user":{"id":"1"}}`, "missing guild_id"},
		{"VOICE_STATE_UPDATE", `{"guild_id":"2","channel_id":"3"}`, "missing user_id"},
		{"GUILD_CREATE", `{"name":"no id"}`, "missing id"},
		{"GUILD_CREATE", `{"id":"2","members":[{"user":{"id":"1"}},{"user":{}}]}`, "members[1]: missing user.id"},
		{"GUILD_CREATE", `{"id":"2","channels":[{"name":"no id","type":0}]}`, "channel_id"},
		{"GUILD_MEMBERS_CHUNK", `{"members":[]}`, "missing guild_id"},
		{"GUILD_DELETE", `{}`, "missing id"},
		{"CHANNEL_UPDATE", `{"guild_id":"2","name":"x","type":0}`, "missing id"},
		{"THREAD_CREATE", `{"id":"9","name":"t","type":11}`, "missing guild_id"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.want, func(t *testing.T) {
			d := Dispatch{Type: tt.typ, Seq: 1}
			if tt.d != "" {
				d.Data = json.RawMessage(tt.d)
			}
			res, err := NewNormalizer(nil).Normalize(context.Background(), d, fallbackAt)
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v (result %+v), want *MalformedError", err, res)
			}
			if me.Type != tt.typ || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "discord: ") {
				t.Fatalf("err = %q, want type %s and %q", err, tt.typ, tt.want)
			}
			if len(res.Events) != 0 {
				t.Fatalf("events returned with an error: %+v", res.Events)
			}
		})
	}
}

func TestSkips(t *testing.T) {
	tests := []struct {
		typ, d string
		want   SkipReason
	}{
		{"MESSAGE_CREATE", `{"id":"5","channel_id":"3","author":{"id":"1"},"content":"dm"}`, SkipDM},
		{"MESSAGE_UPDATE", `{"id":"5","channel_id":"3","edited_timestamp":"2026-01-01T00:00:00Z"}`, SkipDM},
		{"MESSAGE_DELETE", `{"id":"5","channel_id":"3"}`, SkipDM},
		{"MESSAGE_DELETE_BULK", `{"ids":["5"],"channel_id":"3"}`, SkipDM},
		{"TYPING_START", `{"channel_id":"3","user_id":"1","timestamp":1}`, SkipDM},
		{"CHANNEL_CREATE", `{"id":"3","type":1}`, SkipDM},
		{"CHANNEL_CREATE", `{"id":"3","guild_id":"2","type":14}`, SkipChannelType},
		{"VOICE_STATE_UPDATE", `{"channel_id":"3","user_id":"1"}`, SkipDM},
		{"MESSAGE_UPDATE", `{"id":"5","channel_id":"3","guild_id":"2","embeds":[{}]}`, SkipNotEdit},
		{"GUILD_CREATE", `{"id":"2","unavailable":true}`, SkipUnavailable},
		{"GUILD_MEMBERS_CHUNK", `{"guild_id":"2","members":[],"not_found":["1"]}`, SkipEmpty},
		{"READY", `{"v":10}`, SkipUnhandled},
		{"SOMETHING_NEW", `not even json`, SkipUnhandled},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+string(tt.want), func(t *testing.T) {
			res, err := NewNormalizer(nil).Normalize(context.Background(), Dispatch{Type: tt.typ, Data: json.RawMessage(tt.d)}, fallbackAt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Skip != tt.want || len(res.Events) != 0 {
				t.Fatalf("got %+v, want skip %q", res, tt.want)
			}
		})
	}
}

func TestZeroValueNormalizer(t *testing.T) {
	var n Normalizer
	mustNormalize(t, &n, memberDispatch("GUILD_MEMBER_ADD", "n", r1), fallbackAt)
	res := mustNormalize(t, &n, memberDispatch("GUILD_MEMBER_UPDATE", "n", r2), fallbackAt)
	if d := res.Events[0].Data.(*event.MemberUpdate); !reflect.DeepEqual(d.RolesAdded, []string{r2}) {
		t.Fatalf("zero Normalizer did not diff: %+v", d)
	}
}

func TestZeroReceiveTime(t *testing.T) {
	_, err := NewNormalizer(nil).Normalize(context.Background(), memberDispatch("GUILD_MEMBER_ADD", ""), time.Time{})
	if err == nil {
		t.Fatal("want an error for a zero receive time")
	}
}

func TestLongNamesAreClipped(t *testing.T) {
	// 100 four-byte characters: a legal Discord channel name over the event's byte limit.
	name := strings.Repeat("𝕏", 100)
	d := Dispatch{Type: "CHANNEL_CREATE", Data: json.RawMessage(`{"id":"3","guild_id":"2","type":0,"name":"` + name + `"}`)}
	res := mustNormalize(t, NewNormalizer(nil), d, fallbackAt)
	got := res.Events[0].Data.(*event.ChannelUpdate).Name
	if len(got) != 256 || !strings.HasPrefix(name, got) {
		t.Fatalf("clipped to %d bytes", len(got))
	}
	if clip("ab€", 3) != "ab" {
		t.Fatal("clip cut inside a rune")
	}
}

func TestDiffRoles(t *testing.T) {
	tests := []struct {
		name                   string
		before, after          []uint64
		wantAdded, wantRemoved []uint64
	}{
		{"empty", nil, nil, nil, nil},
		{"all new", nil, []uint64{1, 2}, []uint64{1, 2}, nil},
		{"all gone", []uint64{1, 2}, nil, nil, []uint64{1, 2}},
		{"mixed", []uint64{1, 3, 5}, []uint64{2, 3, 6}, []uint64{2, 6}, []uint64{1, 5}},
		{"same", []uint64{4, 9}, []uint64{4, 9}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := diffRoles(tt.before, tt.after)
			if !reflect.DeepEqual(a, tt.wantAdded) || !reflect.DeepEqual(r, tt.wantRemoved) {
				t.Fatalf("added %v removed %v", a, r)
			}
		})
	}
}

// TestConcurrentUse runs shards in parallel, as the gateway does; run with
// -race.
func TestConcurrentUse(t *testing.T) {
	n := NewNormalizer(nil)
	var wg sync.WaitGroup
	for shard := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := fmt.Sprint(1000 + shard)
			for i := range 200 {
				u := fmt.Sprint(5000 + i)
				for _, typ := range []string{"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"} {
					d := Dispatch{Type: typ, Data: json.RawMessage(`{"guild_id":"` + g + `","user":{"id":"` + u + `"},"roles":["` + fmt.Sprint(i%3+1) + `"],"nick":"` + typ + `"}`)}
					if _, err := n.Normalize(context.Background(), d, fallbackAt); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if l := n.cache.len(); l != 0 {
		t.Fatalf("%d members left in the cache after every member left", l)
	}
}
