// Package bench holds the host's end-to-end benchmarks, run by `make bench`.
// They need no services; the PostgreSQL half runs when
// SPYWATCHER_TEST_POSTGRES_URL names a database. Sizes come from the
// environment so that a quick run and the full measurement use one code path:
//
//	SPYWATCHER_BENCH_EVENTS    events in the ingest measurement (default 1,000,000)
//	SPYWATCHER_BENCH_TOTAL     events stored before the API latency measurement (default 10,000,000)
//	SPYWATCHER_BENCH_MEMBERS   members of the simulated guild (default 10,000)
//	SPYWATCHER_BENCH_DIALECTS  comma-separated subset of sqlite,postgres
//	SPYWATCHER_BENCH_REUSE     a directory: keep the BenchmarkAPI dataset there (SQLite) or in
//	                           the schema bench_reuse (PostgreSQL) and reuse it on the next run
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/api"
	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/ingest/simulate"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type target struct {
	name string
	dsn  func(b *testing.B) string
}

func targets(b *testing.B) []target {
	want := os.Getenv("SPYWATCHER_BENCH_DIALECTS")
	on := func(n string) bool { return want == "" || slices.Contains(strings.Split(want, ","), n) }
	var ts []target
	if on("sqlite") {
		ts = append(ts, target{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "bench.db") }})
	}
	if pg := os.Getenv(storetest.PostgresEnv); pg != "" && on("postgres") {
		ts = append(ts, target{"postgres", func(b *testing.B) string { return storetest.PostgresDSN(b, pg) }})
	} else if on("postgres") {
		b.Log("SPYWATCHER_TEST_POSTGRES_URL not set: skipping PostgreSQL")
	}
	return ts
}

var errEnough = errors.New("enough events")

// generate returns n simulated events of a guild of members, starting at
// from, and the time just after the last one.
func generate(b *testing.B, sim *simulate.Simulator, from time.Time, n int) ([]event.Event, time.Time) {
	b.Helper()
	evs := make([]event.Event, 0, n)
	err := sim.Generate(context.Background(), from, from.Add(365*24*time.Hour), func(ev event.Event) error {
		if len(evs) == n {
			return errEnough
		}
		evs = append(evs, ev)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		b.Fatal(err)
	}
	return evs, evs[len(evs)-1].At.Add(time.Millisecond)
}

// ingest pushes evs through a fresh pipeline into st and returns the
// wall-clock time until the last one is stored. It measures capacity, not
// load shedding: a presence update the pipeline sheds is offered again after
// a pause, as a source under backpressure would, and the benchmark fails
// unless every event was stored.
func ingest(b *testing.B, st *store.Store, evs []event.Event) time.Duration {
	b.Helper()
	reg := prometheus.NewRegistry()
	writers := 1
	if st.Dialect() == store.Postgres {
		writers = 3 // as serve picks by default
	}
	if n := envInt("SPYWATCHER_BENCH_WRITERS", 0); n > 0 {
		writers = n
	}
	// SPYWATCHER_BENCH_BATCH overrides the batch size (0: the pipeline's default).
	p, err := pipeline.New(pipeline.Config{MaxFuture: 100 * 365 * 24 * time.Hour, Writers: writers,
		BatchSize: envInt("SPYWATCHER_BENCH_BATCH", 0)}, st, bus.NewLocal(), reg)
	if err != nil {
		b.Fatal(err)
	}
	return ingestWith(b, p, reg, evs)
}

// ingestWith runs p over evs (see ingest) and checks the stored count.
func ingestWith(b *testing.B, p *pipeline.Pipeline, reg *prometheus.Registry, evs []event.Event) time.Duration {
	b.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(context.Background()) }()
	ctx := context.Background()
	for _, ev := range evs {
		for {
			out, err := p.Offer(ctx, ev)
			if err != nil {
				b.Fatal(err)
			}
			if out != pipeline.Shed {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	p.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	if stored := sumCounter(reg, "spywatcher_pipeline_events_stored_total"); int(stored) != len(evs) {
		b.Fatalf("stored %.0f of %d events", stored, len(evs))
	}
	return took
}

func presenceShare(evs []event.Event) float64 {
	n := 0
	for i := range evs {
		if evs[i].Kind == event.KindPresenceUpdate {
			n++
		}
	}
	return float64(n) / float64(len(evs))
}

// BenchmarkIngest measures end-to-end ingest — validate, dedup, queue,
// batch, store with every derived table — of a simulated mixed stream.
func BenchmarkIngest(b *testing.B) {
	n := envInt("SPYWATCHER_BENCH_EVENTS", 1_000_000)
	members := envInt("SPYWATCHER_BENCH_MEMBERS", 10_000)
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			for b.Loop() {
				sim, err := simulate.New(simulate.Config{Seed: 7, Members: members})
				if err != nil {
					b.Fatal(err)
				}
				evs, _ := generate(b, sim, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), n)
				st, err := store.Open(context.Background(), tg.dsn(b), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				took := ingest(b, st, evs)
				st.Close()
				b.ReportMetric(float64(len(evs))/took.Seconds(), "events/s")
				b.ReportMetric(presenceShare(evs)*100, "%presence")
				b.Logf("%s: %d events (%.0f%% presence) of %d members in %s: %.0f events/s",
					tg.name, len(evs), presenceShare(evs)*100, members, took.Round(time.Millisecond), float64(len(evs))/took.Seconds())
			}
		})
	}
}

