package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/api"
	"github.com/spywatcher/spywatcher/host/internal/config"
)

// recorder is a registry that also remembers the name of every metric
// registered on it, series or not.
type recorder struct {
	*prometheus.Registry
	mu    sync.Mutex
	names map[string]bool
	descs map[string]string
}

var fqName = regexp.MustCompile(`fqName: "([a-zA-Z0-9_:]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
			r.descs[m[1]] = d.String()
		}
	}
	r.mu.Unlock()
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// hostMetrics builds a whole host — store, pipeline, plugins, jobs, API,
// Discord gateway — and returns the names of every metric it registers
// (the Go runtime's and the process's aside).
func hostMetrics(t *testing.T) ([]string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	args := []string{"--data-dir", t.TempDir(), "--discord-token", "Bot.test.token"}
	if url := os.Getenv("SPYWATCHER_TEST_REDIS_URL"); url != "" {
		args = append(args, "--redis-url", url)
	} else {
		t.Log("SPYWATCHER_TEST_REDIS_URL not set: spywatcher_redis_up is not checked")
	}
	cfg, _, err := config.Load("serve", args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Registry: prometheus.NewRegistry(), names: map[string]bool{}, descs: map[string]string{}}
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler), io.Discard, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d, _, err := a.authDeps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.Store, d.Ingest, d.Gatherer, d.Registerer, d.Plugins = a.Store, a.Pipe, a.reg, a.reg, a.Plugins
	hub, err := a.newHub(d)
	if err != nil {
		t.Fatal(err)
	}
	d.Live = hub
	if _, err := api.Router(d); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GatewaySource(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range rec.names {
		if !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") || strings.HasPrefix(n, "go_sql_") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, rec.descs
}

// TestEveryMetricDocumented keeps OPERATIONS.md's metrics table, the
// Grafana dashboard and the alert rules honest: every metric the host
// registers has a row, and the dashboard and rules use only metrics that
// exist.
func TestEveryMetricDocumented(t *testing.T) {
	names, descs := hostMetrics(t)
	if len(names) < 20 {
		t.Fatalf("only %d metrics found: %v", len(names), names)
	}
	doc, err := os.ReadFile("../../../OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "| `"+n+"`") {
			t.Errorf("OPERATIONS.md has no metrics table row for %s", n)
		}
	}
	if testing.Verbose() {
		for _, n := range names {
			t.Log(n, descs[n])
		}
	}
}

// pendingMetrics are used by the dashboard before the code that registers
// them has landed: the WebSocket hub's (host/internal/ws). Remove a name
// once the hub is wired into the app (this test then finds it registered).
var pendingMetrics = map[string]bool{}

var metricRef = regexp.MustCompile(`\b(spywatcher_[a-z0-9_]+|go_sql_[a-z0-9_]+)\b`)

// TestDashboardsAndAlertsUseRealMetrics: every metric the Grafana
// dashboard and the Prometheus rules query exists, and every alert has a
// runbook section in OPERATIONS.md.
func TestDashboardsAndAlertsUseRealMetrics(t *testing.T) {
	names, _ := hostMetrics(t)
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	if os.Getenv("SPYWATCHER_TEST_REDIS_URL") == "" {
		known["spywatcher_redis_up"] = true // registered only with Redis configured
	}
	check := func(where, expr string) {
		for _, m := range metricRef.FindAllString(expr, -1) {
			base := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suffix); ok && known[b] {
					base = b
				}
			}
			if !known[base] && !pendingMetrics[base] {
				t.Errorf("%s uses %s, which the host does not register", where, m)
			}
		}
	}

	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile("../../../deploy/grafana/spywatcher.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			check("dashboard panel "+p.Title, tg.Expr)
			exprs++
		}
	}
	if exprs < 15 {
		t.Fatalf("dashboard has %d queries", exprs)
	}

	rules, err := os.ReadFile("../../../deploy/prometheus/spywatcher-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../../../OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	alert := ""
	alerts := 0
	for _, line := range strings.Split(string(rules), "\n") {
		line = strings.TrimSpace(line)
		if a, ok := strings.CutPrefix(line, "- alert: "); ok {
			alert = a
			alerts++
			if !strings.Contains(string(ops), "### "+alert+"\n") {
				t.Errorf("OPERATIONS.md has no section ### %s", alert)
			}
		}
		if e, ok := strings.CutPrefix(line, "expr: "); ok {
			if e == "|" || e == ">" {
				t.Fatalf("alert %s: keep expressions on one line", alert)
			}
			check("alert "+alert, e)
		}
	}
	if alerts < 8 {
		t.Fatalf("%d alerts found", alerts)
	}
}
