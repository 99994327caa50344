package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/plugin/plugintest"
)

const (
	guild = "41771983423143937"
	alice = "80351110224678912"
	bob   = "80351110224678913"
	mods  = "41771983423143950"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func init() { now = func() time.Time { return t0.Add(time.Second) } }

func ev(id string, k event.Kind, user string, at time.Time, d event.Data) event.Event {
	return event.Event{ID: id, Kind: k, GuildID: guild, UserID: user, At: at, Data: d}
}

// receiver records what was posted and answers with the statuses queued in
// answers (then 204).
type receiver struct {
	posts   []plugin.FetchRequest
	answers []plugin.FetchResponse
	err     error
}

func (r *receiver) fetch(req plugin.FetchRequest) (plugin.FetchResponse, error) {
	r.posts = append(r.posts, req)
	if r.err != nil {
		return plugin.FetchResponse{}, r.err
	}
	if len(r.answers) > 0 {
		a := r.answers[0]
		r.answers = r.answers[1:]
		return a, nil
	}
	return plugin.FetchResponse{Status: 204}, nil
}

func newHost(cfg map[string]any, rcv *receiver) *plugintest.Host {
	h := plugintest.New(guild, cfg)
	h.Grants = []string{"http.fetch", "kv.read", "kv.write", "routes.serve", "events.ban.read", "events.member.read",
		"events.presence.read", "events.score.read"}
	if rcv != nil {
		h.Fetch = rcv.fetch
	}
	return h
}

func config(rules ...map[string]any) map[string]any {
	rs := make([]any, len(rules))
	for i, r := range rules {
		rs[i] = r
	}
	return map[string]any{
		"webhooks": []any{
			map[string]any{"id": "discord", "url": "https://discord.com/api/webhooks/1/secret-token", "format": "discord"},
			map[string]any{"id": "slack", "url": "https://hooks.slack.com/services/T/B/secret", "format": "slack"},
		},
		"rules": rs,
	}
}

func deliveries(t *testing.T, h *plugintest.Host, query string) []Delivery {
	t.Helper()
	q := map[string][]string{}
	if k, v, ok := strings.Cut(query, "="); ok {
		q[k] = []string{v}
	}
	res, err := h.HTTP(plugin.Request{Method: "GET", Path: "/deliveries", Query: q})
	if err != nil || res.Status != 200 {
		t.Fatalf("deliveries: %v %+v", err, res)
	}
	var out struct{ Deliveries []Delivery }
	json.Unmarshal(res.Body, &out)
	return out.Deliveries
}

func TestRules(t *testing.T) {
	prev := func(f float64) *float64 { return &f }
	young := event.NewSnowflake(t0.Add(-2*24*time.Hour), 0, 1)
	old := event.NewSnowflake(t0.Add(-400*24*time.Hour), 0, 2)
	tests := []struct {
		name  string
		rule  map[string]any
		ev    event.Event
		fires bool
		title string
	}{
		{"ban", map[string]any{"on": "ban.add"}, ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{Reason: "spam"}), true, "Member banned"},
		{"unban is not a ban", map[string]any{"on": "ban.add"}, ev("b2", event.KindBanRemove, alice, t0, &event.BanRemove{}), false, ""},
		{"role granted, any", map[string]any{"on": "role.granted"}, ev("r1", event.KindMemberUpdate, alice, t0, &event.MemberUpdate{RolesAdded: []string{mods}}), true, "Role granted"},
		{"role granted, other role", map[string]any{"on": "role.granted", "role_id": mods}, ev("r2", event.KindMemberUpdate, alice, t0, &event.MemberUpdate{RolesAdded: []string{"41771983423143951"}}), false, ""},
		{"role granted, that role", map[string]any{"on": "role.granted", "role_id": mods}, ev("r3", event.KindMemberUpdate, alice, t0, &event.MemberUpdate{RolesAdded: []string{"41771983423143951", mods}}), true, "Role granted"},
		{"role removed is not granted", map[string]any{"on": "role.granted"}, ev("r4", event.KindMemberUpdate, alice, t0, &event.MemberUpdate{RolesRemoved: []string{mods}}), false, ""},
		{"role removed", map[string]any{"on": "role.removed"}, ev("r5", event.KindMemberUpdate, alice, t0, &event.MemberUpdate{RolesRemoved: []string{mods}}), true, "Role removed"},
		{"one client", map[string]any{"on": "multi_client"}, ev("p1", event.KindPresenceUpdate, alice, t0, &event.Presence{Status: "online", ClientStatus: event.ClientStatus{Desktop: "online"}}), false, ""},
		{"two clients", map[string]any{"on": "multi_client"}, ev("p2", event.KindPresenceUpdate, alice, t0, &event.Presence{Status: "online", ClientStatus: event.ClientStatus{Desktop: "online", Mobile: "idle"}}), true, "Online on 2 clients at once"},
		{"two clients, three wanted", map[string]any{"on": "multi_client", "min_clients": 3}, ev("p3", event.KindPresenceUpdate, alice, t0, &event.Presence{Status: "online", ClientStatus: event.ClientStatus{Desktop: "online", Mobile: "idle", Web: "offline"}}), false, ""},
		{"score rises to threshold", map[string]any{"on": "score", "scorer": "suspicion-score", "threshold": 80}, ev("s1", event.KindScoreUpdate, alice, t0, &event.ScoreUpdate{Scorer: "suspicion-score", Score: 80, Previous: prev(60)}), true, "Score at or above 80"},
		{"first score above threshold", map[string]any{"on": "score", "threshold": 80}, ev("s2", event.KindScoreUpdate, alice, t0, &event.ScoreUpdate{Scorer: "ghost-score", Score: 95}), true, "Score at or above 80"},
		{"score already above", map[string]any{"on": "score", "threshold": 80}, ev("s3", event.KindScoreUpdate, alice, t0, &event.ScoreUpdate{Scorer: "ghost-score", Score: 95, Previous: prev(85)}), false, ""},
		{"score below", map[string]any{"on": "score", "threshold": 80}, ev("s4", event.KindScoreUpdate, alice, t0, &event.ScoreUpdate{Scorer: "ghost-score", Score: 79.9}), false, ""},
		{"score of another scorer", map[string]any{"on": "score", "scorer": "suspicion-score", "threshold": 80}, ev("s5", event.KindScoreUpdate, alice, t0, &event.ScoreUpdate{Scorer: "ghost-score", Score: 99}), false, ""},
		{"young account joins", map[string]any{"on": "member.join", "max_account_age_days": 7}, ev("j1", event.KindMemberJoin, young, t0, &event.MemberJoin{}), true, "New account joined"},
		{"old account joins", map[string]any{"on": "member.join", "max_account_age_days": 7}, ev("j2", event.KindMemberJoin, old, t0, &event.MemberJoin{}), false, ""},
		{"backfilled join", map[string]any{"on": "member.join"}, ev("j3", event.KindMemberJoin, young, t0, &event.MemberJoin{Backfill: true}), false, ""},
		{"any join", map[string]any{"on": "member.join"}, ev("j4", event.KindMemberJoin, old, t0, &event.MemberJoin{}), true, "Member joined"},
		{"leave", map[string]any{"on": "member.leave"}, ev("l1", event.KindMemberLeave, alice, t0, &event.MemberLeave{}), true, "Member left"},
		{"other user", map[string]any{"on": "ban.add", "users": []any{bob}}, ev("b3", event.KindBanAdd, alice, t0, &event.BanAdd{}), false, ""},
		{"watched user", map[string]any{"on": "ban.add", "users": []any{bob}}, ev("b4", event.KindBanAdd, bob, t0, &event.BanAdd{}), true, "Member banned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule["id"] = "r"
			tt.rule["webhooks"] = []any{"discord"}
			h := newHost(config(tt.rule), &receiver{})
			if err := h.EventsBinary(tt.ev); err != nil {
				t.Fatal(err)
			}
			ds := deliveries(t, h, "")
			if (len(ds) == 1) != tt.fires || len(ds) > 1 {
				t.Fatalf("%d deliveries, fires=%v", len(ds), tt.fires)
			}
			if tt.fires && !strings.HasPrefix(ds[0].Summary, tt.title) {
				t.Fatalf("summary %q, want title %q", ds[0].Summary, tt.title)
			}
		})
	}
}

