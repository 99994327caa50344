package api

import (
	"context"
	"net/http"
	"time"
)

type healthHandler struct {
	store interface {
		Ready(ctx context.Context) error
	}
	err errWriter
}

// live answers as long as the process serves HTTP.
func (h *healthHandler) live(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers 200 only when the database is reachable and its schema current.
func (h *healthHandler) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.Ready(ctx); err != nil {
		h.err.log.WarnContext(ctx, "not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]*Error{"error": {
			Code: "unavailable", Message: "not ready: database unreachable or schema not current"}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
