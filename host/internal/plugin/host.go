// Package plugin is the plugin host: it installs plugins, keeps per-guild
// enablement, configuration and grants, runs plugin code in sandboxed
// WebAssembly instances (package wasm), dispatches events to them, serves
// their routes, and offers them host functions checked against what the
// guild admin granted.
//
// State (installed plugins, guild state, grants) lives in the store; the host
// keeps an immutable snapshot of it and rebuilds the snapshot after its own
// changes and whenever the store's plugin state version moves (changes made
// by the CLI or another host instance), so a revocation takes effect on the
// next call.
package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/plugin/process"
	"github.com/spywatcher/spywatcher/host/internal/plugin/wasm"
	"github.com/spywatcher/spywatcher/host/internal/privacy"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// RegistryStore keeps installed plugins, their guild state and grants.
type RegistryStore interface {
	PluginStateVersion(ctx context.Context) (int64, error)
	ListPlugins(ctx context.Context) ([]store.InstalledPlugin, error)
	GetPlugin(ctx context.Context, id string) (store.InstalledPlugin, error)
	PutPlugin(ctx context.Context, p store.InstalledPlugin) error
	DeletePlugin(ctx context.Context, id string) error
	ListPluginGuilds(ctx context.Context, pluginID, guildID string) ([]store.PluginGuild, error)
	GetPluginGuild(ctx context.Context, pluginID, guildID string) (store.PluginGuild, error)
	SetPluginEnabled(ctx context.Context, pluginID, guildID string, enabled bool) error
	SetPluginConfig(ctx context.Context, pluginID, guildID string, config json.RawMessage) error
	QuarantinePlugin(ctx context.Context, pluginID, guildID, reason string) error
	RecordPluginError(ctx context.Context, pluginID, guildID, msg string) error
	GrantPlugin(ctx context.Context, pluginID, guildID string, grants []store.PluginGrant) error
	RevokePlugin(ctx context.Context, pluginID, guildID string, permissions []string) error
	ListPluginGrants(ctx context.Context, pluginID, guildID string) (map[[2]string][]store.PluginGrant, error)
}

// DataStore is what host functions read and write.
type DataStore interface {
	KVGet(ctx context.Context, pluginID, guildID, key string) ([]byte, error)
	KVSet(ctx context.Context, pluginID, guildID, key, userID string, value []byte, quota int64) error
	KVDelete(ctx context.Context, pluginID, guildID, key string) error
	KVList(ctx context.Context, pluginID, guildID, prefix, after string, limit int) ([]store.KVEntry, error)
	GetMember(ctx context.Context, guildID, userID string) (store.Member, error)
	Activity(ctx context.Context, guildID, userID string, from, to time.Time) ([]store.ActivityHour, error)
}

// Store is everything the plugin host needs from storage.
type Store interface {
	RegistryStore
	DataStore
}

// Policy decides and records what plugins are granted; *authz.Enforcer (the
// casbin enforcer shared with people and API keys) implements it. Plugin
// grants are policies with the plugin as subject, the guild as domain, the
// permission as object and "use" as action.
type Policy interface {
	Enforce(sub, dom, obj, act string) (bool, error)
	Grant(ctx context.Context, sub, dom, obj, act string) error
	Revoke(ctx context.Context, sub, dom, obj, act string) (bool, error)
	RemoveSubject(ctx context.Context, sub string) error
}

// useAction is the action of every plugin grant.
const useAction = "use"

// subject is a plugin's subject in policies.
func subject(pluginID string) string { return "plugin:" + pluginID }

// Fetcher sends outbound HTTP for plugins; *safehttp.Client implements it.
type Fetcher interface {
	Do(ctx context.Context, p safehttp.Policy, req safehttp.Request) (safehttp.Response, error)
}

// Emitter publishes plugin events to dashboards; *bus.Local implements it.
type Emitter interface {
	PublishPluginEvent(ctx context.Context, ev bus.PluginEvent)
}

