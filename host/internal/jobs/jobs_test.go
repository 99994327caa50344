package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/lease"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
)

// shared returns, per backend, two lease stores that see the same leases
// as two host instances would: two Stores over one SQLite file, two over
// one PostgreSQL schema, two Redis clients.
func shared(t testing.TB) map[string][2]lease.Fenced {
	out := map[string][2]lease.Fenced{}
	openStore := func(dsn string, pgb ...bool) *store.Store {
		s, err := store.Open(context.Background(), dsn, store.Options{PgBouncer: len(pgb) > 0})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	file := filepath.Join(t.TempDir(), "spywatcher.db")
	out["sqlite"] = [2]lease.Fenced{openStore(file), openStore(file)}
	if base := os.Getenv(storetest.PostgresEnv); base != "" {
		dsn := storetest.PostgresDSN(t, base)
		out["postgres"] = [2]lease.Fenced{openStore(dsn), openStore(dsn)}
	} else {
		t.Log(storetest.PostgresEnv + " not set: skipping PostgreSQL leases")
	}
	if base := os.Getenv(storetest.PgBouncerEnv); base != "" {
		dsn := storetest.PgBouncerDSN(t, base)
		out["pgbouncer"] = [2]lease.Fenced{openStore(dsn, true), openStore(dsn, true)}
	} else {
		t.Log(storetest.PgBouncerEnv + " not set: skipping leases through PgBouncer")
	}
	if url := os.Getenv("SPYWATCHER_TEST_REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("spywatcher-test:jobs:%d:", time.Now().UnixNano())
		var pair [2]lease.Fenced
		for i := range pair {
			c := redis.NewClient(opts)
			t.Cleanup(func() { c.Close() })
			pair[i] = lease.NewRedis(c, prefix)
		}
		out["redis"] = pair
	} else {
		t.Log("SPYWATCHER_TEST_REDIS_URL not set: skipping Redis leases")
	}
	return out
}

// overlapDetector records runs per target and fails the test when two run
// at once.
type overlapDetector struct {
	t      testing.TB
	mu     sync.Mutex
	active map[string]string // target -> holder running it
	runs   map[string]int
	by     map[string]map[string]bool // target -> holders that ran it
	last   map[string]Run             // holder/target -> its last run
}

func newDetector(t testing.TB) *overlapDetector {
	return &overlapDetector{t: t, active: map[string]string{}, runs: map[string]int{},
		by: map[string]map[string]bool{}, last: map[string]Run{}}
}

func (d *overlapDetector) job(holder string) func(ctx context.Context, r Run) error {
	return func(ctx context.Context, r Run) error {
		d.mu.Lock()
		if other, busy := d.active[r.Target]; busy {
			d.t.Errorf("target %s runs on %s and %s at once", r.Target, other, holder)
		}
		d.active[r.Target] = holder
		d.mu.Unlock()
		// The holder's lease is current while it runs.
		err := r.Check(ctx)
		time.Sleep(2 * time.Millisecond) // widen the window an overlap would need
		d.mu.Lock()
		delete(d.active, r.Target)
		d.runs[r.Target]++
		if d.by[r.Target] == nil {
			d.by[r.Target] = map[string]bool{}
		}
		d.by[r.Target][holder] = true
		d.last[holder+"/"+r.Target] = r
		d.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			d.t.Errorf("%s: Check during its own run: %v", holder, err)
		}
		return nil
	}
}

func (d *overlapDetector) minRuns(targets []string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := -1
	for _, tg := range targets {
		if n < 0 || d.runs[tg] < n {
			n = d.runs[tg]
		}
	}
	return n
}

// waitFor polls cond until it holds; the test's own deadline bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var targets = []string{"g1", "g2", "g3", "g4"}

func job(name string, run func(context.Context, Run) error) Job {
	return Job{Name: name, Every: 10 * time.Millisecond, Run: run,
		Targets: PerGuild(func(context.Context) ([]string, error) { return targets, nil })}
}

func start(t testing.TB, leases lease.Fenced, holder string, j Job) (*Runner, *prometheus.Registry, context.CancelFunc, chan struct{}) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(Config{Leases: leases, Holder: holder, TTL: 300 * time.Millisecond, Tick: 5 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(j); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }() //nolint:errcheck // returns nil
	t.Cleanup(func() { cancel(); <-done })
	return r, reg, cancel, done
}

// TestTwoRunnersNeverOverlap runs two instances over shared leases: every
// target runs, never on both at once, and the two split the targets.
func TestTwoRunnersNeverOverlap(t *testing.T) {
	for name, pair := range shared(t) {
		t.Run(name, func(t *testing.T) {
			d := newDetector(t)
			jobName := fmt.Sprintf("overlap-%d", time.Now().UnixNano())
			a, _, _, _ := start(t, pair[0], "a", job(jobName, d.job("a")))
			b, _, _, _ := start(t, pair[1], "b", job(jobName, d.job("b")))
			waitFor(t, "every target to run 20 times", func() bool { return d.minRuns(targets) >= 20 })
			ha, hb := a.Held(jobName), b.Held(jobName)
			for _, tg := range ha {
				for _, o := range hb {
					if tg == o {
						t.Fatalf("both instances hold %s", tg)
					}
				}
			}
		})
	}
}

