package api

import (
	"context"
	"net/http"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

type activityStore interface {
	guildChecker
	Activity(ctx context.Context, guildID, userID string, from, to time.Time) ([]store.ActivityHour, error)
}

type activityHandler struct {
	store activityStore
	now   func() time.Time
	err   errWriter
}

func (h *activityHandler) get(w http.ResponseWriter, r *http.Request) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	p := query(r)
	user := p.snowflake("user")
	from, to := p.span(h.now().UTC(), 24*time.Hour, 92*24*time.Hour)
	if err := p.err(); err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := requireGuild(r.Context(), h.store, gid); err != nil {
		h.err.write(w, r, err)
		return
	}
	hours, err := h.store.Activity(r.Context(), gid, user, from, to)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "user_id": user, "hours": hours})
}
