package plugin

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/safehttp"
)

// TestExternalTicks: the job runner's view of ticks — the targets listed,
// and Tick reaching the plugin.
func TestExternalTicks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if got := f.h.TickTargets(); len(got) != 0 {
		t.Fatalf("targets before install: %v", got)
	}
	f.install("counter", "1.0.0", "good", func(m *Manifest) { m.TickSeconds = 10 })
	f.enableAll("counter", guildA)
	got := f.h.TickTargets()
	if len(got) != 1 || got[0].Plugin != "counter" || got[0].Guild != guildA || got[0].Every != 10*time.Second {
		t.Fatalf("targets = %+v", got)
	}
	p, g, ok := SplitTickKey(got[0].Key())
	if !ok || p != "counter" || g != guildA {
		t.Fatalf("SplitTickKey(%q) = %q %q %v", got[0].Key(), p, g, ok)
	}
	for i := 0; i < 2; i++ {
		if err := f.h.Tick(ctx, "counter", guildA, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := f.st.KVGet(ctx, "counter", guildA, "ticks"); string(v) != "2" {
		t.Fatalf("ticks kv = %q, want 2", v)
	}
	if err := f.h.Tick(ctx, "counter", "999", time.Now()); err == nil {
		t.Fatal("tick in a guild where the plugin is not enabled")
	}
	for _, bad := range []string{"", "x", "x/", "/1"} {
		if _, _, ok := SplitTickKey(bad); ok {
			t.Errorf("SplitTickKey(%q) accepted", bad)
		}
	}
}

// TestArtifactFromAnotherInstance: a second host instance sharing the
// database but not the data directory loads and runs a plugin installed
// through the first (its code comes from the database).
func TestArtifactFromAnotherInstance(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.install("counter", "1.0.0", "good", func(m *Manifest) { m.TickSeconds = 10 })
	f.enableAll("counter", guildA)
	other, err := New(ctx, Config{Dir: filepath.Join(t.TempDir(), "plugins"), CacheDir: filepath.Join(guestCacheDir(t), "cache")},
		f.st, f.enf, safehttp.New(safehttp.Options{}), f.bus, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Tick(ctx, "counter", guildA, time.Now()); err != nil {
		t.Fatalf("tick on the other instance: %v", err)
	}
	if v, _ := f.st.KVGet(ctx, "counter", guildA, "ticks"); string(v) != "1" {
		t.Fatalf("ticks kv = %q, want 1", v)
	}
}
