package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/plugin/plugintest"
)

const (
	guild   = "41771983423143937"
	general = "41771983423143938"
	random  = "41771983423143939"
	alice   = "80351110224678912"
	bob     = "80351110224678913"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var seq uint64

func msgID(at time.Time) string { seq++; return event.NewSnowflake(at, 1, seq) }

func create(at time.Time, channel, user, id, text string) event.Event {
	return event.Event{ID: "c" + id, Kind: event.KindMessageCreate, GuildID: guild, UserID: user, ChannelID: channel, At: at,
		Data: &event.MessageCreate{MessageID: id, Content: text, Length: len([]rune(text)), User: &event.User{ID: user, Username: "u" + user[len(user)-2:]}}}
}

func edit(at time.Time, channel, user, id, text string) event.Event {
	return event.Event{ID: fmt.Sprintf("u%s-%d", id, at.UnixMilli()), Kind: event.KindMessageUpdate, GuildID: guild, UserID: user, ChannelID: channel, At: at,
		Data: &event.MessageUpdate{MessageID: id, Content: text, Length: len([]rune(text)), EditedAt: at}}
}

func del(at time.Time, channel, id string) event.Event {
	return event.Event{ID: "d" + id, Kind: event.KindMessageDelete, GuildID: guild, ChannelID: channel, At: at,
		Data: &event.MessageDelete{MessageID: id}}
}

func newHost(grants ...string) *plugintest.Host {
	h := plugintest.New(guild, map[string]any{})
	h.Grants = append([]string{"events.message.read", "kv.read", "kv.write", "routes.serve"}, grants...)
	return h
}

func get(t *testing.T, h *plugintest.Host, path string) (int, []byte) {
	t.Helper()
	p, q, _ := strings.Cut(path, "?")
	query := map[string][]string{}
	for _, kv := range strings.Split(q, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			query[k] = append(query[k], v)
		}
	}
	res, err := h.HTTP(plugin.Request{Method: "GET", Path: p, Query: query})
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return res.Status, res.Body
}

