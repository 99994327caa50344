package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"os"
	"path/filepath"
	"sort"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// InstallPluginsDir installs, or upgrades, every plugin of dir: each
// subdirectory holding a plugin.json (what `make plugins` writes to
// bin/plugins/). A plugin already installed at the same version and
// checksum is left alone; one at the same version with other code is
// refused (its version must be raised) and logged. It returns the IDs of
// the plugins dir holds that are installed afterwards. A plugin that cannot
// be installed is logged and skipped: the host still starts.
func (a *App) InstallPluginsDir(ctx context.Context, dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugins dir: %w", err)
	}
	var ids []string
	for _, e := range entries {
		sub := filepath.Join(dir, e.Name())
		raw, err := os.ReadFile(filepath.Join(sub, "plugin.json"))
		if !e.IsDir() || errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("plugins dir: %w", err)
		}
		var m struct {
			ID       string `json:"id"`
			Version  string `json:"version"`
			Artifact struct {
				SHA256 string `json:"sha256"`
			} `json:"artifact"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			a.log.Error("plugin not installed: bad manifest", "dir", sub, "err", err)
			continue
		}
		if cur, err := a.Store.GetPlugin(ctx, m.ID); err == nil && cur.Version == m.Version {
			if cur.SHA256 != m.Artifact.SHA256 {
				a.log.Warn("plugin in the plugins dir differs from the installed one of the same version; raise its version to upgrade",
					"plugin", m.ID, "version", m.Version, "dir", sub)
			}
			ids = append(ids, m.ID)
			continue
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		res, err := a.Plugins.InstallDir(ctx, sub)
		if err != nil {
			a.log.Error("plugin not installed", "dir", sub, "err", err)
			continue
		}
		a.log.Info("plugin installed from the plugins dir", "plugin", m.ID, "version", m.Version, "previous", res.Previous,
			"new_permissions", res.NewPermissions)
		ids = append(ids, m.ID)
	}
	sort.Strings(ids)
	return ids, nil
}

// EnablePlugins enables the plugins in a guild and grants them what they
// ask for, the first time only: a plugin that has a state in the guild
// already (an admin enabled, disabled or configured it) is left as it is.
// Used for the simulated demo guild, never for real ones.
func (a *App) EnablePlugins(ctx context.Context, guildID string, ids []string, by string) error {
	for _, id := range ids {
		states, err := a.Store.ListPluginGuilds(ctx, id, guildID)
		if err != nil {
			return err
		}
		if len(states) > 0 {
			continue
		}
		if err := a.Plugins.GrantAll(ctx, id, guildID, by); err != nil {
			return fmt.Errorf("grant %s: %w", id, err)
		}
		// The operator chose these plugins with --plugins-dir (first-party
		// ones under make run): that is the trust a process plugin needs.
		if err := a.Plugins.SetEnabled(ctx, id, guildID, true, plugin.TrustProcess(true)); err != nil {
			return fmt.Errorf("enable %s: %w", id, err)
		}
		a.log.Info("plugin enabled and granted in the simulated guild", "plugin", id, "guild", guildID)
	}
	return nil
}
