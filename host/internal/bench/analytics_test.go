package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest/simulate"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
)

// BenchmarkAnalyticsQueries fills a guild up to SPYWATCHER_BENCH_TOTAL
// events (default 10 million; kept in SPYWATCHER_BENCH_REUSE as
// bench-analytics.db or the schema bench_analytics when set) and measures
// the heatmap and role drift routes through the HTTP handler: guild and
// member heatmaps of each metric over 7 to 90 days in a few time zones, and
// role drift of the guild or a member over 1 to 90 days.
func BenchmarkAnalyticsQueries(b *testing.B) {
	total := envInt("SPYWATCHER_BENCH_TOTAL", 10_000_000)
	members := envInt("SPYWATCHER_BENCH_MEMBERS", 10_000)
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			for b.Loop() {
				benchAnalytics(b, tg, total, members)
			}
		})
	}
}

func benchAnalytics(b *testing.B, tg target, total, members int) {
	ctx := context.Background()
	dsn := ""
	if dir := os.Getenv("SPYWATCHER_BENCH_REUSE"); dir != "" {
		if tg.name == "sqlite" {
			dsn = filepath.Join(dir, "bench-analytics.db")
		} else {
			dsn = storetest.PostgresSchemaDSN(b, os.Getenv(storetest.PostgresEnv), "bench_analytics")
		}
	} else {
		dsn = tg.dsn(b)
	}
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	epoch := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	cfg := simulate.Config{Seed: 11, Members: members, Epoch: epoch}
	sim, err := simulate.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	guild := sim.Truth().GuildID
	from := epoch
	stored := 0
	if latest, err := st.LatestEventAt(ctx, guild); err == nil && !latest.IsZero() {
		stored = countEvents(b, st, guild)
		from = latest.Add(time.Millisecond)
		b.Logf("%s: reusing %d stored events", tg.name, stored)
	}
	start := time.Now()
	for stored < total {
		sim, _ = simulate.New(cfg)
		evs, next := generate(b, sim, from, min(1_000_000, total-stored))
		ingest(b, st, evs)
		stored += len(evs)
		from = next
		b.Logf("%s: %d/%d events stored (%s)", tg.name, stored, total, time.Since(start).Round(time.Second))
	}
	end := from
	if err := st.EnsureGuildTimezone(ctx, guild, epoch, "America/New_York"); err != nil {
		b.Fatal(err)
	}
	h := adminRouter(b, st, end)
	page, err := st.ListMembers(ctx, guild, store.MemberQuery{Limit: 500, Sort: "messages", Desc: true})
	if err != nil || len(page.Members) == 0 {
		b.Fatalf("no members: %v", err)
	}
	var ids []string
	for _, m := range page.Members {
		ids = append(ids, m.UserID)
	}
	span, err := st.CountEvents(ctx, guild)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	days := []int{1, 7, 30, 90}
	window := func() string {
		d := days[rng.IntN(len(days))]
		return fmt.Sprintf("from=%s&to=%s", end.Add(-time.Duration(d)*24*time.Hour).Format(time.RFC3339), end.Format(time.RFC3339))
	}
	call := func(path string) time.Duration {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+benchToken)
		w := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(w, req)
		d := time.Since(t0)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		return d
	}
	g := "/api/v1/guilds/" + guild
	heatmap := func() string {
		p := g + "/analytics/heatmap?" + window() + "&metric=" + []string{"messages", "presence", "typing"}[rng.IntN(3)] +
			"&tz=" + []string{"", "Europe/Paris", "Asia/Kolkata"}[rng.IntN(3)]
		if rng.IntN(2) == 0 {
			p += "&user=" + ids[rng.IntN(len(ids))]
		}
		return p
	}
	roles := func() string {
		p := g + "/analytics/roles?" + window() + "&limit=100"
		if rng.IntN(2) == 0 {
			p += "&user=" + ids[rng.IntN(len(ids))]
		}
		return p
	}
	presence := func() string {
		p := g + "/analytics/presence?" + window()
		if rng.IntN(2) == 0 {
			p += "&user=" + ids[rng.IntN(len(ids))]
		}
		return p
	}
	for _, q := range []struct {
		name string
		path func() string
	}{{"heatmap", heatmap}, {"role drift", roles}, {"presence days", presence}} {
		for range 20 {
			call(q.path())
		}
		var all []time.Duration
		byShape := map[string][]time.Duration{}
		for range 1000 {
			p := q.path()
			d := call(p)
			all = append(all, d)
			k := "guild"
			if strings.Contains(p, "user=") {
				k = "member"
			}
			byShape[k] = append(byShape[k], d)
		}
		p50, p99 := percentiles(all)
		b.ReportMetric(float64(p99.Microseconds())/1000, strings.ReplaceAll(q.name, " ", "_")+"_p99_ms")
		fmt.Fprintf(os.Stderr, "%s: %s over %d members and %d events: p50 %s, p99 %s\n", tg.name, q.name, members, span, p50, p99)
		for _, k := range []string{"guild", "member"} {
			p50, p99 := percentiles(byShape[k])
			fmt.Fprintf(os.Stderr, "%s: %s     %-7s n=%-4d p50 %-10s p99 %s\n", tg.name, q.name, k, len(byShape[k]), p50, p99)
		}
	}
}
