package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/privacy"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// PrivacyService carries out settings changes and data requests;
// *privacy.Service implements it.
type PrivacyService interface {
	SaveSettings(ctx context.Context, g store.GuildSettings) error
	AddOptOut(ctx context.Context, o store.OptOut) error
	RemoveOptOut(ctx context.Context, userID, guildID string) error
	RequestGuildRemoval(ctx context.Context, guildID, by string, cancel bool) (time.Time, error)
	DeleteUser(ctx context.Context, r privacy.DeleteRequest) (store.PrivacyRequest, error)
	Export(ctx context.Context, guildID, userID, by string) (store.UserExport, error)
	Purge(ctx context.Context) (privacy.PurgeReport, error)
	Grace() time.Duration
}

// privacyStore is what the privacy routes read.
type privacyStore interface {
	GetGuildSettings(ctx context.Context, guildID string) (store.GuildSettings, error)
	ListOptOuts(ctx context.Context, guildID string) ([]store.OptOut, error)
	ListPrivacyRequests(ctx context.Context, guildID string, limit int) ([]store.PrivacyRequest, error)
}

type privacyHandler struct {
	svc   PrivacyService
	store privacyStore
	g     *guard
	err   errWriter
}

func actorOf(r *http.Request) string {
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		return p.Subject
	}
	return "anonymous"
}

// settingsView is the settings document of GET and PUT.
type settingsView struct {
	store.GuildSettings
	// RemovalDueAt is when the guild's data goes, if removal was asked.
	RemovalDueAt *time.Time `json:"removal_due_at,omitempty"`
}

func (h *privacyHandler) view(g store.GuildSettings) settingsView {
	v := settingsView{GuildSettings: g}
	if g.RemovalRequestedAt != nil {
		due := g.RemovalRequestedAt.Add(h.svc.Grace())
		v.RemovalDueAt = &due
	}
	return v
}

func (h *privacyHandler) getSettings(w http.ResponseWriter, r *http.Request) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	g, err := h.store.GetGuildSettings(r.Context(), gid)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(g))
}

// settingsPatch is a PUT body: fields left out keep their value, so a
// client that knows only some fields (a dashboard of an older version)
// changes only those.
type settingsPatch struct {
	Timezone *string `json:"timezone"`
	Tracking *struct {
		Presence *bool `json:"presence"`
		Messages *bool `json:"messages"`
		Typing   *bool `json:"typing"`
		Voice    *bool `json:"voice"`
		Members  *bool `json:"members"`
	} `json:"tracking"`
	Retention *struct {
		EventsDays     *int `json:"events_days"`
		PresenceDays   *int `json:"presence_days"`
		MessagesDays   *int `json:"messages_days"`
		ScoresDays     *int `json:"scores_days"`
		PluginDataDays *int `json:"plugin_data_days"`
		AggregatesDays *int `json:"aggregates_days"`
	} `json:"retention"`
	DeleteOnLeave *bool `json:"delete_on_leave"`
}

// apply applies a patch to settings, validating it.
func (p settingsPatch) apply(g *store.GuildSettings) error {
	if p.Timezone != nil {
		if _, err := time.LoadLocation(*p.Timezone); err != nil || *p.Timezone == "" || *p.Timezone == "Local" {
			return badRequest("timezone must be an IANA time zone such as Europe/Paris", event.FieldError{Field: "timezone", Message: "unknown time zone"})
		}
		g.Timezone = *p.Timezone
	}
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	if t := p.Tracking; t != nil {
		set(&g.Tracking.Presence, t.Presence)
		set(&g.Tracking.Messages, t.Messages)
		set(&g.Tracking.Typing, t.Typing)
		set(&g.Tracking.Voice, t.Voice)
		set(&g.Tracking.Members, t.Members)
	}
	if rt := p.Retention; rt != nil {
		for _, f := range []struct {
			name string
			dst  *int
			v    *int
		}{
			{"events_days", &g.Retention.EventsDays, rt.EventsDays},
			{"presence_days", &g.Retention.PresenceDays, rt.PresenceDays},
			{"messages_days", &g.Retention.MessagesDays, rt.MessagesDays},
			{"scores_days", &g.Retention.ScoresDays, rt.ScoresDays},
			{"plugin_data_days", &g.Retention.PluginDataDays, rt.PluginDataDays},
			{"aggregates_days", &g.Retention.AggregatesDays, rt.AggregatesDays},
		} {
			if f.v == nil {
				continue
			}
			if *f.v < 0 || *f.v > 3650 {
				return badRequest("retention."+f.name+" must be between 0 (keep) and 3650 days",
					event.FieldError{Field: "retention." + f.name, Message: "between 0 and 3650"})
			}
			*f.dst = *f.v
		}
	}
	set(&g.DeleteOnLeave, p.DeleteOnLeave)
	return nil
}

