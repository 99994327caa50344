package plugin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// webhookReceiver is a local webhook endpoint on 127.0.0.2 (the fixture lets
// http_fetch reach that address only). It answers 500 to the first failFirst
// requests, then 204.
type webhookReceiver struct {
	srv       *httptest.Server
	mu        sync.Mutex
	bodies    [][]byte
	failFirst int
}

func newWebhookReceiver(t *testing.T, failFirst int) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{failFirst: failFirst}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		n := len(r.bodies)
		r.mu.Unlock()
		if req.Method != "POST" || req.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if n <= r.failFirst {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	l, err := listenTCP("127.0.0.2:0")
	if err != nil {
		t.Skip("no 127.0.0.2 on this machine:", err)
	}
	r.srv.Listener = l
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *webhookReceiver) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

func (r *webhookReceiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// TestWebhookNotifierEndToEnd runs plugins/webhook-notifier as a WebAssembly
// module in the host: a ban from the event bus and a score from the scores
// topic fire rules; the notices are POSTed to a local receiver allow-listed
// in the grant, retried after a 500 on the tick's clock, and never sent to a
// host the plugin asked for but was not granted.
func TestWebhookNotifierEndToEnd(t *testing.T) {
	good := newWebhookReceiver(t, 1)
	other := newWebhookReceiver(t, 0)
	f := newFixture(t)
	ctx := context.Background()
	f.installFirstParty("webhook-notifier", func(m map[string]any) {
		m["tick_seconds"] = 86400 // the test drives tick with its own clock
		for _, p := range m["permissions"].([]any) {
			if p := p.(map[string]any); p["name"] == PermHTTPFetch {
				p["hosts"] = []any{good.host(), other.host()}
			}
		}
	})
	var grants []GrantRequest
	m, _ := f.h.manifest("webhook-notifier")
	for _, p := range m.Permissions {
		g := GrantRequest{Name: p.Name}
		if p.Name == PermHTTPFetch {
			g.Hosts = []string{good.host()} // asked for both, granted one
		}
		grants = append(grants, g)
	}
	if err := f.h.Grant(ctx, "webhook-notifier", guildA, grants, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := f.h.SetEnabled(ctx, "webhook-notifier", guildA, true); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{
		"webhooks": []any{
			map[string]any{"id": "mods", "url": "http://" + good.host() + "/hook", "format": "discord"},
			map[string]any{"id": "elsewhere", "url": "http://" + other.host() + "/hook", "format": "slack"},
		},
		"rules": []any{
			map[string]any{"id": "bans", "on": "ban.add"},
			map[string]any{"id": "suspicious", "on": "score", "scorer": "suspicion-score", "threshold": 80},
		},
		"backoff_seconds": 30,
	})
	if err := f.h.Configure(ctx, "webhook-notifier", guildA, cfg); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	f.bus.Publish(ctx, []event.Event{{ID: "ban-1", Kind: event.KindBanAdd, GuildID: guildA, UserID: userA, At: now,
		Data: &event.BanAdd{Reason: "raid", User: &event.User{ID: userA, Username: "raider"}}}})
	prev := 50.0
	f.bus.PublishScores(ctx, []bus.ScoreUpdate{{ID: "score-1", GuildID: guildA, UserID: userA, Scorer: "suspicion-score",
		Score: 85, Previous: &prev, Explanation: "Online on 3 clients at once", At: now}})

	type delivery struct {
		Rule, Webhook, Status string
		Attempts              []struct {
			HTTPStatus int `json:"http_status"`
			Error      string
		}
	}
	log := func() []delivery {
		t.Helper()
		res, err := f.route("webhook-notifier", guildA, "/deliveries")
		if err != nil || res.Status != 200 {
			t.Fatalf("deliveries: %v %+v", err, res)
		}
		var out struct{ Deliveries []delivery }
		json.Unmarshal(res.Body, &out)
		return out.Deliveries
	}
	eventually(t, "four notices queued (two rules, two webhooks)", func() bool { return len(log()) == 4 })

	f.tick("webhook-notifier", guildA, now.Add(time.Second).Format(time.RFC3339Nano))
	if n := len(good.received()); n != 2 {
		t.Fatalf("first tick: the granted receiver got %d requests, want 2 (one answered 500)", n)
	}
	f.tick("webhook-notifier", guildA, now.Add(10*time.Second).Format(time.RFC3339Nano))
	if n := len(good.received()); n != 2 {
		t.Fatalf("retried before the backoff: %d requests", n)
	}
	f.tick("webhook-notifier", guildA, now.Add(40*time.Second).Format(time.RFC3339Nano))
	if n := len(good.received()); n != 3 {
		t.Fatalf("after the backoff: %d requests, want 3", n)
	}
	if n := len(other.received()); n != 0 {
		t.Fatalf("a host not in the grant received %d requests", n)
	}
	for _, b := range good.received() {
		var body struct {
			Content string           `json:"content"`
			Embeds  []map[string]any `json:"embeds"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Content == "" || len(body.Embeds) != 1 {
			t.Fatalf("not a Discord webhook body: %s", b)
		}
	}
	statuses := map[string]int{}
	retried := false
	for _, d := range log() {
		statuses[d.Webhook+":"+d.Status]++
		if d.Webhook == "mods" && len(d.Attempts) == 2 && d.Attempts[0].HTTPStatus == 500 && d.Attempts[1].HTTPStatus == 204 {
			retried = true
		}
		if d.Webhook == "elsewhere" && (len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "not on the allow-list")) {
			t.Fatalf("denied delivery: %+v", d)
		}
	}
	if statuses["mods:delivered"] != 2 || statuses["elsewhere:denied"] != 2 || !retried {
		t.Fatalf("delivery log: %v (retried after 500: %v)", statuses, retried)
	}
}
