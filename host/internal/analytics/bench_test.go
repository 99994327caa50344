package analytics_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// syntheticStore is the real store for everything but the members to
// score, which it makes up: the benchmark measures scoring, not ingest.
type syntheticStore struct {
	*store.Store
	members []*store.ScoringMember
}

func (s *syntheticStore) ScoringMembers(context.Context, string, time.Time, time.Time, time.Time) ([]*store.ScoringMember, error) {
	return s.members, nil
}

// synthetic makes n members with varied statistics, deterministically.
func synthetic(n int, end time.Time) []*store.ScoringMember {
	rng := rand.New(rand.NewPCG(4, 2))
	out := make([]*store.ScoringMember, n)
	hour := end.UnixMilli() - end.UnixMilli()%3600000
	for i := range out {
		online := rng.Int64N(60 * 3600000)
		msgs := rng.Int64N(40)
		m := &store.ScoringMember{
			UserID: strconv.FormatInt(80351110224678912+int64(i), 10), Name: fmt.Sprintf("member %d", i),
			AccountCreated: end.Add(-time.Duration(rng.IntN(2000)) * 24 * time.Hour),
			JoinedAt:       end.Add(-time.Duration(rng.IntN(500)) * 24 * time.Hour).UnixMilli(),
			MessagesTotal:  msgs * 10, OnlineMS: online, MultiMS: online / int64(1+rng.IntN(10)),
			DesktopMS: online / 2, MobileMS: online / 3, WebMS: online / 5,
			Gaps: max(0, msgs-1), GapSum: float64(msgs) * 600, GapSumSq: float64(msgs) * 600 * 900,
			PeakPerMinute: rng.Int64N(5), Channels: rng.Int64N(6), RoleChanges: rng.Int64N(3),
		}
		if msgs > 0 {
			m.FirstMessageAt = m.JoinedAt + rng.Int64N(86400000)
			m.LastMessageAt = end.UnixMilli() - rng.Int64N(3*86400000)
			m.MessageHours = map[int64]int64{}
			for j := int64(0); j < msgs; j++ {
				m.MessageHours[hour-rng.Int64N(72)*3600000]++
			}
		}
		out[i] = m
	}
	return out
}

// BenchmarkScoring scores SPYWATCHER_BENCH_SCORE_MEMBERS (default 100,000)
// members with the three first-party WebAssembly scorers through the whole
// scoring path: statistics, batched score calls (GOMAXPROCS at once),
// output validation, storing scores and history in SQLite, publishing.
func BenchmarkScoring(b *testing.B) {
	n := envInt("SPYWATCHER_BENCH_SCORE_MEMBERS", 100_000)
	batch := envInt("SPYWATCHER_BENCH_SCORE_BATCH", 500)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "score.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const guild = "41771983423143937"
	end := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	if err := st.EnsureGuildTimezone(ctx, guild, end.Add(-30*24*time.Hour), "Europe/Paris"); err != nil {
		b.Fatal(err)
	}
	enf, err := authz.New(ctx, st, authz.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer enf.Close()
	h, err := plugin.New(ctx, plugin.Config{Dir: filepath.Join(b.TempDir(), "plugins"), CacheDir: filepath.Join(guesttest.Dir(b), "cache")},
		st, enf, safehttp.New(safehttp.Options{}), bus.NewLocal(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	installScorers(b, h, guild)
	ss := &syntheticStore{Store: st, members: synthetic(n, end)}
	sc := analytics.NewScoring(analytics.ScoringConfig{BatchSize: batch, Parallel: envInt("SPYWATCHER_BENCH_SCORE_PARALLEL", 0),
		Now: func() time.Time { return end }}, ss, h, bus.NewLocal())
	// Warm up: instances created, code compiled.
	warm := &syntheticStore{Store: st, members: ss.members[:batch]}
	if _, err := analytics.NewScoring(analytics.ScoringConfig{BatchSize: batch, Now: func() time.Time { return end }}, warm, h, nil).
		RunGuild(ctx, guild, "schedule"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		start := time.Now()
		runs, err := sc.RunGuild(ctx, guild, "schedule")
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		for _, r := range runs {
			if r.Error != "" || r.Members != n {
				b.Fatalf("%s: %d members, %q", r.Scorer, r.Members, r.Error)
			}
		}
		b.ReportMetric(took.Seconds(), "s/guild")
		b.ReportMetric(float64(3*n)/took.Seconds(), "member-scores/s")
		b.Logf("%d members × 3 scorers, batches of %d, %d at once: %s", n, batch, sc.Parallel(), took.Round(time.Millisecond))
	}
}
