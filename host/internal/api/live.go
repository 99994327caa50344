package api

import (
	"context"
	"net/http"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/auth"
)

// LiveHub is the WebSocket hub of the live dashboard; *ws.Hub implements
// it. It authenticates its connections itself (with the same
// Authenticator, or a ticket), so its route is public to the guard.
type LiveHub interface {
	http.Handler
	IssueTicket(ctx context.Context, p auth.Principal) (ticket string, expires time.Time, err error)
}

type liveHandler struct {
	hub LiveHub
	err errWriter
}

// ticket issues a single-use ticket for opening the WebSocket: a browser
// page cannot set Authorization on a WebSocket, and a cross-origin
// dashboard does not get the session cookie sent.
func (h *liveHandler) ticket(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	t, exp, err := h.hub.IssueTicket(r.Context(), p)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"ticket": t, "expires_at": exp.UTC(), "url": "/api/v1/ws?ticket=" + t})
}