func getPage(t *testing.T, h *plugintest.Host, path string) page {
	t.Helper()
	status, body := get(t, h, path)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEditAndDeleteHistory(t *testing.T) {
	h := newHost(PermContent)
	id := msgID(t0)
	other := msgID(t0.Add(time.Minute))
	err := h.EventsBinary(
		create(t0, general, alice, id, "hello wrld"),
		create(t0.Add(time.Minute), general, bob, other, "hi"),
		edit(t0.Add(2*time.Minute), general, alice, id, "hello world"),
		edit(t0.Add(3*time.Minute), general, alice, id, "hello world!"),
		del(t0.Add(4*time.Minute), general, id),
	)
	if err != nil {
		t.Fatal(err)
	}
	status, body := get(t, h, "/channels/"+general+"/messages/"+id)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var r Record
	json.Unmarshal(body, &r)
	var texts []string
	for _, v := range r.History {
		if !v.ContentRecorded {
			t.Fatalf("content granted but not recorded: %+v", v)
		}
		texts = append(texts, v.Content)
	}
	if strings.Join(texts, "|") != "hello wrld|hello world|hello world!" || r.Edits != 2 || r.AuthorID != alice {
		t.Fatalf("history %q, %d edits, author %s", texts, r.Edits, r.AuthorID)
	}
	if r.DeletedAt == nil || !r.DeletedAt.Equal(t0.Add(4*time.Minute)) || r.CreatedAt == nil || !r.CreatedAt.Equal(t0) {
		t.Fatalf("times: %+v", r)
	}

	// The channel log: newest message first.
	p := getPage(t, h, "/channels/"+general+"/messages")
	if len(p.Messages) != 2 || p.Messages[0].MessageID != other || p.Messages[1].MessageID != id || !p.ContentGranted || p.ContentNote != "" {
		t.Fatalf("channel log: %+v", p)
	}
	// Edited and deleted lists.
	p = getPage(t, h, "/edited")
	if len(p.Messages) != 1 || p.Messages[0].MessageID != id || len(p.Messages[0].History) != 3 {
		t.Fatalf("edited: %+v", p)
	}
	p = getPage(t, h, "/deleted")
	if len(p.Messages) != 1 || p.Messages[0].MessageID != id {
		t.Fatalf("deleted: %+v", p)
	}
	// One edit index entry per message, at its latest edit.
	n := 0
	for k := range h.KV {
		if strings.HasPrefix(k, "e/") {
			n++
			if k != editKey(t0.Add(3*time.Minute), general, id) {
				t.Fatalf("stale edit index %s", k)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d edit index entries, want 1", n)
	}
	// A delete of a message logged before the plugin saw it: metadata only.
	unseen := msgID(t0.Add(-time.Hour))
	h.EventsBinary(del(t0.Add(5*time.Minute), random, unseen))
	p = getPage(t, h, "/deleted")
	if len(p.Messages) != 2 || p.Messages[0].MessageID != unseen || p.Messages[0].CreatedAt != nil {
		t.Fatalf("deleted, newest first, with the unseen one: %+v", p.Messages)
	}
}

func TestWithoutContentGrantLogsMetadataAndSaysSo(t *testing.T) {
	h := newHost() // no message.content.read
	id := msgID(t0)
	// The host strips content for plugins without the grant; the plugin
	// must not keep text even if some reached it.
	if err := h.Events(create(t0, general, alice, id, "secret"), edit(t0.Add(time.Minute), general, alice, id, "secret 2")); err != nil {
		t.Fatal(err)
	}
	p := getPage(t, h, "/channels/"+general+"/messages")
	if len(p.Messages) != 1 || p.ContentGranted || !strings.Contains(p.ContentNote, "not granted") {
		t.Fatalf("page: %+v", p)
	}
	r := p.Messages[0]
	if len(r.History) != 2 || r.History[0].ContentRecorded || r.History[0].Length != 6 || r.History[1].Length != 8 || r.Edits != 1 {
		t.Fatalf("metadata: %+v", r)
	}
	for k, v := range h.KV {
		if strings.Contains(string(v), "secret") {
			t.Fatalf("content stored under %s without the grant", k)
		}
	}
	_, body := get(t, h, "/status")
	if !strings.Contains(string(body), `"content_granted":false`) {
		t.Fatalf("status: %s", body)
	}
	// Granted but the guild chose not to keep content.
	h = newHost(PermContent)
	h.Settings = map[string]any{"keep_content": false}
	h.Events(create(t0, general, alice, msgID(t0), "secret"))
	p = getPage(t, h, "/channels/"+general+"/messages")
	if p.Messages[0].History[0].ContentRecorded || !strings.Contains(p.ContentNote, "keep_content") {
		t.Fatalf("keep_content false: %+v", p)
	}
}

func TestRetentionPurgeInBoundedBatches(t *testing.T) {
	h := newHost(PermContent)
	h.Settings = map[string]any{"retention_days": 7}
	var evs []event.Event
	var oldIDs []string
	for i := 0; i < purgeBatch+50; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		id := msgID(at)
		oldIDs = append(oldIDs, id)
		evs = append(evs, create(at, general, alice, id, "old "+strconv.Itoa(i)))
	}
	// One old message edited later: its last change is recent, so it stays.
	kept := oldIDs[0]
	evs = append(evs, edit(t0.Add(6*24*time.Hour), general, alice, kept, "edited later"))
	fresh := msgID(t0.Add(7 * 24 * time.Hour))
	evs = append(evs, create(t0.Add(7*24*time.Hour), random, bob, fresh, "new"))
	if err := h.EventsBinary(evs...); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(8 * 24 * time.Hour) // cutoff: t0+1d; everything at t0 + seconds expires
	if err := h.Tick(now); err != nil {
		t.Fatal(err)
	}
	left := len(getAll(t, h, "/channels/"+general+"/messages"))
	// 249 expired (the 250th was edited later): one tick purges purgeBatch
	// of them, leaving 49 plus the kept one.
	if want := 249 - purgeBatch + 1; left != want {
		t.Fatalf("after one tick %d messages left in the channel, want %d", left, want)
	}
	if err := h.Tick(now); err != nil {
		t.Fatal(err)
	}
	msgs := getAll(t, h, "/channels/"+general+"/messages")
	if len(msgs) != 1 || msgs[0].MessageID != kept {
		t.Fatalf("after purge: %d messages (%+v)", len(msgs), msgs)
	}
	if m := getAll(t, h, "/channels/"+random+"/messages"); len(m) != 1 {
		t.Fatalf("the fresh message was purged")
	}
	// Nothing of a purged message is left under any key.
	for k, v := range h.KV {
		for _, id := range oldIDs[1:] {
			if strings.Contains(k, id) || strings.Contains(string(v), id) {
				t.Fatalf("purged message %s left %s", id, k)
			}
		}
	}
	// Much later everything goes, index entries included.
	h.Tick(now.Add(30 * 24 * time.Hour))
	if len(h.KV) != 0 {
		t.Fatalf("keys left after everything expired: %v", keysOf(h))
	}
}

func getAll(t *testing.T, h *plugintest.Host, path string) []*Record {
	t.Helper()
	var out []*Record
	cursor := ""
	for i := 0; ; i++ {
		p := getPage(t, h, path+"?limit=7&cursor="+cursor)
		out = append(out, p.Messages...)
		if p.NextCursor == "" {
			return out
		}
		if i > 1000 {
			t.Fatal("pagination does not end")
		}
		cursor = p.NextCursor
	}
}

func keysOf(h *plugintest.Host) []string {
	var ks []string
	for k := range h.KV {
		ks = append(ks, k)
	}
	return ks
}

func TestPaginationNewestFirst(t *testing.T) {
	h := newHost(PermContent)
	var evs []event.Event
	var ids []string
	for i := 0; i < 20; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		id := msgID(at)
		ids = append(ids, id)
		evs = append(evs, create(at, general, alice, id, strconv.Itoa(i)))
	}
	h.EventsBinary(evs...)
	got := getAll(t, h, "/channels/"+general+"/messages")
	if len(got) != 20 {
		t.Fatalf("%d messages", len(got))
	}
	for i, r := range got {
		if r.MessageID != ids[19-i] {
			t.Fatalf("position %d: %s, want %s", i, r.MessageID, ids[19-i])
		}
	}
	for _, bad := range []string{"/channels/x/messages", "/channels/" + general + "/messages?limit=0", "/edited?cursor=c/123"} {
		if status, _ := get(t, h, bad); status != 400 {
			t.Errorf("%s: %d, want 400", bad, status)
		}
	}
	if status, _ := get(t, h, "/channels/"+general+"/messages/1"); status != 404 {
		t.Errorf("unknown message: %d", status)
	}
}

func TestDeleteUser(t *testing.T) {
	for _, how := range []string{"host", "hook"} {
		t.Run(how, func(t *testing.T) {
			h := newHost(PermContent)
			var evs []event.Event
			for i := 0; i < deleteUserBatch+30; i++ {
				at := t0.Add(time.Duration(i) * time.Second)
				id := msgID(at)
				evs = append(evs, create(at, general, alice, id, "alice says"), edit(at.Add(time.Hour), general, alice, id, "alice edits"))
			}
			bobs := msgID(t0)
			evs = append(evs, create(t0, general, bob, bobs, "bob says"))
			evs = append(evs, del(t0.Add(time.Hour), general, evs[0].Data.(*event.MessageCreate).MessageID))
			h.EventsBinary(evs...)
			if how == "host" {
				forgetTagged(h, alice)
			} else {
				if err := deleteUserHook(h, alice); err != nil {
					t.Fatal(err)
				}
				if _, pending := h.KV["p/"+alice]; !pending {
					t.Fatal("a deletion beyond one batch must continue in tick")
				}
				if err := h.Tick(t0.Add(2 * time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			for k, v := range h.KV {
				if strings.Contains(k, alice) || strings.Contains(string(v), alice) || strings.Contains(string(v), "alice") {
					t.Fatalf("alice's data left under %s", k)
				}
			}
			if m := getAll(t, h, "/channels/"+general+"/messages"); len(m) != 1 || m[0].AuthorID != bob {
				t.Fatalf("bob's message: %+v", m)
			}
			if p := getPage(t, h, "/edited"); len(p.Messages) != 0 {
				t.Fatalf("edited list still lists alice: %+v", p.Messages)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	h := newHost(PermContent)
	h.Settings = map[string]any{"ignore_channels": []any{random}, "ignore_bots": true, "max_edits": 2}
	id := msgID(t0)
	botMsg := create(t0, general, bob, msgID(t0), "beep")
	botMsg.Data.(*event.MessageCreate).User.Bot = true
	h.EventsBinary(
		create(t0, random, alice, msgID(t0), "ignored channel"), botMsg,
		create(t0, general, alice, id, "v0"),
		edit(t0.Add(1*time.Minute), general, alice, id, "v1"),
		edit(t0.Add(2*time.Minute), general, alice, id, "v2"),
		edit(t0.Add(3*time.Minute), general, alice, id, "v3"),
	)
	if m := getAll(t, h, "/channels/"+random+"/messages"); len(m) != 0 {
		t.Fatal("an ignored channel was logged")
	}
	m := getAll(t, h, "/channels/"+general+"/messages")
	if len(m) != 1 {
		t.Fatalf("bot message logged: %d", len(m))
	}
	var texts []string
	for _, v := range m[0].History {
		texts = append(texts, v.Content)
	}
	if strings.Join(texts, ",") != "v0,v2,v3" || m[0].Edits != 3 || m[0].EditsDropped != 1 {
		t.Fatalf("max_edits 2: %q edits=%d dropped=%d", texts, m[0].Edits, m[0].EditsDropped)
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
