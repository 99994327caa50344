package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/util"

	"github.com/spywatcher/spywatcher/permissions"
)

// Domains and subjects.
const (
	// Instance is the domain of instance-wide operations (accounts, the
	// whole audit log, plugin installation).
	Instance = "instance"
	// AnyDomain in a role assignment or grant makes it hold in every domain.
	AnyDomain = "*"
	// AdminToken is the subject of the bootstrap admin token.
	AdminToken = "admintoken"
)

// The actions.
const (
	Read  = "read"
	Write = "write"
	Use   = "use" // what plugins are granted
)

// Roles, from least to most.
const (
	RoleViewer        = "viewer"
	RoleModerator     = "moderator"
	RoleAdmin         = "admin"
	RoleOwner         = "owner"
	RoleInstanceAdmin = "instance_admin"
)

// GuildRoles lists the per-guild roles from least to most.
var GuildRoles = []string{RoleViewer, RoleModerator, RoleAdmin, RoleOwner}

// User, APIKey and Plugin return the subject naming an account, an API key
// or a plugin.
func User(id string) string   { return "user:" + id }
func APIKey(id string) string { return "apikey:" + id }
func Plugin(id string) string { return "plugin:" + id }

func roleSubject(role string) string { return "role:" + role }

// RoleRank orders roles: 0 for none or unknown, higher is more.
func RoleRank(role string) int {
	for i, r := range GuildRoles {
		if r == role {
			return i + 1
		}
	}
	if role == RoleInstanceAdmin {
		return len(GuildRoles) + 1
	}
	return 0
}

// Notifier carries invalidation messages between host instances;
// bus.Signals (in-process) and bus.RedisSignals implement it.
type Notifier interface {
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(channel string, fn func(payload []byte)) (cancel func())
}

// Channel is the Notifier channel of policy changes.
const Channel = "spywatcher.authz.changed"

// Options tune New.
type Options struct {
	// Notifier tells other instances about changes; nil keeps them local.
	Notifier Notifier
	Logger   *slog.Logger
	// NoCache turns the decision cache off (for measuring it).
	NoCache bool
	// PollEvery checks this often whether the stored rules changed and
	// reloads them if so (0: never), so that changes made by a process that
	// could not notify (the CLI without Redis) are seen within that time.
	// A check is one tiny query; nothing is reloaded while nothing changes.
	PollEvery time.Duration
}

// Enforcer answers "may subject do action on object in domain?" for the
// whole host. It is safe for concurrent use.
type Enforcer struct {
	ce     *casbin.SyncedEnforcer
	ad     *adapter
	rules  RuleStore
	notify Notifier
	log    *slog.Logger
	origin string
	cancel func()

	closeOnce sync.Once

	noCache bool
	gen     atomic.Uint64
	mu      sync.RWMutex
	cache   map[string]bool
}

// New loads the model, the built-in policy and the stored rules.
func New(ctx context.Context, rules RuleStore, opts Options) (*Enforcer, error) {
	m, err := model.NewModelFromString(permissions.Model)
	if err != nil {
		return nil, fmt.Errorf("authz: model: %w", err)
	}
	ce, err := casbin.NewSyncedEnforcer()
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	ad := &adapter{rules: rules, timeout: 10 * time.Second}
	if err := ce.InitWithModelAndAdapter(m, ad); err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	// A g rule in domain "*" holds in every domain.
	ce.AddNamedDomainMatchingFunc("g", "keyMatch", util.KeyMatch)
	if err := ce.LoadPolicy(); err != nil {
		return nil, fmt.Errorf("authz: load policy: %w", err)
	}
	ce.EnableAutoSave(true)
	b := make([]byte, 8)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on supported platforms
	e := &Enforcer{ce: ce, ad: ad, rules: rules, notify: opts.Notifier, log: opts.Logger, origin: hex.EncodeToString(b), noCache: opts.NoCache, cache: map[string]bool{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	var cancels []func()
	if e.notify != nil {
		cancels = append(cancels, e.notify.Subscribe(Channel, e.onNotify))
	}
	if opts.PollEvery > 0 {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(opts.PollEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if err := e.ReloadIfChanged(context.Background()); err != nil {
						e.log.Error("authz: poll for rule changes", "err", err)
					}
				}
			}
		}()
		cancels = append(cancels, func() { close(stop); <-done })
	}
	e.cancel = func() {
		for _, c := range cancels {
			c()
		}
	}
	return e, nil
}

// Close stops listening for other instances' changes and reloading.
func (e *Enforcer) Close() {
	e.closeOnce.Do(func() {
		if e.cancel != nil {
			e.cancel()
		}
	})
}

func (e *Enforcer) onNotify(payload []byte) {
	if string(payload) == e.origin {
		return
	}
	if err := e.Reload(); err != nil {
		e.log.Error("authz: reload after a change on another instance", "err", err)
	}
}

