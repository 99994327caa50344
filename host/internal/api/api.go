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
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spywatcher/spywatcher/host/internal/analytics"
	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/ratelimit"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// Store is what the API reads; *store.Store implements it.
type Store interface {
	guildStore
	memberStore
	presenceStore
	eventStore
	activityStore
	adminStore
	guildAccessStore
	authSessionStore
	analyticsStore
	privacyStore
	Auditor
	Ready(ctx context.Context) error
}

// Authenticator identifies the caller of a request. *auth.Authenticator
// implements it; the WebSocket hub authenticates through the same one.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// Enforcer is the authorization the API needs; *authz.Enforcer implements it.
type Enforcer interface {
	Authorizer
	GrantManager
}

// Deps is everything the router needs.
type Deps struct {
	Store    Store
	Ingest   Ingester
	Auth     Authenticator
	Gatherer prometheus.Gatherer
	// Plugins is the plugin host; nil leaves the plugin routes out.
	Plugins PluginHost
	// Scoring runs scorer plugins on demand; nil answers recompute with 409.
	Scoring ScoringService
	// Privacy carries out guild settings and data requests; nil leaves the
	// privacy routes out.
	Privacy      PrivacyService
	Registerer   prometheus.Registerer
	Logger       *slog.Logger
	MaxBodyBytes int64
	Now          func() time.Time

	// Authorization, sessions and limits (see access.go).
	Authz       Enforcer
	Passwords   PasswordLogin
	Sessions    SessionService
	Discord     DiscordLogin // nil: Discord login not configured
	Limiter     ratelimit.Limiter
	Limits      Limits
	Security    Security
	Argon2      auth.Argon2 // for passwords set through the admin API
	DefaultTier string      // of new API keys

	// Live is the WebSocket hub; nil leaves /api/v1/ws out.
	Live LiveHub
	// Web serves the dashboard at every path outside /api/ that no route
	// takes; nil answers those with 404.
	Web http.Handler
	// ReadyChecks are what /readyz asks besides the database, by name
	// ("redis"); each returns an error while its service is unreachable.
	ReadyChecks map[string]func(context.Context) error
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
	if d.Authz == nil || d.Auth == nil {
		return nil, errors.New("api: Deps.Auth and Deps.Authz are required")
	}
	if d.Argon2.Time == 0 {
		d.Argon2 = auth.DefaultArgon2
	}
	m, err := newHTTPMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	e := errWriter{log: d.Logger}
	g := &guard{authn: d.Auth, authz: d.Authz, limiter: d.Limiter, limits: d.Limits, audit: d.Store, log: d.Logger, err: e}
	guilds := &guildsHandler{store: d.Store, err: e, visible: func(ctx context.Context, id string) bool { return g.can(ctx, id, "guild", "read") }}
	members := &membersHandler{store: d.Store, now: d.Now, err: e}
	presence := &presenceHandler{store: d.Store, err: e}
	events := &eventsHandler{store: d.Store, ingest: d.Ingest, now: d.Now, maxBody: d.MaxBodyBytes, err: e, allow: g.allow}
	activity := &activityHandler{store: d.Store, now: d.Now, err: e}
	health := &healthHandler{store: d.Store, checks: d.ReadyChecks, err: e}
	authn := &authHandler{passwords: d.Passwords, sessions: d.Sessions, discord: d.Discord, store: d.Store, roles: d.Authz, sec: d.Security, g: g, err: e}
	keys := &apiKeysHandler{store: d.Store, links: d.Authz, tiers: d.Limits.Tiers, defTier: d.DefaultTier, g: g, now: d.Now, err: e}
	admin := &adminHandler{store: d.Store, roles: d.Authz, argon2: d.Argon2, g: g, err: e}
	guildAdmin := &guildAdminHandler{store: d.Store, enf: d.Authz, g: g, err: e}
	analyticsH := &analyticsHandler{store: d.Store, a: analytics.New(d.Store, d.Now), scoring: d.Scoring, now: d.Now, err: e, audit: g.record}
	priv := &privacyHandler{svc: d.Privacy, store: d.Store, g: g, err: e}
	plugins := &pluginsHandler{host: d.Plugins, guilds: d.Store, maxBody: 1 << 20, err: e, audit: g.record}

	r := chi.NewRouter()
	r.Use(middleware.RequestID, d.Security.realIP(), recoverer(e), m.instrument, d.Security.headers(d.MaxBodyBytes), g.limitIP)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if d.Web != nil && !strings.HasPrefix(r.URL.Path, "/api/") {
			d.Web.ServeHTTP(w, r)
			return
		}
		e.write(w, r, notFound("no route "+r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		e.write(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " is not allowed on " + r.URL.Path})
	})

	r.Get("/healthz", health.live)
	r.Get("/readyz", health.ready)
	if d.Gatherer != nil {
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	}

	// Every /api/v1 route passes the guard, which runs after routing (so it
	// knows the route) and checks what routeAccess says the route needs.
	r.Route("/api/v1", func(r chi.Router) {
		r.Group(func(r chi.Router) {
			r.Use(g.middleware)
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

			r.Get("/guilds/{guild}/roles", guildAdmin.listRoles)
			r.Put("/guilds/{guild}/roles/{account}", guildAdmin.setRole)
			r.Delete("/guilds/{guild}/roles/{account}", guildAdmin.removeRole)
			r.Get("/guilds/{guild}/access", guildAdmin.getAccess)
			r.Put("/guilds/{guild}/access", guildAdmin.setAccess)
			r.Get("/guilds/{guild}/audit", guildAdmin.audit)

			r.Post("/auth/login", authn.login)
			r.Post("/auth/refresh", authn.refresh)
			r.Post("/auth/logout", authn.logout)
			r.Get("/auth/me", authn.me)
			r.Get("/auth/sessions", authn.listSessions)
			r.Delete("/auth/sessions/{session}", authn.revokeSession)
			r.Get("/auth/discord/login", authn.discordLogin)
			r.Get("/auth/discord/callback", authn.discordCallback)
			r.Get("/auth/apikeys", keys.list)
			r.Post("/auth/apikeys", keys.create)
			r.Delete("/auth/apikeys/{key}", keys.revoke)
			r.Get("/auth/apikeys/{key}/usage", keys.usage)

			r.Get("/guilds/{guild}/analytics/heatmap", analyticsH.heatmap)
			r.Get("/guilds/{guild}/analytics/presence", analyticsH.presence)
			r.Get("/guilds/{guild}/analytics/roles", analyticsH.roles)
			r.Get("/guilds/{guild}/scores", analyticsH.scores)
			r.Post("/guilds/{guild}/scores/recompute", analyticsH.recompute)
			r.Get("/guilds/{guild}/members/{user}/scores", analyticsH.memberScores)

			r.Get("/admin/users", admin.listUsers)
			r.Post("/admin/users", admin.createUser)
			r.Get("/admin/users/{account}", admin.getUser)
			r.Patch("/admin/users/{account}", admin.updateUser)
			r.Delete("/admin/users/{account}", admin.deleteUser)
			r.Get("/admin/users/{account}/sessions", admin.userSessions)
			r.Delete("/admin/sessions/{session}", admin.revokeSession)
			r.Get("/admin/apikeys", admin.listKeys)
			r.Delete("/admin/apikeys/{key}", admin.revokeKey)
			r.Get("/admin/audit", admin.audit)

			if d.Live != nil {
				live := &liveHandler{hub: d.Live, err: e}
				r.Get("/ws", d.Live.ServeHTTP)
				r.Post("/ws/ticket", live.ticket)
			}

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

			if d.Privacy != nil {
				r.Get("/guilds/{guild}/settings", priv.getSettings)
				r.Put("/guilds/{guild}/settings", priv.putSettings)
				r.Get("/guilds/{guild}/opt-outs", priv.listOptOuts)
				r.Put("/guilds/{guild}/opt-outs/{user}", priv.setOptOut(true))
				r.Delete("/guilds/{guild}/opt-outs/{user}", priv.setOptOut(false))
				r.Get("/guilds/{guild}/members/{user}/data", priv.exportUser)
				r.Delete("/guilds/{guild}/members/{user}/data", priv.deleteUser)
				r.Get("/guilds/{guild}/privacy-requests", priv.listRequests)
				r.Post("/guilds/{guild}/removal", priv.removal(false))
				r.Delete("/guilds/{guild}/removal", priv.removal(true))
				r.Get("/privacy/opt-outs", priv.listOptOuts)
				r.Put("/privacy/opt-outs/{user}", priv.setOptOut(true))
				r.Delete("/privacy/opt-outs/{user}", priv.setOptOut(false))
				r.Get("/privacy/users/{user}/data", priv.exportUser)
				r.Delete("/privacy/users/{user}/data", priv.deleteUser)
				r.Get("/privacy/requests", priv.listRequests)
				r.Post("/privacy/purge", priv.purge)
			}
		})
	})
	return r, nil
}

// errWriter renders errors, logging internal ones.
type errWriter struct{ log *slog.Logger }

func (e errWriter) write(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, e.log, err)
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
