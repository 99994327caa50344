package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

const unconfigured = "41771983423149999"

func (hs *harness) ingestOne(t *testing.T, ev event.Event) ingestResult {
	t.Helper()
	w := hs.do("POST", "/api/v1/events", token, "application/json", toJSON([]event.Event{ev}))
	if w.Code != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", w.Code, w.Body)
	}
	var res ingestResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

var privSeq int

func typing(guild, user string) event.Event {
	privSeq++
	return event.Event{ID: fmt.Sprintf("priv-%d", privSeq), Kind: event.KindTypingStart, GuildID: guild, UserID: user,
		ChannelID: chanID, At: now, Data: &event.TypingStart{}}
}

// TestSettingsTakeEffectAtIngest: an unconfigured guild collects nothing
// but its metadata; a PUT applies to the very next event; an opt-out drops
// the person's events.
func TestSettingsTakeEffectAtIngest(t *testing.T) {
	hs := newHarness(t)
	g := "/api/v1/guilds/" + unconfigured
	if res := hs.ingestOne(t, typing(unconfigured, alice)); res.NotCollected != 1 || res.Accepted != 0 {
		t.Fatalf("unconfigured guild: %+v", res)
	}
	meta := event.Event{ID: "priv-meta", Kind: event.KindGuildUpdate, GuildID: unconfigured, At: now, Data: &event.GuildUpdate{Name: "G"}}
	if res := hs.ingestOne(t, meta); res.Accepted != 1 {
		t.Fatalf("guild metadata of an unconfigured guild: %+v", res)
	}
	w := hs.do("GET", g+"/settings", token, "", "")
	var got store.GuildSettings
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Configured || got.Tracking.Typing {
		t.Fatalf("settings before: %d %s", w.Code, w.Body)
	}
	w = hs.do("PUT", g+"/settings", token, "application/json", `{"timezone":"Europe/Berlin","tracking":{"typing":true},"retention":{"events_days":3},"delete_on_leave":true}`)
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || !got.Configured || !got.Tracking.Typing || got.Tracking.Presence ||
		got.Retention.EventsDays != 3 || got.Retention.PresenceDays != 90 || got.Timezone != "Europe/Berlin" || !got.DeleteOnLeave {
		t.Fatalf("PUT settings: %d %s", w.Code, w.Body)
	}
	if res := hs.ingestOne(t, typing(unconfigured, alice)); res.Accepted != 1 {
		t.Fatalf("typing after enabling it: %+v", res)
	}
	if res := hs.ingestOne(t, presenceEv(unconfigured, alice)); res.NotCollected != 1 {
		t.Fatalf("presence, still off: %+v", res)
	}
	if w := hs.do("PUT", g+"/settings", token, "application/json", `{"timezone":"Mars/Olympus"}`); w.Code != 400 {
		t.Fatalf("bad timezone: %d", w.Code)
	}
	if w := hs.do("PUT", g+"/settings", token, "application/json", `{"retention":{"events_days":-1}}`); w.Code != 400 {
		t.Fatalf("negative retention: %d", w.Code)
	}

	// Opt-out in this guild, then everywhere.
	if w := hs.do("PUT", g+"/opt-outs/"+alice, token, "", ""); w.Code != 200 {
		t.Fatalf("opt out: %d %s", w.Code, w.Body)
	}
	if res := hs.ingestOne(t, typing(unconfigured, alice)); res.NotCollected != 1 {
		t.Fatalf("opted-out member's event: %+v", res)
	}
	if res := hs.ingestOne(t, typing(unconfigured, bob)); res.Accepted != 1 {
		t.Fatalf("another member's event: %+v", res)
	}
	if w := hs.do("DELETE", g+"/opt-outs/"+alice, token, "", ""); w.Code != 204 {
		t.Fatalf("opt in: %d %s", w.Code, w.Body)
	}
	if res := hs.ingestOne(t, typing(unconfigured, alice)); res.Accepted != 1 {
		t.Fatalf("after opting in again: %+v", res)
	}
	if w := hs.do("PUT", "/api/v1/privacy/opt-outs/"+bob, token, "", ""); w.Code != 200 {
		t.Fatalf("instance opt out: %d %s", w.Code, w.Body)
	}
	if res := hs.ingestOne(t, typing(guildID, bob)); res.NotCollected != 1 {
		t.Fatalf("instance-wide opt-out in another guild: %+v", res)
	}
	w = hs.do("GET", g+"/opt-outs", token, "", "")
	var l struct {
		OptOuts []store.OptOut `json:"opt_outs"`
	}
	if json.Unmarshal(w.Body.Bytes(), &l) != nil || len(l.OptOuts) != 1 || l.OptOuts[0].UserID != bob || l.OptOuts[0].GuildID != "" {
		t.Fatalf("opt-outs seen from the guild: %s", w.Body)
	}
}