// Reload reads every rule again and clears the cache.
func (e *Enforcer) Reload() error {
	if err := e.ce.LoadPolicy(); err != nil {
		return fmt.Errorf("authz: reload: %w", err)
	}
	e.invalidate()
	return nil
}

// ReloadIfChanged reloads the rules if the stored ones changed since they
// were last loaded.
func (e *Enforcer) ReloadIfChanged(ctx context.Context) error {
	v, err := e.rules.RulesVersion(ctx)
	if err != nil {
		return fmt.Errorf("authz: %w", err)
	}
	if v == e.ad.loaded.Load() {
		return nil
	}
	return e.Reload()
}

func (e *Enforcer) invalidate() {
	e.mu.Lock()
	e.gen.Add(1)
	clear(e.cache)
	e.mu.Unlock()
}

// changed clears the cache and tells the other instances.
func (e *Enforcer) changed(ctx context.Context) {
	e.invalidate()
	if e.notify == nil {
		return
	}
	if err := e.notify.Publish(ctx, Channel, []byte(e.origin)); err != nil {
		e.log.Error("authz: tell other instances about a policy change", "err", err)
	}
}

// Enforce reports whether sub may do act on obj in dom.
func (e *Enforcer) Enforce(sub, dom, obj, act string) (bool, error) {
	if e.noCache {
		return e.enforce(sub, dom, obj, act)
	}
	key := sub + "\x00" + dom + "\x00" + obj + "\x00" + act
	e.mu.RLock()
	v, ok := e.cache[key]
	gen := e.gen.Load()
	e.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := e.enforce(sub, dom, obj, act)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	if e.gen.Load() == gen { // no change happened while deciding
		if len(e.cache) >= 200_000 {
			clear(e.cache)
		}
		e.cache[key] = v
	}
	e.mu.Unlock()
	return v, nil
}

// grantType is the policy type of direct grants (plugins); see model.conf.
const grantType = "p2"

// grantPrefix starts the subjects decided by their direct grants (m2).
const grantPrefix = "plugin:"

