package analytics_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/analytics"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/ingest/simulate"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

func TestMain(m *testing.M) {
	code := m.Run()
	guesttest.Cleanup()
	os.Exit(code)
}

// Scorers are the first-party scorer plugins, as built by make plugins.
var Scorers = []string{"ghost-score", "lurker-score", "suspicion-score"}

// repoRoot is the repository root, from this file's location.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

var shaField = regexp.MustCompile(`"sha256": *"[0-9a-f]*"`)

// installScorers builds the first-party scorers from plugins/ with the Go
// toolchain (as make plugins does), installs them, and enables and grants
// them in guild.
func installScorers(t testing.TB, h *plugin.Host, guild string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range Scorers {
		code := guesttest.Build(t, "plugins/"+id)
		raw, err := os.ReadFile(filepath.Join(repoRoot(), "plugins", id, "plugin.json"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(code)
		manifest := shaField.ReplaceAll(raw, []byte(`"sha256": "`+hex.EncodeToString(sum[:])+`"`))
		if _, err := h.Install(ctx, manifest, code); err != nil {
			t.Fatal(err)
		}
		if err := h.GrantAll(ctx, id, guild, "test"); err != nil {
			t.Fatal(err)
		}
		if err := h.SetEnabled(ctx, id, guild, true); err != nil {
			t.Fatal(err)
		}
	}
}

// world is a store filled by the simulator, with the scorers installed.
type world struct {
	st    *store.Store
	host  *plugin.Host
	truth simulate.Truth
	end   time.Time
}

func newWorld(t testing.TB, dsn string, members int, span time.Duration) *world {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sim, err := simulate.New(simulate.Config{Seed: 3, Members: members})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	end := from.Add(span)
	batch := make([]event.Event, 0, 4096)
	flush := func() error {
		if _, err := st.Ingest(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	err = sim.Generate(ctx, from, end, func(ev event.Event) error {
		batch = append(batch, ev)
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	enf, err := authz.New(ctx, st, authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enf.Close() })
	h, err := plugin.New(ctx, plugin.Config{Dir: filepath.Join(t.TempDir(), "plugins"), CacheDir: filepath.Join(guesttest.Dir(t), "cache")},
		st, enf, safehttp.New(safehttp.Options{}), bus.NewLocal(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	truth := sim.Truth()
	installScorers(t, h, truth.GuildID)
	return &world{st: st, host: h, truth: truth, end: end}
}

// ranking returns a scorer's scores, highest first.
func ranking(t testing.TB, st *store.Store, guild, scorer string) []store.MemberScore {
	t.Helper()
	var all []store.MemberScore
	cursor := ""
	for {
		page, err := st.RankedScores(context.Background(), guild, scorer, 500, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Items...)
		if cursor = page.Next; cursor == "" {
			return all
		}
	}
}

// quality measures how a ranking finds the members of some archetypes:
// precision at k (k = how many there are) and the chance that one of them
// scores above an ordinary member (chatty or regular; AUC, ties half).
func quality(rank []store.MemberScore, truth map[string]simulate.Archetype, target ...simulate.Archetype) (k int, precision, auc float64) {
	is := func(u string) bool {
		for _, a := range target {
			if truth[u] == a {
				return true
			}
		}
		return false
	}
	ordinary := func(u string) bool { return truth[u] == simulate.Chatty || truth[u] == simulate.Regular }
	var pos, neg []float64
	for _, s := range rank {
		switch {
		case is(s.UserID):
			pos = append(pos, s.Score)
		case ordinary(s.UserID):
			neg = append(neg, s.Score)
		}
	}
	k = len(pos)
	hits := 0
	for i := 0; i < k && i < len(rank); i++ {
		if is(rank[i].UserID) {
			hits++
		}
	}
	if k > 0 {
		precision = float64(hits) / float64(k)
	}
	wins := 0.0
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				wins++
			case p == n:
				wins += 0.5
			}
		}
	}
	if len(pos) > 0 && len(neg) > 0 {
		auc = wins / float64(len(pos)*len(neg))
	}
	return k, precision, auc
}

// TestScorersFindTheirArchetypes runs the real WebAssembly scorers on three
// simulated days of a 400-member guild and checks each ranks the members
// the simulator gave its archetype above ordinary members. Precision at k
// is logged (and reported in BENCHMARKS.md).
func TestScorersFindTheirArchetypes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three WebAssembly plugins and simulates three days")
	}
	w := newWorld(t, filepath.Join(t.TempDir(), "sim.db"), 400, 72*time.Hour)
	pub := &recorder{}
	sc := analytics.NewScoring(analytics.ScoringConfig{Window: 72 * time.Hour, BatchSize: 64, Now: func() time.Time { return w.end }},
		w.st, w.host, pub)
	runs, err := sc.RunGuild(context.Background(), w.truth.GuildID, "request")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Error != "" || r.Members == 0 {
			t.Fatalf("run %s: %d members, error %q", r.Scorer, r.Members, r.Error)
		}
	}
	if got := pub.count(); got != 3*runs[0].Members {
		t.Fatalf("published %d score updates, want %d", got, 3*runs[0].Members)
	}
	cases := []struct {
		scorer  string
		targets []simulate.Archetype
		minAUC  float64
		minPrec float64
	}{
		// Ghosts never post either, and are online longer: they lead the
		// lurker ranking, so lurker precision is measured with them too.
		{"ghost-score", []simulate.Archetype{simulate.Ghost}, 0.98, 0.85},
		{"lurker-score", []simulate.Archetype{simulate.Lurker}, 0.95, 0},
		{"lurker-score", []simulate.Archetype{simulate.Lurker, simulate.Ghost}, 0.95, 0.85},
		{"suspicion-score", []simulate.Archetype{simulate.Suspicious}, 0.98, 0.9},
		{"suspicion-score", []simulate.Archetype{simulate.MultiClient}, 0.9, 0},
	}
	for _, c := range cases {
		rank := ranking(t, w.st, w.truth.GuildID, c.scorer)
		k, p, auc := quality(rank, w.truth.Members, c.targets...)
		t.Logf("%-16s %-22s k=%-3d precision@k=%.2f AUC vs chatty+regular=%.3f", c.scorer, fmt.Sprint(c.targets), k, p, auc)
		if k == 0 {
			t.Fatalf("%s: no %v members scored", c.scorer, c.targets)
		}
		if auc < c.minAUC || p < c.minPrec {
			t.Errorf("%s on %v: precision@%d %.2f (want ≥ %.2f), AUC %.3f (want ≥ %.2f)", c.scorer, c.targets, k, p, c.minPrec, auc, c.minAUC)
		}
	}
	// Explanations are what the READMEs promise, and name the top factor.
	for _, s := range ranking(t, w.st, w.truth.GuildID, "suspicion-score")[:5] {
		if s.Explanation == "Nothing unusual" || !strings.Contains(string(s.Factors), `"name":"timing_regularity"`) {
			t.Errorf("top suspicion score %v: %q %s", s.Score, s.Explanation, s.Factors)
		}
	}
	// A second run appends to the history and reports the previous score.
	if _, err := sc.RunGuild(context.Background(), w.truth.GuildID, "schedule"); err != nil {
		t.Fatal(err)
	}
	top := ranking(t, w.st, w.truth.GuildID, "ghost-score")[0]
	hist, err := w.st.ScoreHistory(context.Background(), w.truth.GuildID, top.UserID, "ghost-score", time.Time{}, 10)
	if err != nil || len(hist) != 1 {
		// Both runs share the clock: one history point per instant.
		t.Fatalf("history %v %v", hist, err)
	}
	if pub.previous() == 0 {
		t.Fatal("the second run's updates carry no previous score")
	}
}

var mu sync.Mutex

// recorder collects published score updates.
type recorder struct {
	updates []bus.ScoreUpdate
}

func (r *recorder) PublishScores(_ context.Context, s []bus.ScoreUpdate) {
	mu.Lock()
	r.updates = append(r.updates, s...)
	mu.Unlock()
}

func (r *recorder) count() int {
	mu.Lock()
	defer mu.Unlock()
	return len(r.updates)
}

func (r *recorder) previous() int {
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, u := range r.updates {
		if u.Previous != nil {
			n++
		}
	}
	return n
}
