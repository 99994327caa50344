package plugin

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spywatcher/spywatcher/host/internal/plugin/wasm"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// ErrUnknownPlugin is returned for a plugin that is not installed.
var ErrUnknownPlugin = errors.New("plugin: not installed")

// InstallError is a problem with what is being installed (as opposed to a
// failure of the host); callers show it to the user as is.
type InstallError struct{ Err error }

func (e *InstallError) Error() string { return e.Err.Error() }
func (e *InstallError) Unwrap() error { return e.Err }

func installErr(format string, args ...any) error {
	return &InstallError{Err: fmt.Errorf("plugin: "+format, args...)}
}

// Installed describes the outcome of an install.
type Installed struct {
	Manifest *Manifest `json:"manifest"`
	// Previous is the version this one replaced, if any.
	Previous string `json:"previous,omitempty"`
	// NewPermissions are required permissions the previous version did not
	// ask for: guilds that run the plugin must grant them before it runs
	// again there.
	NewPermissions []string `json:"new_permissions,omitempty"`
	// Unchanged says this exact version and code was already installed;
	// nothing changed.
	Unchanged bool `json:"unchanged,omitempty"`
}

// InstallDir installs the plugin whose plugin.json is in dir.
func (h *Host) InstallDir(ctx context.Context, dir string) (Installed, error) {
	manifest, err := os.ReadFile(filepath.Join(dir, "plugin.json"))
	if err != nil {
		return Installed{}, installErr("read manifest: %v", err)
	}
	m, err := ParseManifest(manifest)
	if err != nil {
		return Installed{}, &InstallError{Err: err}
	}
	code, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(m.Artifact.Path)))
	if err != nil {
		return Installed{}, installErr("read artifact %s: %v", m.Artifact.Path, err)
	}
	return h.Install(ctx, manifest, code)
}

// Install validates a manifest and its artifact, compiles the code, checks
// that it exports every hook the manifest names, stores the artifact and
// records the plugin. Installing grants nothing and enables nothing.
func (h *Host) Install(ctx context.Context, manifest, code []byte) (Installed, error) {
	m, err := ParseManifest(manifest)
	if err != nil {
		return Installed{}, &InstallError{Err: err}
	}
	sum := sha256.Sum256(code)
	if got := hex.EncodeToString(sum[:]); got != m.Artifact.SHA256 {
		return Installed{}, installErr("artifact checksum mismatch: the manifest says %s, the file is %s", m.Artifact.SHA256, got)
	}
	dst := h.artifactPath(m)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return Installed{}, fmt.Errorf("plugin: store artifact: %w", err)
	}
	// A process plugin is started from a file, so the artifact is staged
	// before it is checked; a WebAssembly module is checked from memory.
	mode := os.FileMode(0o640)
	if m.Runtime == RuntimeProcess {
		mode = 0o750
	}
	staged := dst + ".new"
	if err := os.WriteFile(staged, code, mode); err != nil {
		return Installed{}, fmt.Errorf("plugin: store artifact: %w", err)
	}
	defer os.Remove(staged) //nolint:errcheck // gone after the rename on success
	mod, err := h.loadModule(ctx, m, code, staged)
	if err != nil {
		return Installed{}, installErr("%s: %v", m.ID, err)
	}
	// SDK plugins say which hooks have handlers; other WebAssembly modules
	// offer what they export.
	offered, err := mod.hooks(ctx)
	mod.Close(ctx)
	if err != nil {
		return Installed{}, installErr("%s: %v", m.ID, err)
	}
	var missing []string
	for _, hook := range m.Hooks {
		if !slices.Contains(offered, hook) {
			missing = append(missing, hook)
		}
	}
	if len(missing) > 0 {
		return Installed{}, installErr("the manifest lists hooks the module does not implement: %s", strings.Join(missing, ", "))
	}
	res := Installed{Manifest: m}
	if prev, err := h.st.GetPlugin(ctx, m.ID); err == nil {
		switch c := compareVersions(m.Version, prev.Version); {
		case c == 0 && prev.SHA256 != m.Artifact.SHA256:
			return Installed{}, installErr("%s %s is installed with different code; raise the version to upgrade", m.ID, m.Version)
		case c == 0:
			return Installed{Manifest: m, Unchanged: true}, nil
		case c < 0:
			return Installed{}, installErr("%s %s is older than the installed %s; to go back, uninstall it first (its grants and data go with it) or publish the old code as a new version", m.ID, m.Version, prev.Version)
		}
		res.Previous = prev.Version
		if pm, err := ParseManifest(prev.Manifest); err == nil {
			for _, p := range m.Permissions {
				if _, had := pm.Requested(p.Name); !had && !p.Optional {
					res.NewPermissions = append(res.NewPermissions, p.Name)
				}
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return Installed{}, err
	}
	if err := os.Rename(staged, dst); err != nil {
		return Installed{}, fmt.Errorf("plugin: store artifact: %w", err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(dst), "plugin.json"), manifest, 0o640); err != nil {
		return Installed{}, fmt.Errorf("plugin: store manifest: %w", err)
	}
	if as, ok := h.st.(ArtifactStore); ok {
		if err := as.PutPluginArtifact(ctx, m.ID, m.Version, m.Artifact.SHA256, code); err != nil {
			return Installed{}, err
		}
	}
	if err := h.st.PutPlugin(ctx, store.InstalledPlugin{ID: m.ID, Version: m.Version, Manifest: manifest, SHA256: m.Artifact.SHA256}); err != nil {
		return Installed{}, err
	}
	h.log.Info("plugin installed", "plugin", m.ID, "version", m.Version, "previous", res.Previous, "new_permissions", res.NewPermissions)
	return res, h.rebuild(ctx)
}

// offeredHooks asks an SDK-built module which hooks it has handlers for.
func offeredHooks(ctx context.Context, mod *wasm.Module) ([]string, error) {
	in, err := mod.Instantiate(ctx, nil, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		return nil, err
	}
	defer in.Close(ctx)
	out, err := in.Call(ctx, "sw_hooks", nil)
	if err != nil {
		return nil, fmt.Errorf("sw_hooks: %w", err)
	}
	var hooks []string
	if err := json.Unmarshal(out, &hooks); err != nil {
		return nil, fmt.Errorf("sw_hooks returned %q: %w", out, err)
	}
	return hooks, nil
}

// Uninstall removes a plugin with its state, grants and data everywhere.
func (h *Host) Uninstall(ctx context.Context, id string) error {
	if err := h.st.DeletePlugin(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownPlugin
		}
		return err
	}
	if err := h.policy.RemoveSubject(ctx, subject(id)); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(h.cfg.Dir, id)) //nolint:errcheck // the record is gone; leftovers are harmless
	h.log.Info("plugin uninstalled", "plugin", id)
	return h.rebuild(ctx)
}