func TestBodies(t *testing.T) {
	rcv := &receiver{}
	h := newHost(config(map[string]any{"id": "bans", "on": "ban.add"}), rcv)
	h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{Reason: "spam <@everyone> **now**", User: &event.User{ID: alice, Username: "alice_x"}}))
	if err := h.Tick(t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if len(rcv.posts) != 2 {
		t.Fatalf("%d posts, want one per webhook", len(rcv.posts))
	}
	bodies := map[string]map[string]any{}
	for _, p := range rcv.posts {
		if p.Method != "POST" || p.Headers["Content-Type"] != "application/json" {
			t.Fatalf("request %+v", p)
		}
		var b map[string]any
		if err := json.Unmarshal(p.Body, &b); err != nil {
			t.Fatal(err)
		}
		bodies[p.URL] = b
	}
	d := bodies["https://discord.com/api/webhooks/1/secret-token"]
	content, _ := d["content"].(string)
	embeds, _ := d["embeds"].([]any)
	if len(embeds) != 1 || !strings.Contains(content, "Member banned") || strings.Contains(content, "@everyone") ||
		strings.Contains(content, "**now**") || d["allowed_mentions"] == nil {
		t.Fatalf("discord body: %v", d)
	}
	emb := embeds[0].(map[string]any)
	fields := fmt.Sprint(emb["fields"])
	if emb["title"] != "Member banned" || !strings.Contains(fields, "<@"+alice+">") || !strings.Contains(fields, `alice\_x`) {
		t.Fatalf("embed: %v", emb)
	}
	s := bodies["https://hooks.slack.com/services/T/B/secret"]
	text, _ := s["text"].(string)
	blocks, _ := s["blocks"].([]any)
	if len(blocks) != 3 || !strings.Contains(text, "Member banned") || strings.Contains(text, "<@everyone>") || !strings.Contains(text, "&lt;@everyone&gt;") {
		t.Fatalf("slack body: %v", s)
	}
	if ds := deliveries(t, h, ""); ds[0].Summary != "Member banned: alice_x ("+alice+"); Reason: spam <@everyone> **now**" {
		t.Fatalf("summary %q", ds[0].Summary)
	}
	// The log never shows webhook URLs (they carry tokens).
	res, _ := h.HTTP(plugin.Request{Method: "GET", Path: "/deliveries"})
	if strings.Contains(string(res.Body), "secret") {
		t.Fatalf("delivery log leaks a webhook URL: %s", res.Body)
	}
	res, _ = h.HTTP(plugin.Request{Method: "GET", Path: "/status"})
	if strings.Contains(string(res.Body), "secret") || !strings.Contains(string(res.Body), `"host":"hooks.slack.com"`) {
		t.Fatalf("status: %s", res.Body)
	}
}

