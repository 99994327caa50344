package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	"github.com/spywatcher/spywatcher/host/internal/privacy"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

const (
	token   = "test-admin-token-0123456789"
	guildID = "41771983423143937"
	chanID  = "41771983423143938"
	alice   = "80351110224678912"
	bob     = "80351110224678913"
)

var now = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

type harness struct {
	h    http.Handler
	st   *store.Store
	pipe *pipeline.Pipeline
	done chan error

	privacy *privacy.Service
}

var allTracking = store.Tracking{Presence: true, Messages: true, Typing: true, Voice: true, Members: true}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "api.db"), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := auth.EnsureAdminToken(ctx, st, token); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	// The test guild collects everything: a guild collects nothing until
	// its admin says what (see privacy.Filter), and these tests are about
	// the API, not about that choice (privacy_test.go is).
	if err := st.PutGuildSettings(ctx, store.GuildSettings{GuildID: guildID, Tracking: allTracking, Retention: store.DefaultRetention()}); err != nil {
		t.Fatal(err)
	}
	filter, err := privacy.NewFilter(ctx, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{FlushInterval: time.Millisecond, Now: func() time.Time { return now }, Filter: filter}, st, bus.NewLocal(), reg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	t.Cleanup(func() { p.Close(); <-done })
	d, _ := withAuth(t, st, Deps{Store: st, Ingest: p, Gatherer: reg, Registerer: reg,
		MaxBodyBytes: 64 << 10, Now: func() time.Time { return now }}, nil)
	ph, err := plugin.New(ctx, plugin.Config{Dir: filepath.Join(t.TempDir(), "plugins"), CacheDir: filepath.Join(guesttest.Dir(t), "cache")},
		st, d.Authz.(plugin.Policy), safehttp.New(safehttp.Options{}), bus.NewLocal(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ph.Close(context.Background()) })
	d.Plugins = ph
	svc, err := privacy.New(privacy.Config{Now: func() time.Time { return now }}, st, filter, ph, reg)
	if err != nil {
		t.Fatal(err)
	}
	d.Privacy = svc
	h, err := Router(d)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{h: h, st: st, pipe: p, done: done, privacy: svc}
}

func (hs *harness) do(method, path, tok, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	return w
}