// BenchmarkAPI fills a guild up to SPYWATCHER_BENCH_TOTAL stored events and
// measures member list and member profile latency through the HTTP handler
// (routing, auth, queries and JSON included; no network).
func BenchmarkAPI(b *testing.B) {
	total := envInt("SPYWATCHER_BENCH_TOTAL", 10_000_000)
	members := envInt("SPYWATCHER_BENCH_MEMBERS", 10_000)
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			for b.Loop() {
				benchAPI(b, tg, total, members)
			}
		})
	}
}

// reusableDSN returns where a kept dataset lives, or "" when not reusing.
func reusableDSN(b *testing.B, tg target) string {
	dir := os.Getenv("SPYWATCHER_BENCH_REUSE")
	if dir == "" {
		return ""
	}
	if tg.name == "sqlite" {
		return filepath.Join(dir, "bench-api.db")
	}
	return storetest.PostgresSchemaDSN(b, os.Getenv(storetest.PostgresEnv), "bench_reuse")
}

func countEvents(b *testing.B, st *store.Store, guild string) int {
	n, err := st.CountEvents(context.Background(), guild)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func benchAPI(b *testing.B, tg target, total, members int) {
	ctx := context.Background()
	dsn := reusableDSN(b, tg)
	if dsn == "" {
		dsn = tg.dsn(b)
	}
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sim, err := simulate.New(simulate.Config{Seed: 11, Members: members})
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	const chunk = 1_000_000
	stored := 0
	if latest, err := st.LatestEventAt(ctx, sim.Truth().GuildID); err == nil && !latest.IsZero() {
		stored = countEvents(b, st, sim.Truth().GuildID)
		from = latest.Add(time.Millisecond)
		b.Logf("%s: reusing %d stored events", tg.name, stored)
		sim, _ = simulate.New(simulate.Config{Seed: 11, Members: members, Epoch: time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)})
	}
	for stored < total {
		evs, next := generate(b, sim, from, min(chunk, total-stored))
		ingest(b, st, evs)
		stored += len(evs)
		from = next
		b.Logf("%s: %d/%d events stored (%s)", tg.name, stored, total, time.Since(start).Round(time.Second))
		// Each Generate call starts the world afresh at from; later chunks
		// reuse the same roster because the simulator is pinned by its seed
		// and the first window's epoch.
		sim, _ = simulate.New(simulate.Config{Seed: 11, Members: members, Epoch: time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)})
	}
	guild := sim.Truth().GuildID
	h := adminRouter(b, st, from)
	page, err := st.ListMembers(ctx, guild, store.MemberQuery{Limit: 500, Sort: "messages", Desc: true})
	if err != nil || len(page.Members) == 0 {
		b.Fatalf("no members: %v", err)
	}
	var ids []string
	for _, m := range page.Members {
		ids = append(ids, m.UserID)
	}
	rng := rand.New(rand.NewPCG(1, 2))
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
	sorts := store.MemberSorts
	list := func() string {
		p := fmt.Sprintf("/api/v1/guilds/%s/members?limit=50&sort=%s&order=%s", guild, sorts[rng.IntN(len(sorts))], []string{"asc", "desc"}[rng.IntN(2)])
		switch rng.IntN(4) {
		case 0:
			p += "&q=" + string(rune('a'+rng.IntN(26)))
		case 1:
			p += "&status=online"
		}
		return p
	}
	profile := func() string {
		return fmt.Sprintf("/api/v1/guilds/%s/members/%s?window=7d", guild, ids[rng.IntN(len(ids))])
	}
	for _, q := range []struct {
		name string
		path func() string
	}{{"member list", list}, {"member profile", profile}} {
		for range 20 { // warm caches
			call(q.path())
		}
		var ds []time.Duration
		byShape := map[string][]time.Duration{}
		for range 1000 {
			p := q.path()
			d := call(p)
			ds = append(ds, d)
			byShape[shape(p)] = append(byShape[shape(p)], d)
		}
		p50, p99 := percentiles(ds)
		b.ReportMetric(float64(p99.Microseconds())/1000, strings.ReplaceAll(q.name, " ", "_")+"_p99_ms")
		b.Logf("%s: %s over %d members and %d events: p50 %s, p99 %s", tg.name, q.name, members, total, p50, p99)
		if q.name == "member list" {
			shapes := make([]string, 0, len(byShape))
			for k := range byShape {
				shapes = append(shapes, k)
			}
			slices.Sort(shapes)
			for _, k := range shapes {
				p50, p99 := percentiles(byShape[k])
				fmt.Fprintf(os.Stderr, "%s:     %-40s n=%-4d p50 %-10s p99 %s\n", tg.name, k, len(byShape[k]), p50, p99)
			}
		}
	}
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
}

// shape names a member-list request by its sort and filters, without values.
func shape(path string) string {
	_, q, _ := strings.Cut(path, "?")
	var parts []string
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "sort", "order", "status":
			parts = append(parts, k+"="+v)
		case "q":
			parts = append(parts, "q")
		}
	}
	return strings.Join(parts, " ")
}

// benchToken is the admin token the benchmarks' requests carry.
const benchToken = "bench-admin-token-0123456789"

// adminRouter is the API router over st, with benchToken an admin token
// and the clock stopped at now.
func adminRouter(b *testing.B, st *store.Store, now time.Time) http.Handler {
	b.Helper()
	ctx := context.Background()
	if _, err := auth.EnsureAdminToken(ctx, st, benchToken); err != nil {
		b.Fatal(err)
	}
	enf, err := authz.New(ctx, st, authz.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { enf.Close() })
	h, err := api.Router(api.Deps{Store: st, Auth: auth.NewAuthenticator(st), Authz: enf, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	return h
}
