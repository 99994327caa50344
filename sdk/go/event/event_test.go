package event

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() []Event {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := &User{ID: "80351110224678912", Username: "nelly"}
	prev := 42.0
	base := func(k Kind, d Data) Event {
		return Event{ID: "e-" + string(k), Kind: k, GuildID: "41771983423143937", UserID: u.ID, ChannelID: "41771983423143938", At: at, Data: d}
	}
	return []Event{
		base(KindPresenceUpdate, &Presence{Status: StatusOnline, ClientStatus: ClientStatus{Desktop: StatusOnline, Mobile: StatusIdle}, Activities: []Activity{{Type: ActivityPlaying, Name: "Chess"}}, User: u}),
		base(KindMessageCreate, &MessageCreate{MessageID: "1100000000000000001", Length: 12, Mentions: []string{"80351110224678913"}, User: u}),
		base(KindMessageUpdate, &MessageUpdate{MessageID: "1100000000000000001", Length: 14, EditedAt: at.Add(time.Minute)}),
		base(KindMessageDelete, &MessageDelete{MessageID: "1100000000000000001"}),
		base(KindTypingStart, &TypingStart{}),
		base(KindMemberJoin, &MemberJoin{User: u, Roles: []string{"41771983423143940"}}),
		base(KindMemberLeave, &MemberLeave{}),
		base(KindMemberUpdate, &MemberUpdate{RolesAdded: []string{"41771983423143941"}, RolesRemoved: []string{"41771983423143940"}}),
		base(KindBanAdd, &BanAdd{Reason: "spam"}),
		base(KindBanRemove, &BanRemove{}),
		base(KindVoiceState, &VoiceState{SelfMute: true}),
		base(KindGuildUpdate, &GuildUpdate{Name: "Test guild", MemberCount: 10}),
		base(KindChannelUpdate, &ChannelUpdate{Name: "general", Type: ChannelText}),
		base(KindScoreUpdate, &ScoreUpdate{Scorer: "suspicion-score", Score: 81.5, Previous: &prev, Explanation: "Online on 3 clients at once"}),
	}
}

func TestEveryKindRoundTripsAndValidates(t *testing.T) {
	evs := sample()
	if len(evs) != len(AllKinds()) {
		t.Fatalf("sample covers %d kinds, AllKinds() has %d", len(evs), len(AllKinds()))
	}
	for _, ev := range evs {
		t.Run(string(ev.Kind), func(t *testing.T) {
			if err := ev.Validate(); err != nil {
				t.Fatalf("valid sample rejected: %v", err)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var got Event
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Fatalf("round trip changed the event:\n got %#v\nwant %#v", got, ev)
			}
		})
	}
}

func TestGoldenEnvelope(t *testing.T) {
	// The golden file pins the wire shape other languages rely on.
	b, err := json.MarshalIndent(sample(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const path = "testdata/events.golden.json"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(b)) {
		t.Fatalf("wire shape changed; if intended, run with UPDATE_GOLDEN=1 and review the diff\n%s", b)
	}
}

func TestValidateReportsEveryBadField(t *testing.T) {
	valid := sample()[0]
	tests := []struct {
		name   string
		mutate func(e *Event)
		fields []string
	}{
		{"missing everything", func(e *Event) { *e = Event{} }, []string{"id", "kind", "guild_id", "at"}},
		{"unknown kind", func(e *Event) { e.Kind = "message.explode"; e.Data = nil }, []string{"kind"}},
		{"bad ids", func(e *Event) { e.GuildID = "abc"; e.UserID = "-1" }, []string{"guild_id", "user_id", "data.user.id"}},
		{"id with space", func(e *Event) { e.ID = "a b" }, []string{"id"}},
		{"id too long", func(e *Event) { e.ID = strings.Repeat("x", MaxIDLen+1) }, []string{"id"}},
		{"overflowing snowflake", func(e *Event) { e.UserID = "99999999999999999999" }, []string{"user_id", "data.user.id"}},
		{"bad status", func(e *Event) { e.Data = &Presence{Status: "away", ClientStatus: ClientStatus{Web: "busy"}} }, []string{"data.status", "data.client_status.web"}},
		{"offline with online client", func(e *Event) {
			e.Data = &Presence{Status: StatusOffline, ClientStatus: ClientStatus{Mobile: StatusOnline}}
		}, []string{"data.client_status"}},
		{"payload of other kind", func(e *Event) { e.Data = &BanAdd{} }, []string{"data"}},
		{"nil payload", func(e *Event) { e.Data = nil }, []string{"data"}},
		{"user id mismatch", func(e *Event) { e.Data = &Presence{Status: StatusOnline, User: &User{ID: "1"}} }, []string{"data.user.id"}},
		{"year 1970", func(e *Event) { e.At = time.Unix(0, 0) }, []string{"at"}},
		{"message without channel", func(e *Event) {
			e.Kind = KindMessageCreate
			e.ChannelID = ""
			e.Data = &MessageCreate{MessageID: "x", Length: -1, Mentions: []string{"12", "zz"}}
		}, []string{"channel_id", "data.message_id", "data.length", "data.mentions[1]"}},
		{"huge content", func(e *Event) {
			e.Kind = KindMessageCreate
			e.Data = &MessageCreate{MessageID: "1", Content: strings.Repeat("a", MaxContentLen+1)}
		}, []string{"data.content"}},
		{"bad score", func(e *Event) {
			bad := -1.0
			e.Kind = KindScoreUpdate
			e.Data = &ScoreUpdate{Score: 100.5, Previous: &bad, Explanation: strings.Repeat("x", MaxExplanation+1)}
		}, []string{"data.scorer", "data.score", "data.previous", "data.explanation"}},
		{"score without user", func(e *Event) {
			e.Kind = KindScoreUpdate
			e.UserID = ""
			e.Data = &ScoreUpdate{Scorer: "ghost-score", Score: 3}
		}, []string{"user_id"}},
		{"invalid utf8 name", func(e *Event) {
			e.Kind = KindChannelUpdate
			e.Data = &ChannelUpdate{Name: "\xff", Type: "closet"}
		}, []string{"data.name", "data.type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := valid
			tt.mutate(&ev)
			err := ev.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Fatalf("fields = %v, want %v (%v)", got, tt.fields, err)
			}
		})
	}
}