func TestRetriesWithBackoffThenDelivers(t *testing.T) {
	rcv := &receiver{answers: []plugin.FetchResponse{{Status: 500}, {Status: 503}, {Status: 204}}}
	cfg := config(map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"discord"}})
	cfg["backoff_seconds"] = 30
	h := newHost(cfg, rcv)
	h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{}))
	steps := []struct {
		at    time.Duration
		posts int
	}{
		{time.Second, 1},      // first attempt: 500
		{20 * time.Second, 1}, // backoff 30 s not over
		{32 * time.Second, 2}, // second attempt: 503
		{80 * time.Second, 2}, // backoff now 60 s (until 92 s)
		{93 * time.Second, 3}, // third attempt: 204
		{10 * time.Minute, 3}, // nothing more
	}
	for _, s := range steps {
		if err := h.Tick(t0.Add(s.at)); err != nil {
			t.Fatal(err)
		}
		if len(rcv.posts) != s.posts {
			t.Fatalf("at +%s: %d posts, want %d", s.at, len(rcv.posts), s.posts)
		}
	}
	ds := deliveries(t, h, "")
	if len(ds) != 1 || ds[0].Status != StatusDelivered || len(ds[0].Attempts) != 3 || ds[0].Attempts[0].HTTPStatus != 500 || ds[0].Attempts[2].HTTPStatus != 204 {
		t.Fatalf("delivery: %+v", ds)
	}
	for k := range h.KV {
		if strings.HasPrefix(k, "q/") {
			t.Fatalf("a delivered notice is still queued: %s", k)
		}
	}
}

