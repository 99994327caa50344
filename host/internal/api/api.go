// Package api is the host's HTTP interface: the REST API under /api/v1,
// health and readiness probes, and Prometheus metrics. Handlers are methods
// on small per-resource structs holding only what they use; every route is
// listed in Router, and openapi.json documents each one (a test keeps the two
// in step).
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// Store is what the API reads; *store.Store implements it.
type Store interface {
	guildStore
	memberStore
	presenceStore
	eventStore
	activityStore
	Ready(ctx context.Context) error
}

// Authenticator identifies the caller of a request.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// Deps is everything the router needs.
type Deps struct {
	Store      Store
	Ingest     Ingester
	Auth       Authenticator
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// Plugins is the plugin host; nil leaves the plugin routes out.
	Plugins      PluginHost
	Logger       *slog.Logger
	MaxBodyBytes int64
	Now          func() time.Time
}

// Router builds the HTTP handler with every route of the host.
func Router(d Deps) (http.Handler, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 8 << 20
	}
	m, err := newHTTPMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	e := errWriter{log: d.Logger}
	guilds := &guildsHandler{store: d.Store, err: e}
	members := &membersHandler{store: d.Store, now: d.Now, err: e}
	presence := &presenceHandler{store: d.Store, err: e}
	events := &eventsHandler{store: d.Store, ingest: d.Ingest, now: d.Now, maxBody: d.MaxBodyBytes, err: e}
	activity := &activityHandler{store: d.Store, now: d.Now, err: e}
	health := &healthHandler{store: d.Store, err: e}
	plugins := &pluginsHandler{host: d.Plugins, guilds: d.Store, maxBody: 1 << 20, err: e}

	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.RealIP, recoverer(e), m.instrument, securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { e.write(w, r, notFound("no route "+r.URL.Path)) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		e.write(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " is not allowed on " + r.URL.Path})
	})

	r.Get("/healthz", health.live)
	r.Get("/readyz", health.ready)
	if d.Gatherer != nil {
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	}

	r.Route("/api/v1", func(r chi.Router) {
		r.Use(authenticate(d.Auth, e))
		r.Get("/openapi.json", serveOpenAPI)
		r.Post("/events", events.ingestEvents)
		r.Get("/guilds", guilds.list)
		r.Get("/guilds/{guild}", guilds.get)
		r.Get("/guilds/{guild}/channels", guilds.channels)
		r.Get("/guilds/{guild}/members", members.list)
		r.Get("/guilds/{guild}/members/{user}", members.get)
		r.Get("/guilds/{guild}/presence", presence.get)
		r.Get("/guilds/{guild}/events", events.list)
		r.Get("/guilds/{guild}/activity", activity.get)
		if d.Plugins != nil {
			r.Get("/plugins", plugins.list)
			r.Post("/plugins", plugins.install)
			r.Get("/plugin-permissions", plugins.permissions)
			r.Get("/plugins/{plugin}", plugins.get)
			r.Delete("/plugins/{plugin}", plugins.uninstall)
			r.Get("/guilds/{guild}/plugins", plugins.guildList)
			r.Get("/guilds/{guild}/plugins/{plugin}", plugins.status)
			r.Post("/guilds/{guild}/plugins/{plugin}/enable", plugins.setEnabled(true))
			r.Post("/guilds/{guild}/plugins/{plugin}/disable", plugins.setEnabled(false))
			r.Put("/guilds/{guild}/plugins/{plugin}/config", plugins.configure)
			r.Post("/guilds/{guild}/plugins/{plugin}/grants", plugins.grant)
			r.Delete("/guilds/{guild}/plugins/{plugin}/grants", plugins.revoke)
			for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
				r.MethodFunc(m, "/guilds/{guild}/plugins/{plugin}/http/*", plugins.serveRoute)
			}
		}
	})
	return r, nil
}

// errWriter renders errors, logging internal ones.
type errWriter struct{ log *slog.Logger }

func (e errWriter) write(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, e.log, err)
}

func authenticate(a Authenticator, e errWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := a.Authenticate(r)
			if errors.Is(err, auth.ErrUnauthenticated) {
				e.write(w, r, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
					Message: "send Authorization: Bearer <token> with a valid admin token"})
				return
			}
			if err != nil {
				e.write(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
		})
	}
}

func recoverer(e errWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					e.log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", v)
					e.write(w, r, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// routeOf returns the route pattern that served r, for metrics labels.
func routeOf(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

var _ Store = (*store.Store)(nil)
