package api

import (
	"context"
	"net/http"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

type guildStore interface {
	ListGuilds(ctx context.Context) ([]store.Guild, error)
	GetGuild(ctx context.Context, id string) (store.Guild, error)
	guildChecker
	ListChannels(ctx context.Context, guildID string) ([]store.Channel, error)
}

type guildsHandler struct {
	store guildStore
	err   errWriter
	// visible filters the list to the guilds the caller may see.
	visible func(ctx context.Context, guildID string) bool
}

func (h *guildsHandler) list(w http.ResponseWriter, r *http.Request) {
	all, err := h.store.ListGuilds(r.Context())
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	gs := all[:0]
	for _, g := range all {
		if h.visible(r.Context(), g.ID) {
			gs = append(gs, g)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"guilds": gs})
}

func (h *guildsHandler) get(w http.ResponseWriter, r *http.Request) {
	id, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	g, err := h.store.GetGuild(r.Context(), id)
	if err != nil {
		h.err.write(w, r, storeErr(err, "guild "+id))
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (h *guildsHandler) channels(w http.ResponseWriter, r *http.Request) {
	id, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := requireGuild(r.Context(), h.store, id); err != nil {
		h.err.write(w, r, err)
		return
	}
	cs, err := h.store.ListChannels(r.Context(), id)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": cs})
}
