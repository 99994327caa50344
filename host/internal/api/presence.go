package api

import (
	"context"
	"net/http"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

type presenceStore interface {
	guildChecker
	OnlineNow(ctx context.Context, guildID string, limit int) (store.Presence, error)
}

type presenceHandler struct {
	store presenceStore
	err   errWriter
}

func (h *presenceHandler) get(w http.ResponseWriter, r *http.Request) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	p := query(r)
	limit := p.limit(100, 1000)
	if err := p.err(); err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := requireGuild(r.Context(), h.store, gid); err != nil {
		h.err.write(w, r, err)
		return
	}
	pr, err := h.store.OnlineNow(r.Context(), gid, limit)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pr)
}