func TestGivesUp(t *testing.T) {
	t.Run("max attempts", func(t *testing.T) {
		rcv := &receiver{err: errors.New("connection refused")}
		cfg := config(map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"discord"}})
		cfg["max_attempts"], cfg["backoff_seconds"], cfg["max_age_minutes"] = 3, 1, 0
		h := newHost(cfg, rcv)
		h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{}))
		for i := 1; i < 20; i++ {
			h.Tick(t0.Add(time.Duration(i) * time.Minute))
		}
		if ds := deliveries(t, h, ""); len(rcv.posts) != 3 || ds[0].Status != StatusFailed {
			t.Fatalf("%d posts, %+v", len(rcv.posts), ds)
		}
	})
	t.Run("client error is permanent", func(t *testing.T) {
		rcv := &receiver{answers: []plugin.FetchResponse{{Status: 404, Body: []byte(`{"message":"Unknown Webhook"}`)}}}
		h := newHost(config(map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"discord"}}), rcv)
		h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{}))
		h.Tick(t0.Add(time.Second))
		h.Tick(t0.Add(time.Hour))
		if ds := deliveries(t, h, "status=failed"); len(rcv.posts) != 1 || len(ds) != 1 || !strings.Contains(ds[0].Attempts[0].Error, "Unknown Webhook") {
			t.Fatalf("%d posts, %+v", len(rcv.posts), ds)
		}
	})
	t.Run("rate limited honours Retry-After", func(t *testing.T) {
		rcv := &receiver{answers: []plugin.FetchResponse{{Status: 429, Headers: map[string]string{"Retry-After": "120"}}}}
		h := newHost(config(map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"discord"}}), rcv)
		h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{}))
		h.Tick(t0.Add(time.Second))
		h.Tick(t0.Add(61 * time.Second)) // past the 30 s backoff, not the 120 s asked for
		if len(rcv.posts) != 1 {
			t.Fatalf("retried before Retry-After: %d posts", len(rcv.posts))
		}
		h.Tick(t0.Add(122 * time.Second))
		if len(rcv.posts) != 2 {
			t.Fatalf("%d posts after Retry-After", len(rcv.posts))
		}
	})
	t.Run("expired", func(t *testing.T) {
		rcv := &receiver{}
		h := newHost(config(map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"discord"}}), rcv)
		h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{}))
		h.Tick(t0.Add(2 * time.Hour)) // max_age_minutes defaults to 60
		if ds := deliveries(t, h, ""); len(rcv.posts) != 0 || ds[0].Status != StatusExpired {
			t.Fatalf("%d posts, %+v", len(rcv.posts), ds)
		}
	})
	t.Run("host not granted", func(t *testing.T) {
		h := newHost(config(map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"discord"}}), nil) // fetch denied
		h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{}))
		h.Tick(t0.Add(time.Second))
		h.Tick(t0.Add(10 * time.Minute))
		ds := deliveries(t, h, "")
		if ds[0].Status != StatusDenied || len(ds[0].Attempts) != 1 {
			t.Fatalf("%+v", ds)
		}
	})
}

func TestDeduplicationAndCooldown(t *testing.T) {
	rcv := &receiver{}
	h := newHost(config(
		map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"discord"}},
		map[string]any{"id": "multi", "on": "multi_client", "webhooks": []any{"discord"}},
	), rcv)
	ban := ev("b1", event.KindBanAdd, alice, t0, &event.BanAdd{})
	h.EventsBinary(ban)
	h.EventsBinary(ban) // delivered twice (a replay): notified once
	two := func(id string, at time.Time) event.Event {
		return ev(id, event.KindPresenceUpdate, bob, at, &event.Presence{Status: "online", ClientStatus: event.ClientStatus{Desktop: "online", Web: "online"}})
	}
	h.EventsBinary(two("p1", t0), two("p2", t0.Add(10*time.Minute)), two("p3", t0.Add(59*time.Minute)))
	h.EventsBinary(two("p4", t0.Add(61*time.Minute)))
	var bans, multi int
	for _, d := range deliveries(t, h, "") {
		switch d.Rule {
		case "bans":
			bans++
		case "multi":
			multi++
		}
	}
	if bans != 1 || multi != 2 {
		t.Fatalf("bans %d (want 1), multi-client %d (want 2: cooldown 60 min)", bans, multi)
	}
}