func TestUnmarshalRejectsUnknownKindAndBadData(t *testing.T) {
	for _, in := range []string{
		`{"id":"1","kind":"nope.nope","guild_id":"1","at":"2026-01-01T00:00:00Z","data":{}}`,
		`{"id":"1","kind":"presence.update","guild_id":"1","at":"2026-01-01T00:00:00Z","data":{"status":7}}`,
		`{"id":"1","kind":"presence.update","guild_id":"1","at":"yesterday"}`,
	} {
		var ev Event
		if err := json.Unmarshal([]byte(in), &ev); err == nil {
			t.Errorf("decoded %s without error", in)
		}
	}
	var ev Event
	if err := json.Unmarshal([]byte(`{"id":"1","kind":"typing.start","guild_id":"1","user_id":"2","channel_id":"3","at":"2026-01-01T00:00:00Z"}`), &ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := ev.Data.(*TypingStart); !ok || ev.Validate() != nil {
		t.Fatalf("typing without data should decode to an empty payload: %#v %v", ev.Data, ev.Validate())
	}
}

func TestSnowflake(t *testing.T) {
	// Discord's documented example: 175928847299117063 was made 2016-04-30 11:18:25.796 UTC.
	got, err := SnowflakeTime("175928847299117063")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2016, 4, 30, 11, 18, 25, 796e6, time.UTC); !got.Equal(want) {
		t.Fatalf("SnowflakeTime = %v, want %v", got, want)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 10e6, time.UTC)
	id := NewSnowflake(at, 3, 42)
	back, err := SnowflakeTime(id)
	if err != nil || !back.Equal(at) {
		t.Fatalf("NewSnowflake round trip: %v %v", back, err)
	}
	if NewSnowflake(at, 3, 43) == id {
		t.Fatal("different sequence numbers gave the same ID")
	}
	for _, bad := range []string{"", "12a", "-5", "184467440737095516150"} {
		if _, err := SnowflakeTime(bad); !errors.Is(err, ErrNotSnowflake) {
			t.Errorf("SnowflakeTime(%q) err = %v", bad, err)
		}
	}
}

func TestHostKindsAreNotIngestible(t *testing.T) {
	for _, k := range Kinds() {
		if !k.Ingestible() {
			t.Errorf("%s: a source kind must be ingestible", k)
		}
	}
	for _, k := range HostKinds() {
		if k.Ingestible() || !k.Known() {
			t.Errorf("%s: a host kind must be known but not ingestible", k)
		}
	}
	if Kind("nope.nope").Ingestible() {
		t.Error("an unknown kind is ingestible")
	}
}

func TestFamily(t *testing.T) {
	if KindMessageCreate.Family() != "message" || Kind("x").Family() != "x" {
		t.Fatal("Family")
	}
}