// Config tunes the host. Zero fields take the defaults noted.
type Config struct {
	Dir             string        // where installed artifacts live (required)
	CacheDir        string        // compiled code cache; "" keeps it in memory
	MaxMemoryBytes  int64         // all live instances together; default 512 MiB
	QuarantineAfter int           // consecutive failures before quarantine; default 5
	Refresh         time.Duration // how often to look for changes by other processes; default 2s
	FlushInterval   time.Duration // longest events wait for their batch; default 50ms
	// FetchAllowPrivate lets http_fetch reach these private address blocks
	// (self-hosters' internal webhooks, tests); empty allows none.
	FetchAllowPrivate []netip.Prefix
	// Scores is the topic of new member scores (bus.Local.Scores); Start
	// delivers them as score.update events to the plugins that subscribe
	// to that kind and hold events.score.read. nil: no score.update.
	Scores *bus.Topic[[]bus.ScoreUpdate]
	// ExternalTicks leaves tick hooks to the caller (TickTargets, Tick):
	// the job runner calls them under leases shared by host instances.
	ExternalTicks bool
	Now           func() time.Time
	Logger        *slog.Logger
	// Process tunes the process runtime (health checks, restart backoff).
	Process process.Options
	// OnHostCall, if set, hears of every host function call after it was
	// answered (spywatcher plugin test prints them).
	OnHostCall func(HostCall)
}

// HostCall is one host function call a plugin made, as OnHostCall hears it.
type HostCall struct {
	Plugin   string          `json:"plugin"`
	Guild    string          `json:"guild"`
	Hook     string          `json:"hook"`
	Function string          `json:"function"`
	Request  json.RawMessage `json:"request"`
	Response json.RawMessage `json:"response"`
	// Result is ok, denied, invalid, quota, not_found, error, ...
	Result string `json:"result"`
}

// Host runs plugins.
type Host struct {
	cfg    Config
	st     Store
	policy Policy
	engine *wasm.Engine
	procs  *process.Runtime
	pool   *pool
	fetch  Fetcher
	emit   Emitter
	log    *slog.Logger
	m      *metrics

	snap      atomic.Pointer[snapshot]
	rebuildMu sync.Mutex

	failMu      sync.Mutex
	failures    map[[2]string]int
	metricNames map[string]map[string]bool // plugin -> counter names in use

	logLimits sync.Map // [2]string -> *rateLimiter
	disp      *dispatcher
}