func (e *Enforcer) enforce(sub, dom, obj, act string) (bool, error) {
	if sub == "" || dom == "" || obj == "" || act == "" {
		return false, nil
	}
	if strings.HasPrefix(sub, grantPrefix) {
		// m2 is an exact match: a lookup of the rule, in its guild or in "*".
		for _, d := range []string{dom, AnyDomain} {
			ok, err := e.ce.HasNamedPolicy(grantType, sub, d, obj, act)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	ok, err := e.ce.Enforce(sub, dom, obj, act)
	if err != nil {
		return false, fmt.Errorf("authz: enforce: %w", err)
	}
	return ok, nil
}

// ErrUnknownRole is returned for a role name that is not a guild role.
var ErrUnknownRole = errors.New("authz: unknown role")

// SetRole makes role the subject's only role in dom; "" removes it.
func (e *Enforcer) SetRole(ctx context.Context, sub, dom, role string) error {
	return e.SetRoles(ctx, sub, map[string]string{dom: role})
}

// SetRoles sets the subject's role in each domain of roles ("" removes it),
// with one invalidation for all of them.
func (e *Enforcer) SetRoles(ctx context.Context, sub string, roles map[string]string) error {
	for dom, role := range roles {
		if role != "" && RoleRank(role) == 0 {
			return fmt.Errorf("%w %q", ErrUnknownRole, role)
		}
		if dom == "" {
			return errors.New("authz: empty domain")
		}
	}
	// Leave domains whose role is already right alone, so that a login that
	// changes nothing (the common case) writes nothing and keeps every
	// instance's cache.
	current, err := e.ce.GetFilteredGroupingPolicy(0, sub)
	if err != nil {
		return fmt.Errorf("authz: set role: %w", err)
	}
	have := map[string][]string{}
	for _, r := range current {
		if len(r) == 3 {
			have[r[2]] = append(have[r[2]], r[1])
		}
	}
	todo := map[string]string{}
	for dom, role := range roles {
		h := have[dom]
		if (role == "" && len(h) == 0) || (len(h) == 1 && h[0] == roleSubject(role)) {
			continue
		}
		todo[dom] = role
	}
	if len(todo) == 0 {
		return nil
	}
	defer e.changed(ctx)
	for dom, role := range todo {
		if _, err := e.ce.RemoveFilteredGroupingPolicy(0, sub, "", dom); err != nil {
			return fmt.Errorf("authz: set role: %w", err)
		}
		if role == "" {
			continue
		}
		if _, err := e.ce.AddGroupingPolicy(sub, roleSubject(role), dom); err != nil {
			return fmt.Errorf("authz: set role: %w", err)
		}
	}
	return nil
}

// Link makes sub act as parent in dom (an API key as its owner in the
// guilds it is scoped to).
func (e *Enforcer) Link(ctx context.Context, sub, parent string, doms ...string) error {
	defer e.changed(ctx)
	for _, d := range doms {
		if _, err := e.ce.AddGroupingPolicy(sub, parent, d); err != nil {
			return fmt.Errorf("authz: link: %w", err)
		}
	}
	return nil
}

// RemoveSubject deletes every rule naming sub (a deleted account, a
// revoked key, an uninstalled plugin).
func (e *Enforcer) RemoveSubject(ctx context.Context, sub string) error {
	defer e.changed(ctx)
	if _, err := e.ce.RemoveFilteredGroupingPolicy(0, sub); err != nil {
		return fmt.Errorf("authz: remove subject: %w", err)
	}
	if _, err := e.ce.RemoveFilteredGroupingPolicy(1, sub); err != nil {
		return fmt.Errorf("authz: remove subject: %w", err)
	}
	if _, err := e.ce.RemoveFilteredPolicy(0, sub); err != nil {
		return fmt.Errorf("authz: remove subject: %w", err)
	}
	if _, err := e.ce.RemoveFilteredNamedPolicy(grantType, 0, sub); err != nil {
		return fmt.Errorf("authz: remove subject: %w", err)
	}
	return nil
}

// Roles returns the roles directly assigned to sub, by domain.
func (e *Enforcer) Roles(sub string) (map[string]string, error) {
	rules, err := e.ce.GetFilteredGroupingPolicy(0, sub)
	if err != nil {
		return nil, fmt.Errorf("authz: roles: %w", err)
	}
	out := map[string]string{}
	for _, r := range rules {
		if len(r) == 3 && strings.HasPrefix(r[1], "role:") {
			role := strings.TrimPrefix(r[1], "role:")
			if RoleRank(role) > RoleRank(out[r[2]]) {
				out[r[2]] = role
			}
		}
	}
	return out, nil
}

// Assignment is one subject's role in one domain.
type Assignment struct {
	Subject string `json:"subject"`
	Domain  string `json:"domain"`
	Role    string `json:"role"`
}

// RoleAssignments lists who has which role in dom ("" for every domain).
func (e *Enforcer) RoleAssignments(dom string) ([]Assignment, error) {
	var rules [][]string
	var err error
	if dom == "" {
		rules, err = e.ce.GetGroupingPolicy()
	} else {
		rules, err = e.ce.GetFilteredGroupingPolicy(2, dom)
	}
	if err != nil {
		return nil, fmt.Errorf("authz: role assignments: %w", err)
	}
	out := []Assignment{}
	for _, r := range rules {
		if len(r) == 3 && strings.HasPrefix(r[1], "role:") && !strings.HasPrefix(r[0], "role:") {
			out = append(out, Assignment{Subject: r[0], Domain: r[2], Role: strings.TrimPrefix(r[1], "role:")})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Domain != out[j].Domain {
			return out[i].Domain < out[j].Domain
		}
		return out[i].Subject < out[j].Subject
	})
	return out, nil
}

// Grant allows a plugin obj/act in dom (a guild, or AnyDomain).
func (e *Enforcer) Grant(ctx context.Context, sub, dom, obj, act string) error {
	if !strings.HasPrefix(sub, grantPrefix) || dom == "" || obj == "" || act == "" {
		return errors.New("authz: grant needs a plugin subject, a domain, an object and an action")
	}
	defer e.changed(ctx)
	if _, err := e.ce.AddNamedPolicy(grantType, sub, dom, obj, act); err != nil {
		return fmt.Errorf("authz: grant: %w", err)
	}
	return nil
}

// Revoke takes back a grant; it reports whether there was one.
func (e *Enforcer) Revoke(ctx context.Context, sub, dom, obj, act string) (bool, error) {
	defer e.changed(ctx)
	ok, err := e.ce.RemoveNamedPolicy(grantType, sub, dom, obj, act)
	if err != nil {
		return false, fmt.Errorf("authz: revoke: %w", err)
	}
	return ok, nil
}

// GrantRule is a permission given to a subject in a domain.
type GrantRule struct {
	Subject string `json:"subject"`
	Domain  string `json:"domain"`
	Object  string `json:"object"`
	Action  string `json:"action"`
}

// Grants lists the plugin grants in dom ("" for all) whose subject starts
// with prefix ("plugin:" for all, "plugin:<id>" for one plugin).
func (e *Enforcer) Grants(dom, prefix string) ([]GrantRule, error) {
	var rules [][]string
	var err error
	if dom == "" {
		rules, err = e.ce.GetNamedPolicy(grantType)
	} else {
		rules, err = e.ce.GetFilteredNamedPolicy(grantType, 1, dom)
	}
	if err != nil {
		return nil, fmt.Errorf("authz: grants: %w", err)
	}
	out := []GrantRule{}
	for _, r := range rules {
		if len(r) == 4 && strings.HasPrefix(r[0], prefix) && !strings.HasPrefix(r[0], "role:") {
			out = append(out, GrantRule{Subject: r[0], Domain: r[1], Object: r[2], Action: r[3]})
		}
	}
	return out, nil
}