func seedEvents() []event.Event {
	at := func(d time.Duration) time.Time { return now.Add(-3 * time.Hour).Add(d) }
	u := func(id, name string) *event.User { return &event.User{ID: id, Username: name} }
	on := event.StatusOnline
	return []event.Event{
		{ID: "g1", Kind: event.KindGuildUpdate, GuildID: guildID, At: at(0), Data: &event.GuildUpdate{Name: "Test Guild", MemberCount: 2}},
		{ID: "c1", Kind: event.KindChannelUpdate, GuildID: guildID, ChannelID: chanID, At: at(0), Data: &event.ChannelUpdate{Name: "general", Type: event.ChannelText}},
		{ID: "j1", Kind: event.KindMemberJoin, GuildID: guildID, UserID: alice, At: at(time.Minute), Data: &event.MemberJoin{User: u(alice, "alice"), Roles: []string{"41771983423143940"}}},
		{ID: "j2", Kind: event.KindMemberJoin, GuildID: guildID, UserID: bob, At: at(time.Minute), Data: &event.MemberJoin{User: u(bob, "bob")}},
		{ID: "p1", Kind: event.KindPresenceUpdate, GuildID: guildID, UserID: alice, At: at(2 * time.Minute), Data: &event.Presence{Status: on, ClientStatus: event.ClientStatus{Desktop: on, Mobile: on}}},
		{ID: "m1", Kind: event.KindMessageCreate, GuildID: guildID, UserID: alice, ChannelID: chanID, At: at(3 * time.Minute), Data: &event.MessageCreate{MessageID: "1100000000000000001", Length: 4}},
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (hs *harness) seed(t *testing.T) {
	t.Helper()
	w := hs.do("POST", "/api/v1/events", token, "application/json", toJSON(seedEvents()))
	if w.Code != http.StatusAccepted {
		t.Fatalf("seed: %d %s", w.Code, w.Body)
	}
	// Wait until the pipeline has stored them.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := hs.st.GetMember(context.Background(), guildID, alice); err == nil && m.MessageCount == 1 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("seed events not stored in time")
}

func TestScenarios(t *testing.T) {
	hs := newHarness(t)
	hs.seed(t)
	g := "/api/v1/guilds/" + guildID
	tests := []struct {
		name, method, path, tok string
		status                  int
		contains                string
	}{
		{"health is public", "GET", "/healthz", "", 200, `"ok"`},
		{"ready", "GET", "/readyz", "", 200, `"ready"`},
		{"metrics", "GET", "/metrics", "", 200, "spywatcher_pipeline_events_stored_total"},
		{"no token", "GET", "/api/v1/guilds", "", 401, `"code":"unauthorized"`},
		{"wrong token", "GET", "/api/v1/guilds", "not-the-token-at-all", 401, `"unauthorized"`},
		{"openapi needs auth", "GET", "/api/v1/openapi.json", "", 401, "unauthorized"},
		{"openapi", "GET", "/api/v1/openapi.json", token, 200, `"openapi": "3.1.0"`},
		{"guilds", "GET", "/api/v1/guilds", token, 200, `"name":"Test Guild"`},
		{"guild", "GET", g, token, 200, `"members":2`},
		{"guild online count", "GET", g, token, 200, `"online":1`},
		{"guild not a snowflake", "GET", "/api/v1/guilds/abc", token, 400, `"field":"guild"`},
		{"unknown guild", "GET", "/api/v1/guilds/123", token, 404, `"not_found"`},
		{"channels", "GET", g + "/channels", token, 200, `"general"`},
		{"members", "GET", g + "/members", token, 200, `"name":"alice"`},
		{"members search", "GET", g + "/members?q=BO", token, 200, `"name":"bob"`},
		{"members sort messages", "GET", g + "/members?sort=messages&order=desc&limit=1", token, 200, `"message_count":1`},
		{"members paginate", "GET", g + "/members?limit=1", token, 200, `"next_cursor"`},
		{"members online", "GET", g + "/members?status=online", token, 200, `"user_id":"` + alice},
		{"members bad params", "GET", g + "/members?sort=height&limit=0&order=up", token, 400, `"field":"sort"`},
		{"members bad cursor", "GET", g + "/members?cursor=zzz", token, 400, `"field":"cursor"`},
		{"members unknown guild", "GET", "/api/v1/guilds/123/members", token, 404, "not_found"},
		{"member", "GET", g + "/members/" + alice, token, 200, `"roles":["41771983423143940"]`},
		{"member presence by client", "GET", g + "/members/" + alice + "?window=24h", token, 200, `"desktop":{"seconds":10680`},
		{"member account age", "GET", g + "/members/" + alice, token, 200, `"account_age_days":`},
		{"member unknown", "GET", g + "/members/999", token, 404, "not_found"},
		{"member bad window", "GET", g + "/members/" + alice + "?window=forever", token, 400, `"field":"window"`},
		{"member from after to", "GET", g + "/members/" + alice + "?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", token, 400, `"field":"from"`},
		{"presence", "GET", g + "/presence", token, 200, `"multi_client":1`},
		{"presence by client", "GET", g + "/presence", token, 200, `"by_client":{"desktop":1,"mobile":1,"web":0}`},
		{"events", "GET", g + "/events?limit=2", token, 200, `"next_cursor"`},
		{"events by kind", "GET", g + "/events?kind=message.create", token, 200, `"message_id":"1100000000000000001"`},
		{"events by kinds", "GET", g + "/events?kind=member.join,guild.update&user=" + bob, token, 200, `"id":"j2"`},
		{"events unknown kind", "GET", g + "/events?kind=message.explode", token, 400, `unknown kind`},
		{"events bad time", "GET", g + "/events?from=yesterday", token, 400, `"field":"from"`},
		{"activity", "GET", g + "/activity?window=6h", token, 200, `"messages":1`},
		{"activity of a member", "GET", g + "/activity?user=" + alice + "&window=6h", token, 200, `"user_id":"` + alice},
		{"activity span too long", "GET", g + "/activity?window=200d", token, 400, `"field":"window"`},
		{"no such route", "GET", "/api/v1/nothing", token, 404, "not_found"},
		{"wrong method", "DELETE", "/api/v1/guilds", token, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := hs.do(tt.method, tt.path, tt.tok, "", "")
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.contains) {
				t.Fatalf("%s %s: %d %s\nwant %d containing %s", tt.method, tt.path, w.Code, w.Body, tt.status, tt.contains)
			}
			if w.Code >= 400 {
				var e struct {
					Error struct{ Code, Message string }
				}
				if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
					t.Fatalf("error not in the error shape: %s", w.Body)
				}
			}
		})
	}
}

