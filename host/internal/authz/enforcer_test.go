package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/permissions"
)

const (
	guildA = "41771983423143937"
	guildB = "51771983423143937"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "authz.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnforcer(t testing.TB, rs RuleStore, opts Options) *Enforcer {
	t.Helper()
	e, err := New(context.Background(), rs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestDecisions(t *testing.T) {
	ctx := context.Background()
	e := newEnforcer(t, openStore(t), Options{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.SetRole(ctx, User("v"), guildA, RoleViewer))
	must(e.SetRole(ctx, User("m"), guildA, RoleModerator))
	must(e.SetRole(ctx, User("a"), guildA, RoleAdmin))
	must(e.SetRole(ctx, User("o"), guildA, RoleOwner))
	must(e.SetRole(ctx, User("root"), AnyDomain, RoleInstanceAdmin))
	must(e.SetRole(ctx, User("everywhere"), AnyDomain, RoleViewer))
	must(e.Link(ctx, APIKey("k"), User("m"), guildA))
	must(e.Grant(ctx, Plugin("p"), guildA, "kv.write", Use))

	tests := []struct {
		sub, dom, obj, act string
		want               bool
	}{
		{User("v"), guildA, "guild", Read, true},
		{User("v"), guildA, "members", Read, false},
		{User("v"), guildB, "guild", Read, false},
		{User("m"), guildA, "members", Read, true},
		{User("m"), guildA, "guild", Read, true}, // inherited from viewer
		{User("m"), guildA, "roles", Write, false},
		{User("a"), guildA, "roles", Write, true},
		{User("a"), guildA, "roles.admin", Write, false},
		{User("a"), guildA, "members", Read, true},
		{User("a"), guildB, "members", Read, false},
		{User("a"), Instance, "admin.users", Read, false},
		{User("o"), guildA, "roles.admin", Write, true},
		{User("o"), guildA, "roles.owner", Write, false},
		{User("root"), guildB, "roles.owner", Write, true},
		{User("root"), Instance, "admin.users", Write, true},
		{User("everywhere"), guildB, "guild", Read, true},
		{User("everywhere"), guildB, "members", Read, false},
		{User("everywhere"), Instance, "admin.users", Read, false},
		{APIKey("k"), guildA, "members", Read, true}, // as its owner, in its scope
		{APIKey("k"), guildB, "guild", Read, false},
		{AdminToken, guildB, "members", Read, true},
		{AdminToken, Instance, "admin.audit", Read, true},
		{Plugin("p"), guildA, "kv.write", Use, true},
		{Plugin("p"), guildB, "kv.write", Use, false},
		{Plugin("p"), guildA, "http.fetch", Use, false},
		{Plugin("p"), guildA, "members", Read, false},
		{User("nobody"), guildA, "guild", Read, false},
		{"", guildA, "guild", Read, false},
	}
	for _, tt := range tests {
		got, err := e.Enforce(tt.sub, tt.dom, tt.obj, tt.act)
		if err != nil || got != tt.want {
			t.Errorf("Enforce(%s, %s, %s, %s) = %v, %v; want %v", tt.sub, tt.dom, tt.obj, tt.act, got, err, tt.want)
		}
	}

	// Changes take effect at once, cache or not.
	if ok, _ := e.Enforce(User("m"), guildA, "members", Read); !ok {
		t.Fatal("moderator lost members/read")
	}
	must(e.SetRole(ctx, User("m"), guildA, RoleViewer))
	if ok, _ := e.Enforce(User("m"), guildA, "members", Read); ok {
		t.Fatal("demotion not seen")
	}
	if ok, _ := e.Enforce(APIKey("k"), guildA, "members", Read); ok {
		t.Fatal("a key must follow its owner's demotion")
	}
	if ok, _ := e.Revoke(ctx, Plugin("p"), guildA, "kv.write", Use); !ok {
		t.Fatal("revoke found no grant")
	}
	if ok, _ := e.Enforce(Plugin("p"), guildA, "kv.write", Use); ok {
		t.Fatal("revoked grant still allowed")
	}
	roles, err := e.Roles(User("a"))
	if err != nil || roles[guildA] != RoleAdmin || len(roles) != 1 {
		t.Fatalf("roles: %v %v", roles, err)
	}
	must(e.RemoveSubject(ctx, User("a")))
	if ok, _ := e.Enforce(User("a"), guildA, "guild", Read); ok {
		t.Fatal("removed subject still allowed")
	}
	if err := e.SetRole(ctx, User("x"), guildA, "emperor"); err == nil {
		t.Fatal("unknown role accepted")
	}
}

// TestGrantLookupAgreesWithModel: plugin decisions are map lookups of p2
// rules; casbin evaluating m2 of model.conf must agree on every request.
func TestGrantLookupAgreesWithModel(t *testing.T) {
	ctx := context.Background()
	e := newEnforcer(t, openStore(t), Options{})
	if err := e.Grant(ctx, Plugin("a"), guildA, "kv.write", Use); err != nil {
		t.Fatal(err)
	}
	if err := e.Grant(ctx, Plugin("b"), AnyDomain, "emit", Use); err != nil {
		t.Fatal(err)
	}
	if err := e.Grant(ctx, User("x"), guildA, "kv.write", Use); err == nil {
		t.Fatal("grants are for plugins")
	}
	for _, sub := range []string{Plugin("a"), Plugin("b"), Plugin("c")} {
		for _, dom := range []string{guildA, guildB, Instance} {
			for _, obj := range []string{"kv.write", "emit", "http.fetch"} {
				for _, act := range []string{Use, Read} {
					got, err := e.Enforce(sub, dom, obj, act)
					if err != nil {
						t.Fatal(err)
					}
					want, err := e.ce.Enforce(casbin.NewEnforceContext("2"), sub, dom, obj, act)
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Errorf("%s %s %s %s: lookup %v, model %v", sub, dom, obj, act, got, want)
					}
				}
			}
		}
	}
	if ok, _ := e.Enforce(Plugin("b"), guildB, "emit", Use); !ok {
		t.Fatal("a grant in * holds in every guild")
	}
}

// TestRulesPersist: rules are in the database, so a new enforcer (a restart,
// another instance) sees them.
func TestRulesPersist(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e1 := newEnforcer(t, st, Options{})
	if err := e1.Grant(ctx, Plugin("p"), guildA, "kv.write", Use); err != nil {
		t.Fatal(err)
	}
	if err := e1.SetRole(ctx, User("u"), guildA, RoleAdmin); err != nil {
		t.Fatal(err)
	}
	e2 := newEnforcer(t, st, Options{})
	for _, req := range [][4]string{{Plugin("p"), guildA, "kv.write", Use}, {User("u"), guildA, "plugins", Write}} {
		if ok, err := e2.Enforce(req[0], req[1], req[2], req[3]); !ok || err != nil {
			t.Fatalf("%v not allowed after restart: %v", req, err)
		}
	}
	rules, _ := st.ListRules(ctx)
	if len(rules) != 2 {
		t.Fatalf("built-in rules must not be stored: %v", rules)
	}
}

// invalidationAcrossInstances: two enforcers over one database, joined by
// a notifier, see each other's changes even with warm caches.
func invalidationAcrossInstances(t *testing.T, n1, n2 Notifier) {
	ctx := context.Background()
	st := openStore(t)
	e1 := newEnforcer(t, st, Options{Notifier: n1})
	e2 := newEnforcer(t, st, Options{Notifier: n2})
	// Warm both caches with a deny.
	for _, e := range []*Enforcer{e1, e2} {
		if ok, _ := e.Enforce(Plugin("p"), guildA, "kv.write", Use); ok {
			t.Fatal("allowed before the grant")
		}
	}
	if err := e1.Grant(ctx, Plugin("p"), guildA, "kv.write", Use); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { ok, _ := e2.Enforce(Plugin("p"), guildA, "kv.write", Use); return ok }, "grant seen by the other instance")
	if _, err := e2.Revoke(ctx, Plugin("p"), guildA, "kv.write", Use); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { ok, _ := e1.Enforce(Plugin("p"), guildA, "kv.write", Use); return !ok }, "revocation seen by the other instance")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInvalidationInProcess(t *testing.T) {
	s := bus.NewSignals()
	invalidationAcrossInstances(t, s, s)
}

func TestInvalidationThroughRedis(t *testing.T) {
	url := os.Getenv("SPYWATCHER_TEST_REDIS_URL")
	if url == "" {
		t.Skip("SPYWATCHER_TEST_REDIS_URL unset: skipping the Redis invalidation test")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := redis.NewClient(opts), redis.NewClient(opts)
	t.Cleanup(func() { r1.Close(); r2.Close() })
	invalidationAcrossInstances(t, bus.NewRedisSignals(r1, nil), bus.NewRedisSignals(r2, nil))
}

// TestCatalogueCoversPolicy: every object and action the built-in policy
// names is in the catalogue, and every catalogue entry for people is granted
// to the role the catalogue says.
func TestCatalogueCoversPolicy(t *testing.T) {
	cat, err := permissions.Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, p := range cat {
		known[p.Object+"/"+p.Action] = true
	}
	for _, line := range strings.Split(permissions.Policy, "\n") {
		f := strings.Split(line, ",")
		if len(f) == 5 && strings.TrimSpace(f[0]) == "p" && strings.TrimSpace(f[3]) != "*" {
			k := strings.TrimSpace(f[3]) + "/" + strings.TrimSpace(f[4])
			if !known[k] {
				t.Errorf("policy.csv names %s, which catalogue.json lacks", k)
			}
		}
	}
	e := newEnforcer(t, openStore(t), Options{})
	ctx := context.Background()
	for _, r := range append(GuildRoles, RoleInstanceAdmin) {
		dom := guildA
		if r == RoleInstanceAdmin {
			dom = AnyDomain
		}
		if err := e.SetRole(ctx, User(r), dom, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range cat {
		if p.Subject != "user" {
			if p.Action != Use {
				t.Errorf("plugin permission %s must have action use", p.Object)
			}
			continue
		}
		dom := guildA
		if p.Scope == "instance" {
			dom = Instance
		}
		for _, r := range append(GuildRoles, RoleInstanceAdmin) {
			want := RoleRank(r) >= RoleRank(p.Role)
			if got, _ := e.Enforce(User(r), dom, p.Object, p.Action); got != want {
				t.Errorf("%s %s/%s in %s: got %v, catalogue says minimum role %s", r, p.Object, p.Action, dom, got, p.Role)
			}
		}
	}
}

// TestReloadKeepsDomainMatching: after a reload (another instance changed
// something) the role hierarchy and instance-wide roles still hold.
func TestReloadKeepsDomainMatching(t *testing.T) {
	ctx := context.Background()
	e := newEnforcer(t, openStore(t), Options{NoCache: true})
	if err := e.SetRole(ctx, User("o"), guildA, RoleOwner); err != nil {
		t.Fatal(err)
	}
	if err := e.SetRole(ctx, User("root"), AnyDomain, RoleInstanceAdmin); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
		for _, req := range [][4]string{{User("o"), guildA, "guild", Read}, {User("root"), guildB, "members", Read}, {AdminToken, Instance, "admin.users", Write}} {
			if ok, err := e.Enforce(req[0], req[1], req[2], req[3]); !ok || err != nil {
				t.Fatalf("after reload %d: %v denied (%v)", i+1, req, err)
			}
		}
	}
}

// TestPollSeesChangesOfOtherProcesses: an enforcer without a notifier (the
// CLI, another instance without Redis) changes the rules; a polling one
// reloads them, and does not reload while nothing changes.
func TestPollSeesChangesOfOtherProcesses(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	server := newEnforcer(t, st, Options{PollEvery: 5 * time.Millisecond})
	cli := newEnforcer(t, st, Options{})
	if ok, _ := server.Enforce(User("u"), guildA, "guild", Read); ok {
		t.Fatal("allowed before")
	}
	if err := cli.SetRole(ctx, User("u"), guildA, RoleViewer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { ok, _ := server.Enforce(User("u"), guildA, "guild", Read); return ok }, "the poll picks up the CLI's change")
	v := server.ad.loaded.Load()
	time.Sleep(30 * time.Millisecond)
	if server.ad.loaded.Load() != v {
		t.Fatal("reloaded although nothing changed")
	}
}

// TestSetRolesWithoutChangeKeepsTheCache: a Discord login that finds every
// role as it was writes nothing and invalidates nothing.
func TestSetRolesWithoutChangeKeepsTheCache(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e := newEnforcer(t, st, Options{})
	roles := map[string]string{guildA: RoleAdmin, guildB: ""}
	if err := e.SetRoles(ctx, User("d"), roles); err != nil {
		t.Fatal(err)
	}
	v, _ := st.RulesVersion(ctx)
	gen := e.gen.Load()
	if err := e.SetRoles(ctx, User("d"), roles); err != nil {
		t.Fatal(err)
	}
	if v2, _ := st.RulesVersion(ctx); v2 != v || e.gen.Load() != gen {
		t.Fatal("an unchanged role set wrote or invalidated")
	}
	if err := e.SetRoles(ctx, User("d"), map[string]string{guildA: RoleViewer}); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.Roles(User("d")); r[guildA] != RoleViewer || len(r) != 1 {
		t.Fatalf("roles: %v", r)
	}
}