// New returns a host over st. Call Start to begin dispatching and Close at
// shutdown.
func New(ctx context.Context, cfg Config, st Store, policy Policy, fetch Fetcher, emit Emitter, reg prometheus.Registerer) (*Host, error) {
	if cfg.Dir == "" {
		return nil, errors.New("plugin: Config.Dir is required")
	}
	if cfg.MaxMemoryBytes <= 0 {
		cfg.MaxMemoryBytes = 512 << 20
	}
	if cfg.QuarantineAfter <= 0 {
		cfg.QuarantineAfter = 5
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 50 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Host{cfg: cfg, st: st, policy: policy, fetch: fetch, emit: emit, log: cfg.Logger, failures: map[[2]string]int{}}
	m, err := newMetrics(reg, h)
	if err != nil {
		return nil, err
	}
	h.m = m
	h.pool = newPool(cfg.MaxMemoryBytes, 5*time.Minute)
	h.pool.onEvict = func(n int) { h.m.evictions.Add(float64(n)) }
	funcs := map[string]wasm.HostFunc{}
	for _, name := range HostFunctions() {
		funcs[name] = func(ctx context.Context, req []byte) []byte { return h.serveHostFunction(ctx, name, req) }
	}
	if h.engine, err = wasm.NewEngine(cfg.CacheDir, funcs); err != nil {
		return nil, err
	}
	pfuncs := map[string]process.HostFunc{}
	for name, f := range funcs {
		pfuncs[name] = process.HostFunc(f)
	}
	h.procs = process.NewRuntime(pfuncs, cfg.Process)
	h.snap.Store(&snapshot{version: -1, plugins: map[string]*loaded{}, states: map[[2]string]*guildState{}, byGuild: map[string][]string{}})
	if err := h.Refresh(ctx); err != nil {
		return nil, err
	}
	h.disp = newDispatcher(h)
	return h, nil
}

// loaded is an installed plugin version, compiled.
type loaded struct {
	m      *Manifest
	sha256 string
	mod    module
	err    error // why it could not be loaded; the plugin then runs nowhere
}

// guildState is a plugin's standing in one guild.
type guildState struct {
	pg        store.PluginGuild
	grants    map[string]store.PluginGrant
	grantList string // the granted permissions, sorted, comma separated
	runnable  bool
	missing   []string // required permissions not yet granted
}

// snapshot is the immutable picture of what runs where.
type snapshot struct {
	version int64
	plugins map[string]*loaded
	states  map[[2]string]*guildState
	byGuild map[string][]string // guild -> runnable plugin IDs
}

func (s *snapshot) state(pluginID, guildID string) *guildState {
	return s.states[[2]string{pluginID, guildID}]
}

// allowed reports whether a plugin holds a permission in a guild, as of the
// snapshot; it routes events. Host functions ask the policy at call time
// (Host.permitted), so a revocation made anywhere applies to the next call.
func (s *snapshot) allowed(pluginID, guildID, perm string) bool {
	st := s.state(pluginID, guildID)
	if st == nil {
		return false
	}
	_, ok := st.grants[perm]
	return ok
}

// permitted asks the policy whether a plugin holds a permission in a guild.
func (h *Host) permitted(pluginID, guildID, perm string) bool {
	ok, err := h.policy.Enforce(subject(pluginID), guildID, perm, useAction)
	if err != nil {
		h.log.Error("plugin permission check", "plugin", pluginID, "guild", guildID, "permission", perm, "err", err)
		return false
	}
	return ok
}

// Refresh rebuilds the snapshot if the store's plugin state changed.
func (h *Host) Refresh(ctx context.Context) error {
	v, err := h.st.PluginStateVersion(ctx)
	if err != nil {
		return err
	}
	if v == h.snap.Load().version {
		return nil
	}
	return h.rebuild(ctx)
}

// rebuild reads the whole plugin state and swaps in a new snapshot. Modules
// of unchanged versions are reused.
func (h *Host) rebuild(ctx context.Context) error {
	h.rebuildMu.Lock()
	defer h.rebuildMu.Unlock()
	old := h.snap.Load()
	v, err := h.st.PluginStateVersion(ctx)
	if err != nil {
		return err
	}
	installed, err := h.st.ListPlugins(ctx)
	if err != nil {
		return err
	}
	guilds, err := h.st.ListPluginGuilds(ctx, "", "")
	if err != nil {
		return err
	}
	grants, err := h.st.ListPluginGrants(ctx, "", "")
	if err != nil {
		return err
	}
	next := &snapshot{version: v, plugins: map[string]*loaded{}, states: map[[2]string]*guildState{}, byGuild: map[string][]string{}}
	for _, p := range installed {
		if prev := old.plugins[p.ID]; prev != nil && prev.sha256 == p.SHA256 && prev.m != nil && prev.m.Version == p.Version {
			next.plugins[p.ID] = prev
			continue
		}
		next.plugins[p.ID] = h.load(ctx, p)
	}
	for _, pg := range guilds {
		l := next.plugins[pg.PluginID]
		if l == nil {
			continue
		}
		st := &guildState{pg: pg, grants: map[string]store.PluginGrant{}}
		names := make([]string, 0, len(grants[[2]string{pg.PluginID, pg.GuildID}]))
		for _, g := range grants[[2]string{pg.PluginID, pg.GuildID}] {
			st.grants[g.Permission] = g
			names = append(names, g.Permission)
		}
		sort.Strings(names)
		st.grantList = strings.Join(names, ",")
		if l.m != nil {
			for _, req := range l.m.Permissions {
				if _, ok := st.grants[req.Name]; !ok && !req.Optional {
					st.missing = append(st.missing, req.Name)
				}
			}
		}
		st.runnable = pg.Enabled && pg.QuarantinedAt == nil && len(st.missing) == 0 && l.err == nil
		next.states[[2]string{pg.PluginID, pg.GuildID}] = st
		if st.runnable {
			next.byGuild[pg.GuildID] = append(next.byGuild[pg.GuildID], pg.PluginID)
		}
	}
	// Grants of guilds without a plugin_guilds row still matter for
	// host-function checks once the plugin is enabled; nothing to do now.
	for _, ids := range next.byGuild {
		sort.Strings(ids)
	}
	h.snap.Store(next)
	for id, l := range old.plugins {
		if n := next.plugins[id]; (n == nil || n != l) && l.mod != nil {
			// In-flight calls finish on their own instances; the module's
			// runtime goes once they are released.
			go func(mod module) {
				time.Sleep(2 * time.Minute)
				mod.Close(context.Background())
			}(l.mod)
		}
	}
	h.pool.sweep(func(k poolKey) bool {
		l := next.plugins[k.plugin]
		st := next.state(k.plugin, k.guild)
		return l != nil && l.m != nil && l.m.Version == k.version && st != nil && st.runnable && st.pg.ConfigVersion == k.config &&
			st.grantList == k.grants
	})
	return nil
}

// load reads and compiles an installed plugin's artifact.
func (h *Host) load(ctx context.Context, p store.InstalledPlugin) *loaded {
	l := &loaded{sha256: p.SHA256}
	m, err := ParseManifest(p.Manifest)
	if err != nil {
		l.err = err
		return l
	}
	l.m = m
	code, err := h.readArtifact(ctx, p.ID, m)
	if err != nil {
		l.err = fmt.Errorf("plugin %s: artifact missing (reinstall it): %w", p.ID, err)
		h.log.Error("plugin cannot load", "plugin", p.ID, "err", l.err)
		return l
	}
	if sum := sha256.Sum256(code); hex.EncodeToString(sum[:]) != p.SHA256 {
		l.err = fmt.Errorf("plugin %s: artifact changed on disk since install (checksum mismatch)", p.ID)
		h.log.Error("plugin cannot load", "plugin", p.ID, "err", l.err)
		return l
	}
	l.mod, l.err = h.loadModule(ctx, m, code, h.artifactPath(m))
	if l.err != nil {
		h.log.Error("plugin cannot load", "plugin", p.ID, "err", l.err)
	}
	return l
}

func limitsOf(m *Manifest) wasm.Limits {
	return wasm.Limits{
		MemoryPages: uint32(m.Limits.MemoryMB * 16), // 16 pages of 64 KiB per MiB
		KernelBytes: max(4<<20, m.Limits.MaxOutputKB<<10*2, m.Limits.BatchEvents*8<<10),
		CallTimeout: m.Timeout(),
	}
}

// ArtifactStore keeps plugin code in the database so that every host
// instance can load a plugin installed through any of them; *store.Store
// implements it. A Store without it leaves artifacts on local disk only.
type ArtifactStore interface {
	PutPluginArtifact(ctx context.Context, id, version, sha256 string, code []byte) error
	GetPluginArtifact(ctx context.Context, id, version string) (code []byte, sha256 string, err error)
}

// readArtifact reads the plugin's code from the data directory or, when
// it was installed through another instance, from the database (keeping
// a copy on disk).
func (h *Host) readArtifact(ctx context.Context, id string, m *Manifest) ([]byte, error) {
	path := h.artifactPath(m)
	code, err := os.ReadFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return code, err
	}
	as, ok := h.st.(ArtifactStore)
	if !ok {
		return nil, err
	}
	code, _, gerr := as.GetPluginArtifact(ctx, id, m.Version)
	if gerr != nil {
		return nil, errors.Join(err, gerr)
	}
	if merr := os.MkdirAll(filepath.Dir(path), 0o750); merr == nil {
		if werr := os.WriteFile(path+".tmp", code, 0o640); werr == nil {
			os.Rename(path+".tmp", path) //nolint:errcheck // a cache: read from the database again next time
		}
	}
	return code, nil
}

