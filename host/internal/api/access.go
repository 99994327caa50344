package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/ratelimit"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// scope says where a route's permission is checked.
type scope int

const (
	// scopePublic routes need no credentials (probes, login).
	scopePublic scope = iota
	// scopeSelf routes need any authenticated principal; the handler only
	// touches the caller's own things.
	scopeSelf
	// scopeGuild routes check the permission in the {guild} of the path.
	scopeGuild
	// scopeInstance routes check the permission in the instance domain.
	scopeInstance
	// scopeBody routes need any principal; the handler checks the
	// permission in every guild the request body or result names.
	scopeBody
)

// access is what one route needs.
type access struct {
	scope scope
	obj   string
	act   string
	// interactive routes manage credentials: open to people and the admin
	// token, never to API keys (a key must not mint or revoke keys).
	interactive bool
	// refine may ask for a stronger permission depending on the request
	// (per-member activity needs members/read).
	refine func(r *http.Request) (obj, act string)
}

func guildRead(obj string) access  { return access{scope: scopeGuild, obj: obj, act: authz.Read} }
func guildWrite(obj string) access { return access{scope: scopeGuild, obj: obj, act: authz.Write} }
func instance(obj, act string) access {
	return access{scope: scopeInstance, obj: obj, act: act}
}

var (
	public      = access{scope: scopePublic}
	self        = access{scope: scopeSelf}
	interactive = access{scope: scopeSelf, interactive: true}
)

// perMember asks for members/read when the request names one member.
func perMember(r *http.Request) (string, string) {
	if r.URL.Query().Get("user") != "" {
		return "members", authz.Read
	}
	return "activity", authz.Read
}