func TestIngestBadInput(t *testing.T) {
	hs := newHarness(t)
	valid := seedEvents()[5]
	invalid := valid
	invalid.ID = "bad one"
	invalid.UserID = "x"
	tests := []struct {
		name, ctype, body string
		status            int
		contains          string
	}{
		{"wrong content type", "text/plain", "{}", 415, "unsupported_media_type"},
		{"not json", "application/json", "{nope", 422, "malformed JSON"},
		{"broken array", "application/json", "[{]", 400, "not a JSON array"},
		{"scalar", "application/json", "42", 400, "must be a JSON event object"},
		{"empty array", "application/json", "[]", 400, "no events"},
		{"unknown kind", "application/json", `{"id":"a","kind":"message.explode","guild_id":"1","at":"2026-03-02T10:00:00Z"}`, 422, "unknown kind"},
		{"all invalid", "application/json", toJSON([]event.Event{invalid}), 422, `"field":"user_id"`},
		{"oversized", "application/json", "[" + strings.Repeat(`{"id":"x"},`, 10000) + `{"id":"x"}]`, 413, "payload_too_large"},
		{"mixed keeps the good", "application/json", toJSON([]any{valid, invalid, "str"}), 202, `"accepted":1,"duplicates":0,"shed":0,"not_collected":0,"rejected":[{"index":1,"id":"bad one"`},
		{"ndjson", "application/x-ndjson", toJSON(seedEvents()[0]) + "\n\n" + toJSON(seedEvents()[1]) + "\n{oops\n", 202, `"accepted":2`},
		{"duplicates", "application/json", toJSON(valid), 202, `"duplicates":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := hs.do("POST", "/api/v1/events", token, tt.ctype, tt.body)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.contains) {
				t.Fatalf("%d %s\nwant %d containing %s", w.Code, truncate(w.Body.String(), 600), tt.status, tt.contains)
			}
		})
	}
	// What was accepted is stored despite the bad neighbours.
	deadline := time.Now().Add(5 * time.Second)
	for {
		page, _ := hs.st.ListEvents(context.Background(), guildID, store.EventQuery{})
		if len(page.Events) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %d events, want 3", len(page.Events))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIngestWhenShuttingDown(t *testing.T) {
	hs := newHarness(t)
	hs.pipe.Close()
	w := hs.do("POST", "/api/v1/events", token, "application/json", toJSON(seedEvents()[:2]))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "index 0") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// TestIngestWaitStored: with ?wait=stored the answer is 200 only once every
// accepted event is in the store (readable at once, no polling), a resent
// batch is acknowledged again (the store keeps one copy), and a pipeline
// that cannot take the events answers 503 naming every index not stored.
func TestIngestWaitStored(t *testing.T) {
	hs := newHarness(t)
	evs := seedEvents()
	invalid := evs[5]
	invalid.ID, invalid.UserID = "bad one", "x"
	body := toJSON(append(append([]event.Event{}, evs...), invalid))
	for round := 0; round < 2; round++ {
		w := hs.do("POST", "/api/v1/events?wait=stored", token, "application/json", body)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"stored":6`) ||
			!strings.Contains(w.Body.String(), `"rejected":[{"index":6`) {
			t.Fatalf("round %d: %d %s", round, w.Code, w.Body)
		}
		// Answered means stored: read it back without waiting.
		page, err := hs.st.ListEvents(context.Background(), guildID, store.EventQuery{Limit: 100})
		if err != nil || len(page.Events) != len(evs) {
			t.Fatalf("round %d: %d events stored right after the answer (%v), want %d", round, len(page.Events), err, len(evs))
		}
	}
	if w := hs.do("POST", "/api/v1/events?wait=forever", token, "application/json", body); w.Code != 400 ||
		!strings.Contains(w.Body.String(), `"field":"wait"`) {
		t.Fatalf("bad wait: %d %s", w.Code, w.Body)
	}
	hs.pipe.Close()
	w := hs.do("POST", "/api/v1/events?wait=stored", token, "application/json", toJSON(evs[:2]))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"not_stored":[0,1]`) {
		t.Fatalf("closed pipeline: %d %s", w.Code, w.Body)
	}
}

// openAPI is the parts of the document the tests read.
type openAPI struct {
	Paths map[string]map[string]struct {
		Responses map[string]struct {
			Ref     string `json:"$ref"`
			Content map[string]struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
}

func TestOpenAPIMatchesRouter(t *testing.T) {
	var doc openAPI
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			if len(op.Responses) == 0 {
				t.Errorf("%s %s documents no responses", method, path)
			}
		}
	}
	hs := newHarness(t)
	routed := map[string]bool{}
	err := chi.Walk(hs.h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		// OpenAPI has no wildcard; a chi /* is documented as /{path}.
		route = strings.Replace(strings.TrimSuffix(route, "/"), "/*", "/{path}", 1)
		routed[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for r := range routed {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routed[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("router and openapi.json disagree\nroutes not documented: %v\ndocumented but not routed: %v", missing, extra)
	}
}

// TestResponsesMatchOpenAPISchemas checks real responses against the schemas
// the document promises for them.
func TestResponsesMatchOpenAPISchemas(t *testing.T) {
	var raw any
	if err := json.Unmarshal(openAPIDoc, &raw); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("openapi.json", raw); err != nil {
		t.Fatal(err)
	}
	hs := newHarness(t)
	hs.seed(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, sc := range []float64{40, 72.5} {
		if err := hs.st.PutScores(context.Background(), []store.MemberScore{{GuildID: guildID, Scorer: "ghost-score", UserID: alice,
			Score: sc, Factors: json.RawMessage(`[{"name":"online_hours_per_message","contribution":72.5,"value":10.6}]`),
			Explanation: "Online 26.0 h for 12 messages", RunID: "r1", ComputedAt: at.Add(time.Duration(i) * time.Hour), History: true}}); err != nil {
			t.Fatal(err)
		}
	}
	g := "/api/v1/guilds/" + guildID
	cases := []struct{ path, route, status, schemaPtr string }{
		{"/api/v1/guilds", "/api/v1/guilds", "200", ""},
		{g, "/api/v1/guilds/{guild}", "200", ""},
		{g + "/channels", "/api/v1/guilds/{guild}/channels", "200", ""},
		{g + "/members?limit=1", "/api/v1/guilds/{guild}/members", "200", ""},
		{g + "/members/" + alice, "/api/v1/guilds/{guild}/members/{user}", "200", ""},
		{g + "/presence", "/api/v1/guilds/{guild}/presence", "200", ""},
		{g + "/events", "/api/v1/guilds/{guild}/events", "200", ""},
		{g + "/activity", "/api/v1/guilds/{guild}/activity", "200", ""},
		{g + "/settings", "/api/v1/guilds/{guild}/settings", "200", ""},
		{g + "/opt-outs", "/api/v1/guilds/{guild}/opt-outs", "200", ""},
		{g + "/members/" + alice + "/data", "/api/v1/guilds/{guild}/members/{user}/data", "200", ""},
		{g + "/privacy-requests", "/api/v1/guilds/{guild}/privacy-requests", "200", ""},
		{g + "/members?sort=x", "/api/v1/guilds/{guild}/members", "400", "#/components/schemas/Error"},
		{g + "/analytics/heatmap", "/api/v1/guilds/{guild}/analytics/heatmap", "200", ""},
		{g + "/analytics/heatmap?metric=presence&user=" + alice + "&tz=Europe/Paris", "/api/v1/guilds/{guild}/analytics/heatmap", "200", ""},
		{g + "/analytics/presence", "/api/v1/guilds/{guild}/analytics/presence", "200", ""},
		{g + "/analytics/roles?limit=1", "/api/v1/guilds/{guild}/analytics/roles", "200", ""},
		{g + "/scores", "/api/v1/guilds/{guild}/scores", "200", ""},
		{g + "/scores?scorer=ghost-score", "/api/v1/guilds/{guild}/scores", "200", ""},
		{g + "/members/" + alice + "/scores?window=366d", "/api/v1/guilds/{guild}/members/{user}/scores", "200", ""},
		{g + "/analytics/heatmap?tz=Mars/Olympus", "/api/v1/guilds/{guild}/analytics/heatmap", "400", "#/components/schemas/Error"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			ptr := tc.schemaPtr
			if ptr == "" {
				ptr = "#/paths/" + escapePointer(tc.route) + "/get/responses/" + tc.status + "/content/application~1json/schema"
			}
			sch, err := c.Compile("openapi.json" + ptr)
			if err != nil {
				t.Fatalf("compile %s: %v", ptr, err)
			}
			w := hs.do("GET", tc.path, token, "", "")
			if fmt.Sprint(w.Code) != tc.status {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			v, err := jsonschema.UnmarshalJSON(io.Reader(bytes.NewReader(w.Body.Bytes())))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Fatalf("response does not match the documented schema: %v\n%s", err, truncate(w.Body.String(), 800))
			}
		})
	}
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