func (h *Host) artifactPath(m *Manifest) string {
	return filepath.Join(h.cfg.Dir, m.ID, m.Version, filepath.Base(m.Artifact.Path))
}

// Close stops the host's instances.
func (h *Host) Close(ctx context.Context) {
	h.pool.closeAll()
	for _, l := range h.snap.Load().plugins {
		if l.mod != nil {
			l.mod.Close(ctx)
		}
	}
	h.engine.Close(ctx)
}

// DeleteUserResult is what one plugin's delete_user hook did in one guild.
type DeleteUserResult = privacy.PluginResult

// DeleteUser calls the delete_user hook of every plugin that offers it,
// in every guild where it runs (or only guildID), so that each can forget
// what it keeps about the person beyond its key-value data, which the host
// deletes itself. Calls run one after another under the plugin's usual
// limits; a failure is reported, counted like any hook failure, and does
// not stop the others.
func (h *Host) DeleteUser(ctx context.Context, guildID, userID string) []privacy.PluginResult {
	snap := h.snap.Load()
	input, _ := json.Marshal(map[string]string{"user_id": userID})
	out := []privacy.PluginResult{}
	keys := make([][2]string, 0, len(snap.states))
	for k, st := range snap.states {
		l := snap.plugins[k[0]]
		if !st.runnable || l == nil || l.m == nil || !l.m.Has(HookDeleteUser) || (guildID != "" && k[1] != guildID) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
	for _, k := range keys {
		r := privacy.PluginResult{Plugin: k[0], Guild: k[1]}
		if _, err := h.call(ctx, k[0], k[1], HookDeleteUser, input); err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	return out
}

var _ privacy.PluginDeleter = (*Host)(nil)
