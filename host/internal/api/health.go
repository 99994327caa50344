package api

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type healthHandler struct {
	store interface {
		Ready(ctx context.Context) error
	}
	checks map[string]func(context.Context) error // Deps.ReadyChecks
	err    errWriter
}

// Probes is the handler of an instance without the api role: liveness,
// readiness and metrics only.
func Probes(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	h := &healthHandler{store: d.Store, checks: d.ReadyChecks, err: errWriter{log: d.Logger}}
	r := chi.NewRouter()
	r.Get("/healthz", h.live)
	r.Get("/readyz", h.ready)
	if d.Gatherer != nil {
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	}
	return r
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
	names := make([]string, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := h.checks[n](ctx); err != nil {
			h.err.log.WarnContext(ctx, "not ready", "check", n, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]*Error{"error": {
				Code: "unavailable", Message: "not ready: " + n + " unreachable"}})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