func (h *privacyHandler) putSettings(w http.ResponseWriter, r *http.Request) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	var p settingsPatch
	if err := decodeJSON(r, &p); err != nil {
		h.err.write(w, r, err)
		return
	}
	g, err := h.store.GetGuildSettings(r.Context(), gid)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := p.apply(&g); err != nil {
		h.err.write(w, r, err)
		return
	}
	g.UpdatedBy = actorOf(r)
	if err := h.svc.SaveSettings(r.Context(), g); err != nil {
		h.err.write(w, r, err)
		return
	}
	t, rt := g.Tracking, g.Retention
	h.g.record(r, "privacy.settings", "guild "+gid, gid, "ok", fmt.Sprintf("tracking=%+v retention=%+v delete_on_leave=%t timezone=%s", t, rt, g.DeleteOnLeave, g.Timezone))
	h.getSettings(w, r)
}

// pathGuild returns the {guild} of the path, or "" on the instance routes.
func pathGuild(r *http.Request) (string, error) {
	if chi.URLParam(r, "guild") == "" {
		return "", nil
	}
	return guildParam(r)
}

func (h *privacyHandler) listOptOuts(w http.ResponseWriter, r *http.Request) {
	gid, err := pathGuild(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	l, err := h.store.ListOptOuts(r.Context(), gid)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"opt_outs": l})
}

func (h *privacyHandler) setOptOut(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gid, err := pathGuild(r)
		if err != nil {
			h.err.write(w, r, err)
			return
		}
		uid, err := idParam(r, "user")
		if err != nil {
			h.err.write(w, r, err)
			return
		}
		if on {
			err = h.svc.AddOptOut(r.Context(), store.OptOut{UserID: uid, GuildID: gid, CreatedBy: actorOf(r)})
		} else {
			err = h.svc.RemoveOptOut(r.Context(), uid, gid)
		}
		if err != nil {
			h.err.write(w, r, storeErr(err, "opt-out of "+uid))
			return
		}
		action := map[bool]string{true: "privacy.opt_out", false: "privacy.opt_in"}[on]
		h.g.record(r, action, "user "+uid, gid, "ok", "")
		if !on {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, store.OptOut{UserID: uid, GuildID: gid, CreatedBy: actorOf(r), CreatedAt: time.Now().UTC()})
	}
}

func (h *privacyHandler) exportUser(w http.ResponseWriter, r *http.Request) {
	gid, err := pathGuild(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	uid, err := idParam(r, "user")
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	ex, err := h.svc.Export(r.Context(), gid, uid, actorOf(r))
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="spywatcher-user-`+uid+`.json"`)
	writeJSON(w, http.StatusOK, ex)
}

func (h *privacyHandler) deleteUser(w http.ResponseWriter, r *http.Request) {
	gid, err := pathGuild(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	uid, err := idParam(r, "user")
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	q := query(r)
	optOut := q.boolean("opt_out")
	reason := q.str("reason", 512)
	if err := q.err(); err != nil {
		h.err.write(w, r, err)
		return
	}
	req, err := h.svc.DeleteUser(r.Context(), privacy.DeleteRequest{UserID: uid, GuildID: gid, By: actorOf(r), Reason: reason, OptOut: optOut})
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (h *privacyHandler) listRequests(w http.ResponseWriter, r *http.Request) {
	gid, err := pathGuild(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	q := query(r)
	limit := q.limit(100, 1000)
	if err := q.err(); err != nil {
		h.err.write(w, r, err)
		return
	}
	l, err := h.store.ListPrivacyRequests(r.Context(), gid, limit)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": l})
}

func (h *privacyHandler) removal(cancel bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gid, err := guildParam(r)
		if err != nil {
			h.err.write(w, r, err)
			return
		}
		due, err := h.svc.RequestGuildRemoval(r.Context(), gid, actorOf(r), cancel)
		if err != nil {
			h.err.write(w, r, err)
			return
		}
		if cancel {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"guild_id": gid, "removal_due_at": due.UTC()})
	}
}

func (h *privacyHandler) purge(w http.ResponseWriter, r *http.Request) {
	rep, err := h.svc.Purge(r.Context())
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "privacy.purge", "retention", "", "ok", fmt.Sprintf("rows=%v guilds=%v", rep.Rows, rep.GuildsPurged))
	writeJSON(w, http.StatusOK, map[string]any{"rows": rep.Rows, "guilds_purged": rep.GuildsPurged, "took_ms": rep.Took.Milliseconds()})
}
