package analytics_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/analytics"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

var batchN = envInt("PROBE_N", 500)

func TestProbeCall(t *testing.T) {
	ctx := context.Background()
	st, _ := store.Open(ctx, filepath.Join(t.TempDir(), "score.db"), store.Options{})
	const guild = "41771983423143937"
	end := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	enf, _ := authz.New(ctx, st, authz.Options{})
	h, _ := plugin.New(ctx, plugin.Config{Dir: filepath.Join(t.TempDir(), "plugins"), CacheDir: filepath.Join(guesttest.Dir(t), "cache")},
		st, enf, safehttp.New(safehttp.Options{}), bus.NewLocal(), prometheus.NewRegistry())
	installScorers(t, h, guild)
	ms := synthetic(batchN, end)
	stats := make([]sdk.MemberStats, len(ms))
	for i, m := range ms {
		stats[i] = analytics.MemberStats(m, end, time.UTC)
	}
	req := sdk.ScoreRequest{GuildID: guild, From: end.Add(-time.Hour), To: end, Members: stats}
	for _, id := range Scorers {
		var best time.Duration
		for i := range 8 {
			t0 := time.Now()
			if _, err := h.Score(ctx, id, guild, req); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); i == 0 || d < best {
				best = d
			}
		}
		t.Logf("%s: 500 members, best of 8: %s", id, best)
	}
}
