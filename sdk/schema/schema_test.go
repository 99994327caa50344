package schema

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

const golden = "../go/event/testdata/events.golden.json"

// compile compiles the schema with the given $id from the embedded files,
// asserting formats (date-time) as the host's validator does.
func compile(t *testing.T, id string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names, err := fs.Glob(FS(), "*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded schemas: %v", err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m, _ := doc.(map[string]any)
		sid, _ := m["$id"].(string)
		if sid == "" {
			t.Fatalf("%s has no $id", name)
		}
		if err := c.AddResource(sid, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatalf("compile %s: %v", id, err)
	}
	return sch
}

func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode instance: %v", err)
	}
	return v
}

// goAccepts reports whether the Go package decodes and validates b.
func goAccepts(b []byte) error {
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return err
	}
	return e.Validate()
}

func goldenEvents(t *testing.T) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var evs []json.RawMessage
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatal("golden file holds no events")
	}
	return evs
}

func TestEmbeddedFiles(t *testing.T) {
	for name, id := range map[string]string{EventFile: EventID, EventsFile: EventsID} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatalf("%s not embedded: %v", name, err)
		}
		var doc struct {
			ID     string `json:"$id"`
			Schema string `json:"$schema"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc.ID != id {
			t.Errorf("%s: $id %q, want %q", name, doc.ID, id)
		}
		if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %q, want draft 2020-12", name, doc.Schema)
		}
	}
}

func TestCompile(t *testing.T) {
	compile(t, EventID)
	compile(t, EventsID)
}

func TestGoldenEventsValid(t *testing.T) {
	sch := compile(t, EventID)
	evs := goldenEvents(t)
	seen := map[event.Kind]bool{}
	for i, raw := range evs {
		var head struct{ Kind event.Kind }
		_ = json.Unmarshal(raw, &head)
		seen[head.Kind] = true
		if err := sch.Validate(instance(t, raw)); err != nil {
			t.Errorf("golden event %d (%s) rejected: %v", i, head.Kind, err)
		}
	}
	for _, k := range event.AllKinds() {
		if !seen[k] {
			t.Errorf("golden file has no %s event", k)
		}
	}

	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	batch := compile(t, EventsID)
	if err := batch.Validate(instance(t, b)); err != nil {
		t.Errorf("golden batch rejected: %v", err)
	}
	if err := batch.Validate(instance(t, []byte(`[]`))); err != nil {
		t.Errorf("empty batch rejected: %v", err)
	}
	if err := batch.Validate(instance(t, []byte(`[{"id":"x"}]`))); err == nil {
		t.Error("batch with an invalid event accepted")
	}
	if err := batch.Validate(instance(t, evs[0])); err == nil {
		t.Error("a single event accepted as a batch")
	}
}

// variant returns the golden event of kind k with edit applied to its
// decoded form.
func variant(t *testing.T, k event.Kind, edit func(ev, data map[string]any)) []byte {
	t.Helper()
	for _, raw := range goldenEvents(t) {
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev["kind"] != string(k) {
			continue
		}
		data, _ := ev["data"].(map[string]any)
		edit(ev, data)
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("golden file has no %s event", k)
	return nil
}

func TestInvalidEvents(t *testing.T) {
	sch := compile(t, EventID)
	cases := []struct {
		name string
		kind event.Kind
		edit func(ev, data map[string]any)
	}{
		{"unknown kind", event.KindPresenceUpdate, func(ev, _ map[string]any) { ev["kind"] = "presence.explode" }},
		{"missing kind", event.KindGuildUpdate, func(ev, _ map[string]any) { delete(ev, "kind") }},
		{"presence without status", event.KindPresenceUpdate, func(_, d map[string]any) { delete(d, "status") }},
		{"presence bad status", event.KindPresenceUpdate, func(_, d map[string]any) { d["status"] = "away" }},
		{"presence without data", event.KindPresenceUpdate, func(ev, _ map[string]any) { delete(ev, "data") }},
		{"bad guild snowflake", event.KindMessageCreate, func(ev, _ map[string]any) { ev["guild_id"] = "guild-1" }},
		{"snowflake too long", event.KindMessageCreate, func(ev, _ map[string]any) { ev["user_id"] = strings.Repeat("1", 21) }},
		{"bad mention snowflake", event.KindMessageCreate, func(_, d map[string]any) { d["mentions"] = []any{"@nelly"} }},
		{"client status busy", event.KindPresenceUpdate, func(_, d map[string]any) {
			d["client_status"] = map[string]any{"mobile": "busy"}
		}},
		{"offline with a client online", event.KindPresenceUpdate, func(_, d map[string]any) {
			d["status"] = "offline"
			d["client_status"] = map[string]any{"desktop": "online"}
		}},
		{"bad activity type", event.KindPresenceUpdate, func(_, d map[string]any) {
			d["activities"] = []any{map[string]any{"type": "dancing", "name": "x"}}
		}},
		{"message.create without channel_id", event.KindMessageCreate, func(ev, _ map[string]any) { delete(ev, "channel_id") }},
		{"message.create empty channel_id", event.KindMessageCreate, func(ev, _ map[string]any) { ev["channel_id"] = "" }},
		{"message.create without message_id", event.KindMessageCreate, func(_, d map[string]any) { delete(d, "message_id") }},
		{"presence without user_id", event.KindPresenceUpdate, func(ev, _ map[string]any) { delete(ev, "user_id") }},
		{"message.create negative length", event.KindMessageCreate, func(_, d map[string]any) { d["length"] = -1 }},
		{"too many mentions", event.KindMessageCreate, func(_, d map[string]any) {
			m := make([]any, event.MaxListLen+1)
			for i := range m {
				m[i] = "1"
			}
			d["mentions"] = m
		}},
		{"content too long", event.KindMessageCreate, func(_, d map[string]any) {
			d["content"] = strings.Repeat("a", event.MaxContentLen+1)
		}},
		{"user without id", event.KindMemberJoin, func(_, d map[string]any) { d["user"] = map[string]any{"username": "nelly"} }},
		{"ban reason too long", event.KindBanAdd, func(_, d map[string]any) { d["reason"] = strings.Repeat("r", event.MaxReasonLen+1) }},
		{"channel.update without type", event.KindChannelUpdate, func(_, d map[string]any) { delete(d, "type") }},
		{"channel.update bad type", event.KindChannelUpdate, func(_, d map[string]any) { d["type"] = "dm" }},
		{"negative member_count", event.KindGuildUpdate, func(_, d map[string]any) { d["member_count"] = -3 }},
		{"over-long id", event.KindMessageDelete, func(ev, _ map[string]any) { ev["id"] = strings.Repeat("x", event.MaxIDLen+1) }},
		{"id with space", event.KindMessageDelete, func(ev, _ map[string]any) { ev["id"] = "a b" }},
		{"empty id", event.KindMessageDelete, func(ev, _ map[string]any) { ev["id"] = "" }},
		{"at not a date-time", event.KindMessageDelete, func(ev, _ map[string]any) { ev["at"] = "yesterday" }},
		{"at before Discord", event.KindMessageDelete, func(ev, _ map[string]any) { ev["at"] = "2014-12-31T23:59:59Z" }},
		{"missing at", event.KindMessageDelete, func(ev, _ map[string]any) { delete(ev, "at") }},
		{"missing guild_id", event.KindMessageDelete, func(ev, _ map[string]any) { delete(ev, "guild_id") }},
		{"score above 100", event.KindScoreUpdate, func(_, d map[string]any) { d["score"] = 100.5 }},
		{"score without scorer", event.KindScoreUpdate, func(_, d map[string]any) { delete(d, "scorer") }},
		{"negative previous score", event.KindScoreUpdate, func(_, d map[string]any) { d["previous"] = -1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := variant(t, tc.kind, tc.edit)
			err := sch.Validate(instance(t, b))
			if err == nil {
				t.Errorf("schema accepted %s", b)
			} else {
				t.Logf("schema: %v", err)
			}
			if err := goAccepts(b); err == nil {
				t.Errorf("schema and Go disagree: Go accepts %s", b)
			}
		})
	}
}

// TestValidVariants checks what the schema must keep accepting: optional
// envelope fields left out and fields it does not know yet.
func TestValidVariants(t *testing.T) {
	sch := compile(t, EventID)
	cases := []struct {
		name string
		kind event.Kind
		edit func(ev, data map[string]any)
	}{
		{"guild.update without user and channel", event.KindGuildUpdate, func(ev, _ map[string]any) {
			delete(ev, "user_id")
			delete(ev, "channel_id")
		}},
		{"voice.state left voice", event.KindVoiceState, func(ev, _ map[string]any) { delete(ev, "channel_id") }},
		{"message.update without user", event.KindMessageUpdate, func(ev, _ map[string]any) { delete(ev, "user_id") }},
		{"unknown envelope and payload fields", event.KindPresenceUpdate, func(ev, d map[string]any) {
			ev["source"] = "gateway"
			d["platform"] = "console"
			d["client_status"] = map[string]any{"desktop": "dnd", "embedded": "online"}
		}},
		{"offline everywhere", event.KindPresenceUpdate, func(_, d map[string]any) {
			d["status"] = "offline"
			d["client_status"] = map[string]any{"desktop": "offline"}
		}},
		{"time with offset and fraction", event.KindTypingStart, func(ev, _ map[string]any) { ev["at"] = "2026-03-01T13:00:00.123+01:00" }},
		{"largest snowflake", event.KindBanRemove, func(ev, _ map[string]any) { ev["user_id"] = "18446744073709551615" }},
		{"channel.update every type field", event.KindChannelUpdate, func(_, d map[string]any) {
			d["type"] = "forum"
			d["parent_id"] = "41771983423143939"
			d["position"] = 3
			d["nsfw"] = true
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := variant(t, tc.kind, tc.edit)
			if err := sch.Validate(instance(t, b)); err != nil {
				t.Errorf("schema rejected %s: %v", b, err)
			}
			if err := goAccepts(b); err != nil {
				t.Errorf("schema and Go disagree: Go rejects %s: %v", b, err)
			}
		})
	}
}

// rawSchema is the part of event.schema.json the consistency tests read.
type rawSchema struct {
	Properties struct {
		Kind struct {
			Enum []string `json:"enum"`
		} `json:"kind"`
	} `json:"properties"`
	AllOf []struct {
		If struct {
			Properties struct {
				Kind struct {
					Const string `json:"const"`
				} `json:"kind"`
			} `json:"properties"`
		} `json:"if"`
		Then struct {
			Required   []string `json:"required"`
			Properties struct {
				Data struct {
					Ref string `json:"$ref"`
				} `json:"data"`
			} `json:"properties"`
		} `json:"then"`
	} `json:"allOf"`
	Defs map[string]struct {
		Enum []string `json:"enum"`
	} `json:"$defs"`
}

func readRaw(t *testing.T) rawSchema {
	t.Helper()
	b, err := fs.ReadFile(FS(), EventFile)
	if err != nil {
		t.Fatal(err)
	}
	var s rawSchema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKindsMatchGo(t *testing.T) {
	s := readRaw(t)
	var want []string
	for _, k := range event.AllKinds() {
		want = append(want, string(k))
	}
	slices.Sort(want)

	enum := slices.Clone(s.Properties.Kind.Enum)
	slices.Sort(enum)
	if !slices.Equal(enum, want) {
		t.Errorf("kind enum %v, Go kinds %v", enum, want)
	}

	var branches []string
	for i, b := range s.AllOf {
		k := b.If.Properties.Kind.Const
		branches = append(branches, k)
		ref := b.Then.Properties.Data.Ref
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if _, def := s.Defs[name]; !ok || !def {
			t.Errorf("allOf[%d] (%s): data $ref %q names no $defs entry", i, k, ref)
		}
	}
	slices.Sort(branches)
	if !slices.Equal(branches, want) {
		t.Errorf("kinds with a data branch %v, Go kinds %v", branches, want)
	}
}

func TestEnumsMatchGo(t *testing.T) {
	s := readRaw(t)
	for _, v := range s.Defs["status"].Enum {
		if !event.Status(v).Valid() {
			t.Errorf("schema status %q is not valid in Go", v)
		}
	}
	if n := len(s.Defs["status"].Enum); n != 4 {
		t.Errorf("schema has %d statuses, Go has 4", n)
	}
	var clients []string
	for _, c := range event.Clients() {
		clients = append(clients, string(c))
	}
	if got := s.Defs["client"].Enum; !slices.Equal(got, clients) {
		t.Errorf("schema clients %v, Go clients %v", got, clients)
	}
	for _, name := range []string{"activityType", "channelType"} {
		if len(s.Defs[name].Enum) == 0 {
			t.Errorf("$defs/%s has no enum", name)
		}
	}
}

// TestRequiredEnvelopeFieldsMatchGo checks each kind's required user_id and
// channel_id against the Go validator: an event without the field must be
// rejected by both or accepted by both.
func TestRequiredEnvelopeFieldsMatchGo(t *testing.T) {
	sch := compile(t, EventID)
	for _, k := range event.AllKinds() {
		for _, field := range []string{"user_id", "channel_id"} {
			b := variant(t, k, func(ev, _ map[string]any) { delete(ev, field) })
			schemaOK := sch.Validate(instance(t, b)) == nil
			goOK := goAccepts(b) == nil
			if schemaOK != goOK {
				t.Errorf("%s without %s: schema accepts=%v, Go accepts=%v", k, field, schemaOK, goOK)
			}
		}
	}
}

// TestEveryPropertyDocumented walks the schema and requires a description on
// every property, since the schema is the documentation for plugin authors.
func TestEveryPropertyDocumented(t *testing.T) {
	for _, name := range []string{EventFile, EventsFile, ScoreRequestFile, ScoreResponseFile} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				if props, ok := v["properties"].(map[string]any); ok {
					inThen := strings.Contains(path, "/then") || strings.Contains(path, "/if")
					for p, ps := range props {
						m, _ := ps.(map[string]any)
						if d, _ := m["description"].(string); d == "" && !inThen {
							t.Errorf("%s: %s/properties/%s has no description", name, path, p)
						}
					}
				}
				for k, c := range v {
					walk(path+"/"+k, c)
				}
			case []any:
				for i, c := range v {
					walk(path+"/"+strconv.Itoa(i), c)
				}
			}
		}
		walk("#", doc)
	}
}
