package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestPluginKVQuota checks the quota against what is stored: overwrites
// count only their growth, deletes free room, guilds and plugins are
// counted apart, and a cached total that goes stale is recomputed.
func TestPluginKVQuota(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store, clk *clock) {
		ctx := context.Background()
		const quota = 100
		set := func(plugin, guild, key string, n int) error {
			return s.KVSet(ctx, plugin, guild, key, "", make([]byte, n), quota)
		}
		// Five entries of 2 + 18 bytes fill the quota exactly.
		for i := 0; i < 5; i++ {
			if err := set("p", guild, fmt.Sprintf("k%d", i), 18); err != nil {
				t.Fatal(err)
			}
		}
		if err := set("p", guild, "k5", 1); !errors.Is(err, ErrQuota) {
			t.Fatalf("write beyond the quota: %v", err)
		}
		if err := set("p", guild, "k0", 18); err != nil {
			t.Fatalf("an overwrite of the same size must fit: %v", err)
		}
		if err := set("p", guild, "k0", 19); !errors.Is(err, ErrQuota) {
			t.Fatalf("an overwrite that grows beyond the quota: %v", err)
		}
		if err := set("p", guild2, "k0", 98); err != nil {
			t.Fatalf("another guild has its own quota: %v", err)
		}
		if err := set("q", guild, "k0", 98); err != nil {
			t.Fatalf("another plugin has its own quota: %v", err)
		}
		if err := s.KVDelete(ctx, "p", guild, "k1"); err != nil {
			t.Fatal(err)
		}
		if err := s.KVDelete(ctx, "p", guild, "absent"); err != nil {
			t.Fatalf("deleting an absent key: %v", err)
		}
		if err := set("p", guild, "k5", 18); err != nil {
			t.Fatalf("a delete must free room: %v", err)
		}
		if used, err := s.KVUsage(ctx, "p", guild); err != nil || used != 100 {
			t.Fatalf("usage %d %v, want 100", used, err)
		}
		// Rows removed behind the cache's back (another process) are seen
		// once the cached total is recomputed.
		if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM plugin_kv WHERE plugin_id = ? AND guild_id = ?`), "p", guild); err != nil {
			t.Fatal(err)
		}
		if err := set("p", guild, "k9", 98); !errors.Is(err, ErrQuota) {
			t.Fatalf("within the cache's lifetime the old total holds: %v", err)
		}
		clk.t = clk.t.Add(kvUsageTTL + time.Second)
		if err := set("p", guild, "k9", 98); err != nil {
			t.Fatalf("after recomputing: %v", err)
		}
		// Uninstalling forgets the plugin's totals with its data.
		if err := s.PutPlugin(ctx, InstalledPlugin{ID: "p", Version: "1.0.0", SHA256: "x", Manifest: []byte(`{}`)}); err != nil {
			t.Skipf("cannot register a plugin row here: %v", err)
		}
		if err := s.DeletePlugin(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		if err := set("p", guild, "k0", 98); err != nil {
			t.Fatalf("after uninstall: %v", err)
		}
	})
}