func presenceEv(guild, user string) event.Event {
	privSeq++
	return event.Event{ID: fmt.Sprintf("priv-%d", privSeq), Kind: event.KindPresenceUpdate, GuildID: guild, UserID: user, At: now,
		Data: &event.Presence{Status: event.StatusOnline, ClientStatus: event.ClientStatus{Desktop: event.StatusOnline}}}
}

func TestMemberDataExportAndDelete(t *testing.T) {
	hs := newHarness(t)
	hs.seed(t)
	g := "/api/v1/guilds/" + guildID
	w := hs.do("GET", g+"/members/"+alice+"/data", token, "", "")
	var ex store.UserExport
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &ex) != nil || len(ex.Tables["members"]) != 1 || len(ex.Tables["events"]) == 0 {
		t.Fatalf("export: %d %s", w.Code, truncate(w.Body.String(), 300))
	}
	w = hs.do("DELETE", g+"/members/"+alice+"/data?opt_out=true&reason=asked+by+email", token, "", "")
	var req store.PrivacyRequest
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &req) != nil || req.Status != "done" || req.Kind != "delete" || req.Reason != "asked by email" {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if _, err := hs.st.GetMember(context.Background(), guildID, alice); err == nil {
		t.Fatal("alice is still a member after her deletion")
	}
	if res := hs.ingestOne(t, typing(guildID, alice)); res.NotCollected != 1 {
		t.Fatalf("deleted with opt_out, then ingested: %+v", res)
	}
	w = hs.do("GET", g+"/privacy-requests", token, "", "")
	var rl struct{ Requests []store.PrivacyRequest }
	if err := json.Unmarshal(w.Body.Bytes(), &rl); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, r := range rl.Requests {
		kinds[r.Kind] = true
	}
	if len(rl.Requests) != 2 || !kinds["delete"] || !kinds["export"] {
		t.Fatalf("requests: %s", w.Body)
	}
	page, err := hs.st.ListAudit(context.Background(), store.AuditQuery{Action: "privacy.delete_user"})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Target != alice {
		t.Fatalf("audit: %+v %v", page.Entries, err)
	}
}

func TestGuildRemovalAPI(t *testing.T) {
	hs := newHarness(t)
	hs.seed(t)
	g := "/api/v1/guilds/" + guildID
	w := hs.do("POST", g+"/removal", token, "", "")
	var due struct {
		RemovalDueAt time.Time `json:"removal_due_at"`
	}
	if w.Code != 202 || json.Unmarshal(w.Body.Bytes(), &due) != nil || !due.RemovalDueAt.Equal(now.Add(72*time.Hour)) {
		t.Fatalf("remove: %d %s", w.Code, w.Body)
	}
	if res := hs.ingestOne(t, typing(guildID, bob)); res.NotCollected != 1 {
		t.Fatalf("ingest into a guild being removed: %+v", res)
	}
	// Not yet due: the purge keeps it.
	w = hs.do("POST", "/api/v1/privacy/purge", token, "", "")
	if w.Code != 200 {
		t.Fatalf("purge: %d %s", w.Code, w.Body)
	}
	if _, err := hs.st.GetGuild(context.Background(), guildID); err != nil {
		t.Fatalf("guild deleted before the grace period: %v", err)
	}
	if w := hs.do("DELETE", g+"/removal", token, "", ""); w.Code != 204 {
		t.Fatalf("cancel: %d %s", w.Code, w.Body)
	}
	if res := hs.ingestOne(t, typing(guildID, bob)); res.Accepted != 1 {
		t.Fatalf("ingest after cancelling: %+v", res)
	}
}