// routeAccess maps every route of Router to what it needs. A route missing
// here is refused (500), and TestRouteMatrix walks every entry.
var routeAccess = map[string]access{
	"GET /healthz":             public,
	"GET /readyz":              public,
	"GET /metrics":             public,
	"GET /api/v1/openapi.json": self,

	"POST /api/v1/events": {scope: scopeBody, obj: "events", act: authz.Write},
	"GET /api/v1/guilds":  {scope: scopeBody, obj: "guild", act: authz.Read},

	"GET /api/v1/guilds/{guild}":                guildRead("guild"),
	"GET /api/v1/guilds/{guild}/channels":       guildRead("guild"),
	"GET /api/v1/guilds/{guild}/presence":       guildRead("presence"),
	"GET /api/v1/guilds/{guild}/members":        guildRead("members"),
	"GET /api/v1/guilds/{guild}/members/{user}": guildRead("members"),
	"GET /api/v1/guilds/{guild}/events":         guildRead("events"),
	"GET /api/v1/guilds/{guild}/activity": {scope: scopeGuild, obj: "activity", act: authz.Read,
		refine: func(r *http.Request) (string, string) {
			if r.URL.Query().Get("user") != "" {
				return "members", authz.Read // one member's series is a member profile
			}
			return "activity", authz.Read
		}},

	"GET /api/v1/guilds/{guild}/roles":              guildRead("roles"),
	"PUT /api/v1/guilds/{guild}/roles/{account}":    guildWrite("roles"),
	"DELETE /api/v1/guilds/{guild}/roles/{account}": guildWrite("roles"),
	"GET /api/v1/guilds/{guild}/access":             guildRead("guild.settings"),
	"PUT /api/v1/guilds/{guild}/access":             guildWrite("guild.settings"),
	"GET /api/v1/guilds/{guild}/audit":              guildRead("audit"),

	"POST /api/v1/auth/login":                public,
	"POST /api/v1/auth/refresh":              public,
	"GET /api/v1/auth/discord/login":         public,
	"GET /api/v1/auth/discord/callback":      public,
	"POST /api/v1/auth/logout":               interactive,
	"GET /api/v1/auth/me":                    self,
	"GET /api/v1/auth/sessions":              interactive,
	"DELETE /api/v1/auth/sessions/{session}": interactive,
	"GET /api/v1/auth/apikeys":               interactive,
	"POST /api/v1/auth/apikeys":              {scope: scopeBody, interactive: true},
	"DELETE /api/v1/auth/apikeys/{key}":      interactive,
	"GET /api/v1/auth/apikeys/{key}/usage":   self,

	// Plugins: installing is the instance's business; each guild's admins
	// enable, configure and grant; moderators use what plugins serve.
	"GET /api/v1/plugins":                                   self,
	"POST /api/v1/plugins":                                  instance("admin.plugins", authz.Write),
	"GET /api/v1/plugin-permissions":                        self,
	"GET /api/v1/plugins/{plugin}":                          self,
	"DELETE /api/v1/plugins/{plugin}":                       instance("admin.plugins", authz.Write),
	"GET /api/v1/guilds/{guild}/plugins":                    guildRead("plugins"),
	"GET /api/v1/guilds/{guild}/plugins/{plugin}":           guildRead("plugins"),
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/enable":   guildWrite("plugins"),
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/disable":  guildWrite("plugins"),
	"PUT /api/v1/guilds/{guild}/plugins/{plugin}/config":    guildWrite("plugins"),
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/grants":   guildWrite("plugins"),
	"DELETE /api/v1/guilds/{guild}/plugins/{plugin}/grants": guildWrite("plugins"),
	"GET /api/v1/guilds/{guild}/plugins/{plugin}/http/*":    guildRead("plugin.routes"),
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/http/*":   guildWrite("plugin.routes"),
	"PUT /api/v1/guilds/{guild}/plugins/{plugin}/http/*":    guildWrite("plugin.routes"),
	"PATCH /api/v1/guilds/{guild}/plugins/{plugin}/http/*":  guildWrite("plugin.routes"),
	"DELETE /api/v1/guilds/{guild}/plugins/{plugin}/http/*": guildWrite("plugin.routes"),

	// The live stream authenticates its connections itself (cookie,
	// Bearer or ticket) and authorizes each guild subscription.
	"GET /api/v1/ws":         public,
	"POST /api/v1/ws/ticket": interactive,
	// Analytics: guild-wide aggregates are the viewer's; anything that shows
	// members one by one (a member's series, role timelines, scores) is the
	// moderator's.
	"GET /api/v1/guilds/{guild}/analytics/heatmap":     {scope: scopeGuild, obj: "activity", act: authz.Read, refine: perMember},
	"GET /api/v1/guilds/{guild}/analytics/presence":    {scope: scopeGuild, obj: "activity", act: authz.Read, refine: perMember},
	"GET /api/v1/guilds/{guild}/analytics/roles":       guildRead("members"),
	"GET /api/v1/guilds/{guild}/scores":                guildRead("scores"),
	"POST /api/v1/guilds/{guild}/scores/recompute":     guildWrite("scores"),
	"GET /api/v1/guilds/{guild}/members/{user}/scores": guildRead("scores"),

	"GET /api/v1/admin/users":                    instance("admin.users", authz.Read),
	"POST /api/v1/admin/users":                   instance("admin.users", authz.Write),
	"GET /api/v1/admin/users/{account}":          instance("admin.users", authz.Read),
	"PATCH /api/v1/admin/users/{account}":        instance("admin.users", authz.Write),
	"DELETE /api/v1/admin/users/{account}":       instance("admin.users", authz.Write),
	"GET /api/v1/admin/users/{account}/sessions": instance("admin.sessions", authz.Read),
	"DELETE /api/v1/admin/sessions/{session}":    instance("admin.sessions", authz.Write),
	"GET /api/v1/admin/apikeys":                  instance("admin.apikeys", authz.Read),
	"DELETE /api/v1/admin/apikeys/{key}":         instance("admin.apikeys", authz.Write),
	"GET /api/v1/admin/audit":                    instance("admin.audit", authz.Read),

	// Privacy: each guild's admins choose what is collected and carry out
	// members' requests; removing a guild's data is the owner's call; the
	// instance admin handles requests that span every guild.
	"GET /api/v1/guilds/{guild}/settings":               guildRead("privacy"),
	"PUT /api/v1/guilds/{guild}/settings":               guildWrite("privacy"),
	"GET /api/v1/guilds/{guild}/opt-outs":               guildRead("privacy"),
	"PUT /api/v1/guilds/{guild}/opt-outs/{user}":        guildWrite("privacy"),
	"DELETE /api/v1/guilds/{guild}/opt-outs/{user}":     guildWrite("privacy"),
	"GET /api/v1/guilds/{guild}/members/{user}/data":    guildRead("privacy"),
	"DELETE /api/v1/guilds/{guild}/members/{user}/data": guildWrite("privacy"),
	"GET /api/v1/guilds/{guild}/privacy-requests":       guildRead("privacy"),
	"POST /api/v1/guilds/{guild}/removal":               guildWrite("guild.remove"),
	"DELETE /api/v1/guilds/{guild}/removal":             guildWrite("guild.remove"),
	"GET /api/v1/privacy/opt-outs":                      instance("admin.privacy", authz.Read),
	"PUT /api/v1/privacy/opt-outs/{user}":               instance("admin.privacy", authz.Write),
	"DELETE /api/v1/privacy/opt-outs/{user}":            instance("admin.privacy", authz.Write),
	"GET /api/v1/privacy/users/{user}/data":             instance("admin.privacy", authz.Read),
	"DELETE /api/v1/privacy/users/{user}/data":          instance("admin.privacy", authz.Write),
	"GET /api/v1/privacy/requests":                      instance("admin.privacy", authz.Read),
	"POST /api/v1/privacy/purge":                        instance("admin.privacy", authz.Write),
}

// Authorizer decides; *authz.Enforcer implements it.
type Authorizer interface {
	Enforce(sub, dom, obj, act string) (bool, error)
}

// Auditor records security-relevant actions; *store.Store implements it.
type Auditor interface {
	AddAudit(ctx context.Context, e store.AuditEntry) error
}

// Limits are the request rates the API allows.
type Limits struct {
	PerIP        int // requests per minute from one address (0: unlimited)
	PerPrincipal int // requests per minute of one user or admin token
	Login        int // login and refresh attempts per minute from one address
	Tiers        map[string]auth.Tier
}

// guard authenticates, limits and authorizes the requests of /api/v1, and
// writes the audit log.
type guard struct {
	authn   Authenticator
	authz   Authorizer
	limiter ratelimit.Limiter
	limits  Limits
	audit   Auditor
	log     *slog.Logger
	err     errWriter
}

// record appends to the audit log; a failure to do so is logged, never
// shown to the client.
func (g *guard) record(r *http.Request, action, target, guild, result, detail string) {
	actor := "anonymous"
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		actor = p.Subject
	}
	g.recordAs(r, actor, action, target, guild, result, detail)
}

func (g *guard) recordAs(r *http.Request, actor, action, target, guild, result, detail string) {
	if g.audit == nil {
		return
	}
	e := store.AuditEntry{Actor: actor, Action: action, Target: target, GuildID: guild, Result: result,
		IP: clientIP(r), UserAgent: r.UserAgent(), Detail: detail}
	if err := g.audit.AddAudit(context.WithoutCancel(r.Context()), e); err != nil {
		g.log.ErrorContext(r.Context(), "audit log write failed", "action", action, "err", err)
	}
}

func forbidden(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: msg}
}

func unauthorized(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg}
}

// middleware runs after routing (chi inline middleware), so the route
// pattern and path parameters are known.
func (g *guard) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := r.Method + " " + routeOf(r)
		a, ok := routeAccess[route]
		if !ok {
			g.err.write(w, r, fmt.Errorf("api: route %s has no entry in routeAccess", route))
			return
		}
		if a.scope == scopePublic {
			next.ServeHTTP(w, r)
			return
		}
		p, err := g.authn.Authenticate(r)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				if !errors.Is(err, auth.ErrNoCredentials) {
					g.recordAs(r, "anonymous", "auth.reject", route, "", "denied", err.Error())
				}
				g.err.write(w, r, unauthorized("send Authorization: Bearer <token> (an access token, API key or admin token) or log in"))
				return
			}
			g.err.write(w, r, err)
			return
		}
		r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		if !g.limitPrincipal(w, r, p) {
			return
		}
		if p.Cookie && !safeMethod(r.Method) {
			if got := r.Header.Get(auth.HeaderCSRF); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
				g.record(r, "auth.csrf", route, "", "denied", "missing or wrong "+auth.HeaderCSRF)
				g.err.write(w, r, forbidden("cookie-authenticated changes need the "+auth.HeaderCSRF+" header (the sw_csrf cookie's value)"))
				return
			}
		}
		if a.interactive && p.Kind == auth.KindAPIKey {
			g.record(r, "authz.deny", route, "", "denied", "API keys cannot manage credentials")
			g.err.write(w, r, forbidden("API keys cannot manage sessions or keys; log in"))
			return
		}
		if p.ReadOnly && !safeMethod(r.Method) {
			g.record(r, "authz.deny", route, "", "denied", "read-only API key")
			g.err.write(w, r, forbidden("this API key is read-only"))
			return
		}
		obj, act := a.obj, a.act
		if a.refine != nil {
			obj, act = a.refine(r)
		}
		switch a.scope {
		case scopeGuild:
			gid := chi.URLParam(r, "guild")
			if err := g.allow(r, gid, obj, act); err != nil {
				g.err.write(w, r, err)
				return
			}
		case scopeInstance:
			if err := g.allow(r, authz.Instance, obj, act); err != nil {
				g.err.write(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// allow checks the caller's permission in a domain, auditing a refusal.
func (g *guard) allow(r *http.Request, dom, obj, act string) error {
	p, _ := auth.PrincipalFrom(r.Context())
	if dom != authz.Instance && !event.IsSnowflake(dom) {
		return badRequest(fmt.Sprintf("guild must be a Discord ID, got %q", truncate(dom, 40)),
			event.FieldError{Field: "guild", Message: "must be a Discord ID"})
	}
	if p.ReadOnly && act != authz.Read {
		g.record(r, "authz.deny", obj+"/"+act, guildOf(dom), "denied", "read-only API key")
		return forbidden("this API key is read-only")
	}
	ok, err := g.authz.Enforce(p.Subject, dom, obj, act)
	if err != nil {
		return err
	}
	if !ok {
		g.record(r, "authz.deny", obj+"/"+act, guildOf(dom), "denied", r.Method+" "+r.URL.Path)
		where := "guild " + dom
		if dom == authz.Instance {
			where = "this instance"
		}
		return forbidden(fmt.Sprintf("you may not %s %s in %s", act, obj, where))
	}
	return nil
}

// can is allow without the audit entry or the error, for filtering lists.
func (g *guard) can(ctx context.Context, dom, obj, act string) bool {
	p, _ := auth.PrincipalFrom(ctx)
	ok, err := g.authz.Enforce(p.Subject, dom, obj, act)
	return err == nil && ok
}

func guildOf(dom string) string {
	if dom == authz.Instance {
		return ""
	}
	return dom
}

// limitPrincipal applies the caller's own limits: an API key's tier (per
// minute and per day), or the per-principal rate.
func (g *guard) limitPrincipal(w http.ResponseWriter, r *http.Request, p auth.Principal) bool {
	if g.limiter == nil {
		return true
	}
	type check struct {
		key    string
		limit  int
		window time.Duration
	}
	var checks []check
	if p.Kind == auth.KindAPIKey {
		t, ok := g.limits.Tiers[p.Tier]
		if !ok {
			g.err.write(w, r, forbidden("this API key's tier "+strconv.Quote(p.Tier)+" no longer exists; ask an admin"))
			return false
		}
		checks = append(checks, check{"key:" + p.ID, t.PerMinute, time.Minute}, check{"keyday:" + p.ID, t.PerDay, 24 * time.Hour})
	} else if g.limits.PerPrincipal > 0 {
		checks = append(checks, check{"sub:" + p.Subject, g.limits.PerPrincipal, time.Minute})
	}
	for _, c := range checks {
		if !g.take(w, r, c.key, c.limit, c.window) {
			return false
		}
	}
	return true
}

// take counts one request against key and sets the RateLimit headers; when
// over the limit it answers 429 and returns false.
func (g *guard) take(w http.ResponseWriter, r *http.Request, key string, limit int, window time.Duration) bool {
	res, err := g.limiter.Allow(r.Context(), key, limit, window)
	if err != nil {
		// Failing open: a limiter outage must not take the API down.
		g.log.ErrorContext(r.Context(), "rate limiter unavailable; request let through", "err", err)
		return true
	}
	h := w.Header()
	reset := int((res.Reset + time.Second - 1) / time.Second)
	if old := h.Get("RateLimit-Remaining"); old == "" || res.Remaining <= atoi(old) {
		h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(reset))
		h.Set("RateLimit-Policy", fmt.Sprintf("%d;w=%d", res.Limit, int(window/time.Second)))
	}
	if res.Allowed {
		return true
	}
	h.Set("Retry-After", strconv.Itoa(reset))
	if res.Count == res.Limit+1 { // once per window, not once per refused request
		g.record(r, "ratelimit.exceeded", key, "", "denied", fmt.Sprintf("%d per %s", limit, window))
	}
	g.err.write(w, r, &Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: fmt.Sprintf("too many requests: at most %d per %s; retry in %d s", limit, window, reset)})
	return false
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// limitIP applies the per-address limit to every request but the probes.
func (g *guard) limitIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") { // probes and the dashboard's static files
			next.ServeHTTP(w, r)
			return
		}
		if g.limiter != nil && g.limits.PerIP > 0 && !g.take(w, r, "ip:"+clientIP(r), g.limits.PerIP, time.Minute) {
			return
		}
		next.ServeHTTP(w, r)
	})
}
