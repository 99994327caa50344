package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/analytics"
	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/privacy"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

const guildB = "51771983423143937"

// matrixNeeds is what every route needs, written down independently of
// routeAccess: "public", "any" (any principal), "interactive" (any but an
// API key), "guild:<min role>" (in the guild of the path), "body:<min role>"
// (in the guild of the body), "instance" (instance admin only).
var matrixNeeds = map[string]string{
	"GET /healthz":             "public",
	"GET /readyz":              "public",
	"GET /metrics":             "public",
	"GET /api/v1/openapi.json": "any",

	"POST /api/v1/events": "body:admin",
	"GET /api/v1/guilds":  "any",

	"GET /api/v1/guilds/{guild}":                "guild:viewer",
	"GET /api/v1/guilds/{guild}/channels":       "guild:viewer",
	"GET /api/v1/guilds/{guild}/presence":       "guild:viewer",
	"GET /api/v1/guilds/{guild}/activity":       "guild:viewer",
	"GET /api/v1/guilds/{guild}/members":        "guild:moderator",
	"GET /api/v1/guilds/{guild}/members/{user}": "guild:moderator",
	"GET /api/v1/guilds/{guild}/events":         "guild:moderator",

	"GET /api/v1/guilds/{guild}/roles":              "guild:admin",
	"PUT /api/v1/guilds/{guild}/roles/{account}":    "guild:admin",
	"DELETE /api/v1/guilds/{guild}/roles/{account}": "guild:admin",
	"GET /api/v1/guilds/{guild}/access":             "guild:admin",
	"PUT /api/v1/guilds/{guild}/access":             "guild:admin",
	"GET /api/v1/guilds/{guild}/audit":              "guild:admin",

	"POST /api/v1/auth/login":                "public",
	"POST /api/v1/auth/refresh":              "public",
	"GET /api/v1/auth/discord/login":         "public",
	"GET /api/v1/auth/discord/callback":      "public",
	"POST /api/v1/auth/logout":               "interactive",
	"GET /api/v1/auth/me":                    "any",
	"GET /api/v1/auth/sessions":              "interactive",
	"DELETE /api/v1/auth/sessions/{session}": "interactive",
	"GET /api/v1/auth/apikeys":               "interactive",
	"POST /api/v1/auth/apikeys":              "interactive+body:viewer",
	"DELETE /api/v1/auth/apikeys/{key}":      "interactive",
	"GET /api/v1/auth/apikeys/{key}/usage":   "any",

	"GET /api/v1/plugins":                                   "any",
	"POST /api/v1/plugins":                                  "instance",
	"GET /api/v1/plugin-permissions":                        "any",
	"GET /api/v1/plugins/{plugin}":                          "any",
	"DELETE /api/v1/plugins/{plugin}":                       "instance",
	"GET /api/v1/guilds/{guild}/plugins":                    "guild:admin",
	"GET /api/v1/guilds/{guild}/plugins/{plugin}":           "guild:admin",
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/enable":   "guild:admin",
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/disable":  "guild:admin",
	"PUT /api/v1/guilds/{guild}/plugins/{plugin}/config":    "guild:admin",
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/grants":   "guild:admin",
	"DELETE /api/v1/guilds/{guild}/plugins/{plugin}/grants": "guild:admin",
	"GET /api/v1/guilds/{guild}/plugins/{plugin}/http/*":    "guild:moderator",
	"POST /api/v1/guilds/{guild}/plugins/{plugin}/http/*":   "guild:moderator",
	"PUT /api/v1/guilds/{guild}/plugins/{plugin}/http/*":    "guild:moderator",
	"PATCH /api/v1/guilds/{guild}/plugins/{plugin}/http/*":  "guild:moderator",
	"DELETE /api/v1/guilds/{guild}/plugins/{plugin}/http/*": "guild:moderator",

	"GET /api/v1/ws":                                   "any",
	"POST /api/v1/ws/ticket":                           "interactive",
	"GET /api/v1/guilds/{guild}/analytics/heatmap":     "guild:viewer",
	"GET /api/v1/guilds/{guild}/analytics/presence":    "guild:viewer",
	"GET /api/v1/guilds/{guild}/analytics/roles":       "guild:moderator",
	"GET /api/v1/guilds/{guild}/scores":                "guild:moderator",
	"POST /api/v1/guilds/{guild}/scores/recompute":     "guild:moderator",
	"GET /api/v1/guilds/{guild}/members/{user}/scores": "guild:moderator",

	"GET /api/v1/admin/users":                    "instance",
	"POST /api/v1/admin/users":                   "instance",
	"GET /api/v1/admin/users/{account}":          "instance",
	"PATCH /api/v1/admin/users/{account}":        "instance",
	"DELETE /api/v1/admin/users/{account}":       "instance",
	"GET /api/v1/admin/users/{account}/sessions": "instance",
	"DELETE /api/v1/admin/sessions/{session}":    "instance",
	"GET /api/v1/admin/apikeys":                  "instance",
	"DELETE /api/v1/admin/apikeys/{key}":         "instance",
	"GET /api/v1/admin/audit":                    "instance",

	"GET /api/v1/guilds/{guild}/settings":               "guild:admin",
	"PUT /api/v1/guilds/{guild}/settings":               "guild:admin",
	"GET /api/v1/guilds/{guild}/opt-outs":               "guild:admin",
	"PUT /api/v1/guilds/{guild}/opt-outs/{user}":        "guild:admin",
	"DELETE /api/v1/guilds/{guild}/opt-outs/{user}":     "guild:admin",
	"GET /api/v1/guilds/{guild}/members/{user}/data":    "guild:admin",
	"DELETE /api/v1/guilds/{guild}/members/{user}/data": "guild:admin",
	"GET /api/v1/guilds/{guild}/privacy-requests":       "guild:admin",
	"POST /api/v1/guilds/{guild}/removal":               "guild:owner",
	"DELETE /api/v1/guilds/{guild}/removal":             "guild:owner",
	"GET /api/v1/privacy/opt-outs":                      "instance",
	"PUT /api/v1/privacy/opt-outs/{user}":               "instance",
	"DELETE /api/v1/privacy/opt-outs/{user}":            "instance",
	"GET /api/v1/privacy/users/{user}/data":             "instance",
	"DELETE /api/v1/privacy/users/{user}/data":          "instance",
	"GET /api/v1/privacy/requests":                      "instance",
	"POST /api/v1/privacy/purge":                        "instance",
}