func (h *Host) manifest(id string) (*Manifest, error) {
	l := h.snap.Load().plugins[id]
	if l == nil || l.m == nil {
		return nil, ErrUnknownPlugin
	}
	return l.m, nil
}

// ErrTrustRequired refuses to enable a process plugin without the admin's
// acknowledgement that it runs unsandboxed (TrustProcess).
var ErrTrustRequired = errors.New("plugin: this is a process plugin: it runs as a native process with the host's user, " +
	"not in the WebAssembly sandbox (it can read files, open connections and use any amount of memory); " +
	"enable it only if you trust its author, by acknowledging that (API: {\"trust_process\": true}; CLI: --trust-process)")

// EnableOption qualifies SetEnabled.
type EnableOption func(*enableOptions)

type enableOptions struct{ trustProcess bool }

// TrustProcess is the admin's acknowledgement that a process plugin runs
// unsandboxed; enabling one requires it.
func TrustProcess(trust bool) EnableOption {
	return func(o *enableOptions) { o.trustProcess = trust }
}

// SetEnabled enables or disables a plugin in a guild. Enabling also lifts a
// quarantine and resets the failure count. Enabling a process plugin needs
// TrustProcess(true).
func (h *Host) SetEnabled(ctx context.Context, pluginID, guildID string, enabled bool, opts ...EnableOption) error {
	m, err := h.manifest(pluginID)
	if err != nil {
		return err
	}
	var o enableOptions
	for _, opt := range opts {
		opt(&o)
	}
	if enabled && m.Runtime == RuntimeProcess {
		if !o.trustProcess {
			return ErrTrustRequired
		}
		h.log.Warn("process plugin enabled: the admin acknowledged that it runs unsandboxed", "plugin", pluginID, "guild", guildID)
	}
	if err := h.st.SetPluginEnabled(ctx, pluginID, guildID, enabled); err != nil {
		return err
	}
	h.resetFailures(pluginID, guildID)
	return h.rebuild(ctx)
}

// Configure sets a plugin's configuration in a guild after checking it
// against the manifest's config schema.
func (h *Host) Configure(ctx context.Context, pluginID, guildID string, config json.RawMessage) error {
	m, err := h.manifest(pluginID)
	if err != nil {
		return err
	}
	if err := m.ValidateConfig(config); err != nil {
		return &InstallError{Err: err}
	}
	if err := h.st.SetPluginConfig(ctx, pluginID, guildID, config); err != nil {
		return err
	}
	return h.rebuild(ctx)
}