// crashed is a lease store whose holder dies without releasing anything.
type crashed struct{ lease.Fenced }

func (crashed) ReleaseLease(context.Context, string, string) error { return nil }

// TestHolderDies: the first instance takes every target, dies without
// releasing, and the second takes them all over with larger fencing tokens;
// the dead holder's last runs no longer pass Check.
func TestHolderDies(t *testing.T) {
	for name, pair := range shared(t) {
		t.Run(name, func(t *testing.T) {
			d := newDetector(t)
			jobName := fmt.Sprintf("dies-%d", time.Now().UnixNano())
			a, _, killA, doneA := start(t, crashed{pair[0]}, "a", job(jobName, d.job("a")))
			waitFor(t, "a to hold every target", func() bool { return len(a.Held(jobName)) == len(targets) })
			waitFor(t, "a to run every target", func() bool { return d.minRuns(targets) >= 1 })
			b, regB, _, _ := start(t, pair[1], "b", job(jobName, d.job("b")))
			killA()
			<-doneA
			waitFor(t, "b to take every target over", func() bool { return len(b.Held(jobName)) == len(targets) })
			waitFor(t, "b to run every target", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				for _, tg := range targets {
					if _, ok := d.last["b/"+tg]; !ok {
						return false
					}
				}
				return true
			})
			d.mu.Lock()
			defer d.mu.Unlock()
			for _, tg := range targets {
				ra, rb := d.last["a/"+tg], d.last["b/"+tg]
				if rb.Token <= ra.Token {
					t.Errorf("%s: b's token %d not above dead a's %d", tg, rb.Token, ra.Token)
				}
				if err := ra.Check(context.Background()); !errors.Is(err, ErrLeaseLost) {
					t.Errorf("%s: the dead holder's Check = %v, want ErrLeaseLost", tg, err)
				}
			}
			if got := testutil.ToFloat64(regGauge(t, regB, jobName)); got != float64(len(targets)) {
				t.Errorf("b's leader gauge = %v, want %d", got, len(targets))
			}
		})
	}
}

// TestStopReleases: an instance that stops cleanly hands its targets over
// at once (its leases are released, not left to expire).
func TestStopReleases(t *testing.T) {
	pair := shared(t)["sqlite"]
	jobName := "handover"
	d := newDetector(t)
	reg := prometheus.NewRegistry()
	a, err := New(Config{Leases: pair[0], Holder: "a", TTL: time.Hour, Tick: 5 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Register(job(jobName, d.job("a"))); err != nil {
		t.Fatal(err)
	}
	if err := a.Register(job(jobName, d.job("a"))); err == nil {
		t.Fatal("a job registered twice")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }() //nolint:errcheck // returns nil
	waitFor(t, "a to hold every target", func() bool { return len(a.Held(jobName)) == len(targets) })
	cancel()
	<-done
	// With an hour's TTL only a release lets b in.
	for _, tg := range targets {
		tok, err := pair[1].AcquireFenced(context.Background(), leaseName(jobName, tg), "b", time.Minute)
		if err != nil || tok == 0 {
			t.Fatalf("%s after a stopped: token %d, %v", tg, tok, err)
		}
	}
	if n := testutil.ToFloat64(regGauge(t, reg, jobName)); n != 0 {
		t.Fatalf("leader gauge after stop = %v", n)
	}
	if runs := testutil.CollectAndCount(reg, "spywatcher_job_runs_total"); runs != 1 {
		t.Fatalf("runs series = %d", runs)
	}
}

// TestFailuresCounted: an error or a panic is counted and the job keeps
// running.
func TestFailuresCounted(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	_, reg, _, _ := start(t, &lease.Local{}, "a", Job{Name: "flaky", Every: time.Millisecond, Run: func(context.Context, Run) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch calls {
		case 1:
			return errors.New("boom")
		case 2:
			panic("kaboom")
		}
		return nil
	}})
	waitFor(t, "four runs", func() bool { mu.Lock(); defer mu.Unlock(); return calls >= 4 })
	waitFor(t, "failures counted", func() bool {
		return testutil.ToFloat64(counter(t, reg, "spywatcher_job_failures_total", "flaky")) == 2
	})
}

func regGauge(t *testing.T, reg *prometheus.Registry, job string) prometheus.Collector {
	return counter(t, reg, "spywatcher_job_leader_targets", job)
}

// counter finds the series name{job_name=job} in reg as a collector.
func counter(t *testing.T, reg *prometheus.Registry, name, job string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "job_name" && l.GetValue() == job {
					v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
					g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
					g.Set(v)
					return g
				}
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	return g
}