// nopIngest accepts every event without storing it.
type nopIngest struct{}

func (nopIngest) Offer(context.Context, event.Event) (pipeline.Outcome, error) {
	return pipeline.Queued, nil
}

func (nopIngest) OfferStored(context.Context, event.Event) (pipeline.Outcome, pipeline.Ack, error) {
	return pipeline.Queued, pipeline.Ack{}, nil
}

// principal is one caller of the matrix.
type principal struct {
	name     string
	header   func() string // Authorization header; "" for none
	rank     map[string]int
	key      bool
	readOnly bool
	user     bool // has an account (can own keys)
}

// world is a router over a seeded store with one principal per role.
type world struct {
	h       http.Handler
	st      *store.Store
	parts   *authParts
	callers []principal
	victim  struct{ account, session, key string }
	seq     int
}

func seedGuild(t testing.TB, st *store.Store, gid string) {
	t.Helper()
	evs := seedEvents()
	for i := range evs {
		evs[i].GuildID = gid
		evs[i].ID = gid + "-" + evs[i].ID
	}
	if _, err := st.Ingest(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func newWorld(t *testing.T, dsn string) *world {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := auth.EnsureAdminToken(ctx, st, token); err != nil {
		t.Fatal(err)
	}
	seedGuild(t, st, guildID)
	seedGuild(t, st, guildB)
	reg := prometheus.NewRegistry()
	d, parts := withAuth(t, st, Deps{Store: st, Ingest: nopIngest{}, Gatherer: reg, Registerer: reg, MaxBodyBytes: 1 << 20}, nil)
	ph, err := plugin.New(ctx, plugin.Config{Dir: filepath.Join(t.TempDir(), "plugins")}, st, parts.enf,
		safehttp.New(safehttp.Options{}), bus.NewLocal(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ph.Close(context.Background()) })
	d.Plugins = ph
	d.Scoring = analytics.NewScoring(analytics.ScoringConfig{}, st, ph, nil)
	filter, err := privacy.NewFilter(ctx, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Privacy, err = privacy.New(privacy.Config{}, st, filter, ph, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Router(d)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{h: h, st: st, parts: parts}
	mkUser := func(name string) string {
		a, err := st.CreateAccount(ctx, store.Account{ID: "acc-" + name, Username: name})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	bearer := func(accID string) func() string {
		tk, err := parts.sessions.Start(ctx, accID, "password", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return func() string { return "Bearer " + tk.AccessToken }
	}
	role := func(acc, dom, r string) {
		if err := parts.enf.SetRole(ctx, authz.User(acc), dom, r); err != nil {
			t.Fatal(err)
		}
	}
	key := func(owner string, write bool) string {
		id, secret := auth.NewAPIKey()
		if _, err := st.CreateAPIKey(ctx, store.APIKey{ID: id, AccountID: owner, Prefix: "swk_", Guilds: []string{guildID}, Write: write, Tier: "free"}, auth.HashToken(secret)); err != nil {
			t.Fatal(err)
		}
		if err := parts.enf.Link(ctx, authz.APIKey(id), authz.User(owner), guildID); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	all := func(r int) map[string]int { return map[string]int{guildID: r, guildB: r, authz.Instance: r} }
	inA := func(r string) map[string]int { return map[string]int{guildID: authz.RoleRank(r)} }
	w.callers = append(w.callers,
		principal{name: "anonymous", header: func() string { return "" }},
		principal{name: "admin-token", header: func() string { return "Bearer " + token }, rank: all(5)},
	)
	root := mkUser("root")
	role(root, authz.AnyDomain, authz.RoleInstanceAdmin)
	w.callers = append(w.callers, principal{name: "instance-admin", header: bearer(root), rank: all(5), user: true})
	var adminA string
	for _, r := range authz.GuildRoles {
		id := mkUser(r + "A")
		role(id, guildID, r)
		if r == authz.RoleAdmin {
			adminA = id
		}
		w.callers = append(w.callers, principal{name: r + "-of-A", header: bearer(id), rank: inA(r), user: true})
	}
	w.callers = append(w.callers, principal{name: "no-role", header: bearer(mkUser("nobody")), rank: map[string]int{}, user: true})
	ro, rw := key(adminA, false), key(adminA, true)
	w.callers = append(w.callers,
		principal{name: "key-read-only-A", header: func() string { return "Bearer " + ro }, rank: inA(authz.RoleAdmin), key: true, readOnly: true},
		principal{name: "key-read-write-A", header: func() string { return "Bearer " + rw }, rank: inA(authz.RoleAdmin), key: true},
	)
	// The victim: the account, session and key that mutating routes act on.
	w.victim.account = mkUser("victim")
	tk, _ := parts.sessions.Start(ctx, w.victim.account, "password", "", "")
	w.victim.session = tk.SessionID
	w.victim.key = strings.Split(strings.TrimPrefix(key(w.victim.account, true), "swk_"), "_")[0]
	return w
}

// request builds the request of a route for a target guild.
func (w *world) request(method, pattern, gid string) *http.Request {
	w.seq++
	path := pattern
	for k, v := range map[string]string{"{guild}": gid, "{user}": alice, "{account}": w.victim.account, "{session}": w.victim.session,
		"{key}": w.victim.key, "{plugin}": "p1", "{permission}": "kv.write"} {
		path = strings.ReplaceAll(path, k, v)
	}
	body := ""
	switch method + " " + pattern {
	case "POST /api/v1/events":
		body = toJSON(event.Event{ID: fmt.Sprintf("mx-%d", w.seq), Kind: event.KindMessageCreate, GuildID: gid, UserID: alice, ChannelID: chanID,
			At: now, Data: &event.MessageCreate{MessageID: fmt.Sprint(1100000000000000000 + w.seq), Length: 1}})
	case "PUT /api/v1/guilds/{guild}/roles/{account}":
		body = `{"role":"viewer"}`
	case "PUT /api/v1/guilds/{guild}/settings":
		body = `{"tracking":{"presence":true},"retention":{"events_days":14}}`
	case "PUT /api/v1/guilds/{guild}/access":
		body = `{"member_access":false,"moderator_roles":[]}`
	case "POST /api/v1/auth/apikeys":
		body = `{"guilds":["` + gid + `"],"name":"matrix"}`
	case "POST /api/v1/auth/login":
		body = `{"username":"nobody","password":"wrong-password"}`
	case "POST /api/v1/admin/users":
		body = fmt.Sprintf(`{"username":"made%d","password":"a-long-enough-password"}`, w.seq)
	case "PATCH /api/v1/admin/users/{account}":
		body = `{"display_name":"V"}`
	case "PUT /api/v1/guilds/{guild}/plugins/{plugin}/config":
		body = `{}`
	case "POST /api/v1/guilds/{guild}/plugins/{plugin}/grants":
		body = `{"all":true}`
	}
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// expect says whether p may call the route in guild gid.
func expect(need string, p principal, method, gid string) bool {
	write := method != http.MethodGet
	if need == "public" {
		return true
	}
	if p.header() == "" {
		return false
	}
	if strings.HasPrefix(need, "interactive") && p.key {
		return false
	}
	if p.readOnly && write && need != "any" {
		return false
	}
	kind, min, _ := strings.Cut(need, ":")
	switch kind {
	case "any", "interactive":
		return true
	case "interactive+body":
		return p.rank[gid] >= authz.RoleRank(min) || !p.user // the admin token has no account: 400, not 403
	case "guild", "body":
		return p.rank[gid] >= authz.RoleRank(min)
	case "instance":
		return p.rank[authz.Instance] >= 5
	}
	panic("unknown need " + need)
}

func runMatrix(t *testing.T, dsn string) {
	w := newWorld(t, dsn)
	routed := map[string]bool{}
	if err := chi.Walk(w.h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed[method+" "+strings.TrimSuffix(route, "/")] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for r := range routed {
		if _, ok := matrixNeeds[r]; !ok {
			t.Errorf("route %s is not in matrixNeeds: say what it needs", r)
		}
		if _, ok := routeAccess[r]; !ok {
			t.Errorf("route %s is not in routeAccess", r)
		}
		routes = append(routes, r)
	}
	for r := range matrixNeeds {
		if !routed[r] {
			t.Errorf("matrixNeeds lists %s, which is not routed", r)
		}
	}
	sort.Strings(routes)
	// activity of one member is a member profile: moderator.
	extra := []struct{ route, query, need string }{{"GET /api/v1/guilds/{guild}/activity", "?user=" + alice, "guild:moderator"},
		{"GET /api/v1/guilds/{guild}/analytics/heatmap", "?user=" + alice, "guild:moderator"},
		{"GET /api/v1/guilds/{guild}/analytics/presence", "?user=" + alice, "guild:moderator"}}
	type job struct{ route, query, need string }
	var jobs []job
	for _, r := range routes {
		jobs = append(jobs, job{r, "", matrixNeeds[r]})
	}
	for _, e := range extra {
		jobs = append(jobs, job(e))
	}
	checked := 0
	for _, j := range jobs {
		method, pattern, _ := strings.Cut(j.route, " ")
		guilds := []string{guildID, guildB}
		if !strings.Contains(pattern, "{guild}") && !strings.Contains(j.need, "body") {
			guilds = guilds[:1]
		}
		for _, gid := range guilds {
			for _, p := range w.callers {
				r := w.request(method, pattern, gid)
				r.URL.RawQuery = strings.TrimPrefix(j.query, "?")
				if h := p.header(); h != "" {
					r.Header.Set("Authorization", h)
				}
				if j.route == "POST /api/v1/auth/logout" && p.user {
					// Logging out ends the session: use a fresh one.
					acc := "acc-" + map[string]string{"instance-admin": "root", "no-role": "nobody"}[p.name]
					if acc == "acc-" {
						acc = "acc-" + strings.TrimSuffix(p.name, "-of-A") + "A"
					}
					tk, err := w.parts.sessions.Start(context.Background(), acc, "password", "", "")
					if err != nil {
						t.Fatal(err)
					}
					r.Header.Set("Authorization", "Bearer "+tk.AccessToken)
				}
				rec := httptest.NewRecorder()
				w.h.ServeHTTP(rec, r)
				want := expect(j.need, p, method, gid)
				var e struct{ Error struct{ Code string } }
				json.Unmarshal(rec.Body.Bytes(), &e) //nolint:errcheck // non-JSON bodies have no code
				denied := rec.Code == http.StatusForbidden && e.Error.Code == "forbidden" || rec.Code == http.StatusUnauthorized && e.Error.Code == "unauthorized"
				if j.need == "public" {
					// A public route's own answer (a failed login's 401) is not a denial.
					denied = rec.Code == http.StatusForbidden && e.Error.Code == "forbidden"
				}
				switch {
				case rec.Code >= 500:
					t.Errorf("%s %s as %s (guild %s): %d %s", method, r.URL, p.name, gid, rec.Code, rec.Body)
				case want && denied:
					t.Errorf("%s %s as %s: denied (%d %s), want allowed", method, r.URL, p.name, rec.Code, rec.Body)
				case !want && !denied:
					t.Errorf("%s %s as %s: %d %s, want denied", method, r.URL, p.name, rec.Code, truncate(rec.Body.String(), 200))
				case !want && p.header() == "" && rec.Code != http.StatusUnauthorized:
					t.Errorf("%s %s anonymous: %d, want 401", method, r.URL, rec.Code)
				}
				checked++
			}
		}
	}
	t.Logf("%d route × principal × guild cases checked over %d routes", checked, len(routes))
	// Every denial is in the audit log.
	page, err := w.st.ListAudit(context.Background(), store.AuditQuery{Action: "authz.deny", Limit: 500})
	if err != nil || len(page.Entries) < 50 {
		t.Fatalf("denials not audited: %d entries, %v", len(page.Entries), err)
	}
}

// TestRouteMatrix walks every route × principal × guild (the caller's own
// guild and another one, in the path and in the body) and checks allow or
// deny, on SQLite and on PostgreSQL.
func TestRouteMatrix(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		runMatrix(t, filepath.Join(t.TempDir(), "matrix.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv(storetest.PostgresEnv)
		if base == "" {
			t.Skip(storetest.PostgresEnv + " unset: the route matrix on PostgreSQL is skipped")
		}
		runMatrix(t, storetest.PostgresDSN(t, base))
	})
}
