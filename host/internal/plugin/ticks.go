package plugin

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Ticks driven from outside: with Config.ExternalTicks set the host runs
// no ticks of its own, and the job runner (host/internal/jobs) calls Tick
// for the targets TickTargets lists, under a lease per plugin and guild, so
// that two instances never tick the same plugin in the same guild at once.

// TickTarget is one plugin in one guild whose tick hook runs periodically.
type TickTarget struct {
	Plugin, Guild string
	Every         time.Duration
}

// Key is the target's name in leases and logs: "plugin/guild".
func (t TickTarget) Key() string { return t.Plugin + "/" + t.Guild }

// SplitTickKey undoes TickTarget.Key.
func SplitTickKey(key string) (pluginID, guild string, ok bool) {
	i := strings.LastIndexByte(key, '/')
	if i <= 0 || i == len(key)-1 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// TickTargets lists every plugin with a tick hook and every guild where it
// runs, sorted by key.
func (h *Host) TickTargets() []TickTarget {
	snap := h.snap.Load()
	var out []TickTarget
	for guild, ids := range snap.byGuild {
		for _, id := range ids {
			l := snap.plugins[id]
			if l == nil || l.m == nil || !l.m.Has(HookTick) {
				continue
			}
			out = append(out, TickTarget{Plugin: id, Guild: guild, Every: time.Duration(l.m.TickSeconds) * time.Second})
		}
	}
	slices.SortFunc(out, func(a, b TickTarget) int { return strings.Compare(a.Key(), b.Key()) })
	return out
}

// Tick calls the tick hook of pluginID in guild with the time now. It
// returns ErrNotRunnable when the plugin no longer runs there; failures
// count towards quarantine as for every call.
func (h *Host) Tick(ctx context.Context, pluginID, guild string, now time.Time) error {
	in, err := json.Marshal(map[string]any{"now": now.UTC()})
	if err != nil {
		return err
	}
	_, err = h.call(ctx, pluginID, guild, HookTick, in)
	return err
}