func TestStaleEventsAreNotNotified(t *testing.T) {
	h := newHost(config(map[string]any{"id": "bans", "on": "ban.add"}), &receiver{})
	h.EventsBinary(ev("b1", event.KindBanAdd, alice, t0.Add(-3*time.Hour), &event.BanAdd{}))
	if ds := deliveries(t, h, ""); len(ds) != 0 {
		t.Fatalf("a three-hour-old ban was notified: %+v", ds)
	}
}

func TestStatusWarnsAboutMissingGrants(t *testing.T) {
	h := newHost(config(map[string]any{"id": "scores", "on": "score", "threshold": 90}, map[string]any{"id": "bans", "on": "ban.add", "webhooks": []any{"nowhere"}}), nil)
	h.Grants = []string{"kv.read", "kv.write", "routes.serve"}
	res, err := h.HTTP(plugin.Request{Method: "GET", Path: "/status"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Body), "events.score.read is not granted") || !strings.Contains(string(res.Body), "none of its webhooks") ||
		!strings.Contains(string(res.Body), `"fetch_granted":false`) {
		t.Fatalf("status: %s", res.Body)
	}
}

func TestDeleteUser(t *testing.T) {
	for _, how := range []string{"host", "hook"} {
		t.Run(how, func(t *testing.T) {
			h := newHost(config(map[string]any{"id": "multi", "on": "multi_client"}, map[string]any{"id": "bans", "on": "ban.add"}), &receiver{})
			h.EventsBinary(
				ev("p1", event.KindPresenceUpdate, alice, t0, &event.Presence{Status: "online", ClientStatus: event.ClientStatus{Desktop: "online", Web: "online"}}),
				ev("b1", event.KindBanAdd, bob, t0, &event.BanAdd{}),
			)
			if how == "host" {
				forgetTagged(h, alice)
			} else if err := deleteUserHook(h, alice); err != nil {
				t.Fatal(err)
			}
			for k, v := range h.KV {
				if strings.Contains(k, alice) || strings.Contains(string(v), alice) {
					t.Fatalf("alice's data left under %s", k)
				}
			}
			if ds := deliveries(t, h, ""); len(ds) != 2 || ds[0].UserID != bob {
				t.Fatalf("bob's deliveries: %+v", ds)
			}
		})
	}
}

func TestOnlineClientCountMatchesTheDecoder(t *testing.T) {
	cases := []event.Presence{
		{Status: "offline"},
		{Status: "online", ClientStatus: event.ClientStatus{Desktop: "online"}},
		{Status: "idle", ClientStatus: event.ClientStatus{Desktop: "idle", Mobile: "online", Web: "offline"}},
		{Status: "dnd", ClientStatus: event.ClientStatus{Desktop: "dnd", Mobile: "idle", Web: "online"},
			Activities: []event.Activity{{Type: "playing", Name: `"client_status":{"desktop":"online","web":"online"}`}}},
		{Status: "online", ClientStatus: event.ClientStatus{Web: "online"}, User: &event.User{ID: alice, Username: `x"client_status":{`}},
	}
	for i, p := range cases {
		raw, _ := json.Marshal(&p)
		if got, want := onlineClientCount(raw), p.ClientStatus.OnlineCount(); got != want {
			t.Errorf("case %d %s: counted %d, want %d", i, raw, got, want)
		}
	}
	if onlineClientCount([]byte(`{"client_status":[1]}`)) != -1 {
		t.Error("an unexpected shape must be reported, not guessed")
	}
}

// forgetTagged removes what the plugin stored with KVSetUser about user,
// as the host's user deletion does, without calling the plugin: every key
// about the user must be tagged.
func forgetTagged(h *plugintest.Host, user string) {
	for k, u := range h.KVUsers {
		if u == user {
			delete(h.KV, k)
			delete(h.KVUsers, k)
		}
	}
}

// deleteUserHook calls only the plugin's delete_user hook (plugintest's
// DeleteUser also removes tagged entries, which would hide a hook that
// forgets something).
func deleteUserHook(h *plugintest.Host, user string) error {
	_, err := plugin.Serve(h, plugin.HookDeleteUser, []byte(`{"user_id":"`+user+`"}`))
	return err
}