// GrantRequest is one permission an admin grants. Hosts narrow http.fetch to
// some of the hosts the plugin asked for; empty grants all of them.
type GrantRequest struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts,omitempty"`
}

// Grant gives a plugin permissions in a guild. Only permissions the plugin
// asks for can be granted, and http.fetch only for hosts it asks for.
func (h *Host) Grant(ctx context.Context, pluginID, guildID string, reqs []GrantRequest, by string) error {
	m, err := h.manifest(pluginID)
	if err != nil {
		return err
	}
	var grants []store.PluginGrant
	for _, r := range reqs {
		asked, ok := m.Requested(r.Name)
		if !ok {
			return installErr("%s does not ask for %s; only requested permissions can be granted", pluginID, r.Name)
		}
		hosts := r.Hosts
		if r.Name == PermHTTPFetch {
			if len(hosts) == 0 {
				hosts = asked.Hosts
			}
			for _, host := range hosts {
				if !slices.Contains(asked.Hosts, host) {
					return installErr("%s does not ask to reach %s", pluginID, host)
				}
			}
		} else if len(hosts) > 0 {
			return installErr("only http.fetch takes hosts")
		}
		grants = append(grants, store.PluginGrant{Permission: r.Name, Hosts: hosts, GrantedBy: by})
	}
	// The policy decides; the store keeps what a policy cannot say (the
	// hosts of http.fetch, who granted and when) and moves the plugin state
	// version so every host rebuilds its picture.
	for _, g := range grants {
		if err := h.policy.Grant(ctx, subject(pluginID), guildID, g.Permission, useAction); err != nil {
			return err
		}
	}
	if err := h.st.GrantPlugin(ctx, pluginID, guildID, grants); err != nil {
		return err
	}
	h.log.Info("plugin permissions granted", "plugin", pluginID, "guild", guildID, "by", by, "permissions", names(reqs))
	return h.rebuild(ctx)
}

// GrantAll grants everything the plugin asks for.
func (h *Host) GrantAll(ctx context.Context, pluginID, guildID, by string) error {
	m, err := h.manifest(pluginID)
	if err != nil {
		return err
	}
	reqs := make([]GrantRequest, 0, len(m.Permissions))
	for _, p := range m.Permissions {
		reqs = append(reqs, GrantRequest{Name: p.Name})
	}
	return h.Grant(ctx, pluginID, guildID, reqs, by)
}

func names(reqs []GrantRequest) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Name
	}
	return out
}

// Revoke withdraws permissions (all of them when none are named). It takes
// effect on the plugin's next call.
func (h *Host) Revoke(ctx context.Context, pluginID, guildID string, perms []string) error {
	m, err := h.manifest(pluginID)
	if err != nil {
		return err
	}
	revoke := perms
	if len(revoke) == 0 {
		for _, p := range m.Permissions {
			revoke = append(revoke, p.Name)
		}
	}
	for _, p := range revoke {
		if _, err := h.policy.Revoke(ctx, subject(pluginID), guildID, p, useAction); err != nil {
			return err
		}
	}
	if err := h.st.RevokePlugin(ctx, pluginID, guildID, perms); err != nil {
		return err
	}
	h.log.Info("plugin permissions revoked", "plugin", pluginID, "guild", guildID, "permissions", perms)
	return h.rebuild(ctx)
}

// compareVersions orders two semantic versions (the manifest checked their
// form): -1, 0 or 1. A pre-release sorts before its release; pre-release
// identifiers compare numerically when both are numbers, else as text.
func compareVersions(a, b string) int {
	split := func(v string) (nums [3]int, pre string) {
		core, pre, _ := strings.Cut(v, "-")
		for i, p := range strings.SplitN(core, ".", 3) {
			nums[i], _ = strconv.Atoi(p)
		}
		return nums, pre
	}
	an, ap := split(a)
	bn, bp := split(b)
	for i := range an {
		if c := cmp.Compare(an[i], bn[i]); c != 0 {
			return c
		}
	}
	switch {
	case ap == bp:
		return 0
	case ap == "":
		return 1
	case bp == "":
		return -1
	}
	as, bs := strings.Split(ap, "."), strings.Split(bp, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errx := strconv.Atoi(as[i])
		y, erry := strconv.Atoi(bs[i])
		var c int
		switch {
		case errx == nil && erry == nil:
			c = cmp.Compare(x, y)
		case errx == nil:
			c = -1 // numeric identifiers sort before alphanumeric ones
		case erry == nil:
			c = 1
		default:
			c = strings.Compare(as[i], bs[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(as), len(bs))
}
