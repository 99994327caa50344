// Package jobs runs background work that must happen once at a time across
// all host instances — a plugin's tick in one guild, a guild's score
// recomputation, a retention purge — under leases with fencing tokens.
//
// A Job has a name, a set of targets (one per guild, per plugin and guild,
// or a single global one) and an interval. Every instance with the jobs role
// runs a Runner over the same jobs; for each target the Runner keeps trying
// to take the lease "job:<name>:<target>" and only the holder runs the
// target. The holder keeps its lease by renewing it every TTL/3, so a target
// stays with one instance (runs are spaced by the interval, not repeated by
// every instance); when the holder dies it stops renewing and another
// instance takes the target over once the TTL has passed.
//
// A lease can be lost while a run is in progress (the holder paused, the
// lease store was unreachable): the run's context is cancelled when the
// Runner notices, and a run about to make a write that a stale holder must
// not make calls Run.Check first, which compares the fencing token with the
// lease store's.
//
// Registering a job is one call, for example the score recomputation:
//
//	runner.Register(jobs.Job{
//		Name:    "scores",
//		Every:   time.Minute,
//		Targets: jobs.PerGuild(st.ListGuildIDs),
//		Run: func(ctx context.Context, r jobs.Run) error {
//			return scorer.Recompute(ctx, r.Target, r.Check)
//		},
//	})
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/lease"
)

// ErrLeaseLost is returned by Run.Check when another instance holds the
// target's lease now (or nobody does).
var ErrLeaseLost = errors.New("jobs: lease lost")

// Job is one kind of background work.
type Job struct {
	// Name identifies the job in lease names, logs and metrics.
	Name string
	// Every is how often each target runs, unless its Target says otherwise.
	Every time.Duration
	// Targets lists what the job runs for (guild IDs, say); it is called
	// every TTL/3. Nil means one global target, "".
	Targets func(ctx context.Context) ([]Target, error)
	// Run does the work for r.Target. An error is counted and logged; the
	// target runs again after Every.
	Run func(ctx context.Context, r Run) error
}

// Target is one unit a job runs for.
type Target struct {
	Key   string        // the guild ID, "plugin/guild", ...
	Every time.Duration // 0: the job's Every
}

// PerGuild turns a list of guild IDs into targets, for Job.Targets.
func PerGuild(list func(ctx context.Context) ([]string, error)) func(ctx context.Context) ([]Target, error) {
	return func(ctx context.Context) ([]Target, error) {
		ids, err := list(ctx)
		if err != nil {
			return nil, err
		}
		ts := make([]Target, len(ids))
		for i, id := range ids {
			ts[i] = Target{Key: id}
		}
		return ts, nil
	}
}

// Run describes one run of a job for one target.
type Run struct {
	Job    string
	Target string
	// Token is the lease's fencing token: larger than that of any earlier
	// holder of this target.
	Token int64
	check func(ctx context.Context) error
}

// Check returns ErrLeaseLost when this instance no longer holds the
// target's lease with Token. Call it before writes that must not come from
// an instance that lost the lease while it was paused.
func (r Run) Check(ctx context.Context) error { return r.check(ctx) }

// Config tunes a Runner.
type Config struct {
	// Leases is the shared lease store: *store.Store (PostgreSQL or SQLite)
	// or lease.Redis. Required.
	Leases lease.Fenced
	// Holder names this instance in leases (host name and process, say).
	// Required and unique per instance.
	Holder string
	// TTL is how long a dead holder keeps its targets. Default 30s.
	TTL time.Duration
	// Tick is how often due runs are looked for. Default 1s (or TTL/3 when
	// smaller).
	Tick       time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Runner runs registered jobs for the targets whose leases it holds.
type Runner struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	mu   sync.Mutex
	jobs []*jobState
}

type jobState struct {
	Job
	targets map[string]*targetState
}

type targetState struct {
	key     string
	every   time.Duration
	token   int64     // 0: not held
	validTo time.Time // local clock: do not start runs after this without renewing
	due     time.Time
	running bool
	cancel  context.CancelFunc // of the run in progress
}

// New returns a Runner; Register jobs, then call Run.
func New(cfg Config) (*Runner, error) {
	if cfg.Leases == nil || cfg.Holder == "" {
		return nil, errors.New("jobs: Config.Leases and Config.Holder are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = min(time.Second, cfg.TTL/3)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, log: cfg.Logger, m: m}, nil
}

// Register adds a job. Names must be unique; jobs may be added while the
// Runner runs.
func (r *Runner) Register(j Job) error {
	if j.Name == "" || j.Run == nil || j.Every <= 0 {
		return fmt.Errorf("jobs: register %q: a job needs a name, a Run and an interval", j.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, js := range r.jobs {
		if js.Name == j.Name {
			return fmt.Errorf("jobs: job %q registered twice", j.Name)
		}
	}
	r.jobs = append(r.jobs, &jobState{Job: j, targets: map[string]*targetState{}})
	r.m.leader.WithLabelValues(j.Name).Set(0)
	return nil
}

func leaseName(job, target string) string { return "job:" + job + ":" + target }

// Run renews leases and starts due runs until ctx ends; then it waits for
// runs in progress (their contexts are cancelled) and releases its leases
// so that another instance takes over at once.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	renewEvery := r.cfg.TTL / 3
	tick := time.NewTicker(r.cfg.Tick)
	defer tick.Stop()
	var lastRenew time.Time
	for {
		now := time.Now()
		if now.Sub(lastRenew) >= renewEvery {
			lastRenew = now
			r.renew(ctx)
		}
		r.startDue(runCtx, &wg)
		select {
		case <-ctx.Done():
			cancelRuns()
			wg.Wait()
			r.releaseAll()
			return nil
		case <-tick.C:
		}
	}
}

// renew lists every job's targets and takes or keeps their leases.
func (r *Runner) renew(ctx context.Context) {
	r.mu.Lock()
	jobs := slices.Clone(r.jobs)
	r.mu.Unlock()
	for _, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		targets := []Target{{Key: ""}}
		if j.Targets != nil {
			ts, err := j.Targets(ctx)
			if err != nil {
				r.log.Warn("job targets", "job", j.Name, "err", err)
				r.m.leaseErrors.WithLabelValues(j.Name).Inc()
				continue // keep what is held; the leases run out if this persists
			}
			targets = ts
		}
		seen := make(map[string]bool, len(targets))
		for _, t := range targets {
			seen[t.Key] = true
			every := t.Every
			if every <= 0 {
				every = j.Every
			}
			r.mu.Lock()
			ts := j.targets[t.Key]
			if ts == nil {
				ts = &targetState{key: t.Key}
				j.targets[t.Key] = ts
			}
			ts.every = every
			r.mu.Unlock()
			r.renewOne(ctx, j, ts)
		}
		// Targets that went away (guild removed, plugin disabled): let go.
		r.mu.Lock()
		var gone []*targetState
		for k, ts := range j.targets {
			if !seen[k] && !ts.running {
				if ts.token > 0 {
					gone = append(gone, ts)
				}
				delete(j.targets, k)
			}
		}
		r.mu.Unlock()
		for _, ts := range gone {
			r.release(j, ts)
		}
	}
}

func (r *Runner) renewOne(ctx context.Context, j *jobState, ts *targetState) {
	start := time.Now()
	tok, err := r.cfg.Leases.AcquireFenced(ctx, leaseName(j.Name, ts.key), r.cfg.Holder, r.cfg.TTL)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("job lease", "job", j.Name, "target", ts.key, "err", err)
			r.m.leaseErrors.WithLabelValues(j.Name).Inc()
		}
		return // what is held stays valid until validTo; no new runs after that
	}
	switch {
	case tok > 0 && ts.token == 0:
		r.log.Info("job lease taken", "job", j.Name, "target", ts.key, "token", tok)
		r.m.leader.WithLabelValues(j.Name).Inc()
		r.m.takeovers.WithLabelValues(j.Name).Inc()
		ts.due = start // run at once: the previous holder may have died long ago
	case tok == 0 && ts.token > 0:
		r.log.Warn("job lease lost", "job", j.Name, "target", ts.key)
		r.m.leader.WithLabelValues(j.Name).Dec()
		if ts.cancel != nil {
			ts.cancel()
		}
	case tok > 0 && tok != ts.token:
		// It lapsed and we took it again: someone may have run in between.
		if ts.cancel != nil {
			ts.cancel()
		}
	}
	ts.token = tok
	// Renewal takes effect at the store some time after start; stop
	// starting runs a tenth of the TTL before the expiry it wrote.
	ts.validTo = start.Add(r.cfg.TTL - r.cfg.TTL/10)
}

// startDue starts the runs whose time has come on targets held.
func (r *Runner) startDue(ctx context.Context, wg *sync.WaitGroup) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		for _, ts := range j.targets {
			if ts.token == 0 || ts.running || now.Before(ts.due) || !now.Before(ts.validTo) {
				continue
			}
			ts.running = true
			ts.due = now.Add(ts.every)
			runCtx, cancel := context.WithCancel(ctx)
			ts.cancel = cancel
			run := Run{Job: j.Name, Target: ts.key, Token: ts.token}
			name := leaseName(j.Name, ts.key)
			run.check = func(ctx context.Context) error {
				ok, err := r.cfg.Leases.CheckLease(ctx, name, r.cfg.Holder, run.Token)
				if err != nil {
					return fmt.Errorf("jobs: check lease %s: %w", name, err)
				}
				if !ok {
					return fmt.Errorf("%w: %s (token %d)", ErrLeaseLost, name, run.Token)
				}
				return nil
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel()
				r.execute(runCtx, j, run)
				r.mu.Lock()
				ts.running, ts.cancel = false, nil
				r.mu.Unlock()
			}()
		}
	}
}

func (r *Runner) execute(ctx context.Context, j *jobState, run Run) {
	start := time.Now()
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("jobs: %s panicked: %v", j.Name, v)
			}
		}()
		return j.Run(ctx, run)
	}()
	r.m.duration.WithLabelValues(j.Name).Observe(time.Since(start).Seconds())
	r.m.runs.WithLabelValues(j.Name).Inc()
	if err != nil {
		r.m.failures.WithLabelValues(j.Name).Inc()
		r.log.Warn("job failed", "job", j.Name, "target", run.Target, "err", err)
	}
}

func (r *Runner) release(j *jobState, ts *targetState) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.cfg.Leases.ReleaseLease(ctx, leaseName(j.Name, ts.key), r.cfg.Holder); err != nil {
		r.log.Warn("job lease release", "job", j.Name, "target", ts.key, "err", err)
	}
	r.mu.Lock()
	if ts.token > 0 {
		r.m.leader.WithLabelValues(j.Name).Dec()
	}
	ts.token = 0
	r.mu.Unlock()
}

func (r *Runner) releaseAll() {
	r.mu.Lock()
	var held [][2]any
	for _, j := range r.jobs {
		for _, ts := range j.targets {
			if ts.token > 0 {
				held = append(held, [2]any{j, ts})
			}
		}
	}
	r.mu.Unlock()
	for _, h := range held {
		r.release(h[0].(*jobState), h[1].(*targetState))
	}
}

// Held returns the targets of job whose leases this Runner holds, sorted.
func (r *Runner) Held(job string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, j := range r.jobs {
		if j.Name != job {
			continue
		}
		for k, ts := range j.targets {
			if ts.token > 0 {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// The jobs' metrics label the job "job_name": "job" is the label
// Prometheus gives every scraped target.
type metrics struct {
	runs, failures, takeovers, leaseErrors *prometheus.CounterVec
	duration                               *prometheus.HistogramVec
	leader                                 *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spywatcher_job_runs_total",
			Help: "Runs of a background job (all targets) on this instance."}, []string{"job_name"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spywatcher_job_failures_total",
			Help: "Runs of a background job that returned an error or panicked."}, []string{"job_name"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spywatcher_job_lease_takeovers_total",
			Help: "Targets of a job whose lease this instance took (at start or from a dead holder)."}, []string{"job_name"}),
		leaseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spywatcher_job_lease_errors_total",
			Help: "Failures to list a job's targets or to reach the lease store."}, []string{"job_name"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spywatcher_job_duration_seconds",
			Help:    "How long one run of a background job took.",
			Buckets: []float64{.001, .005, .02, .1, .5, 2, 10, 60, 300}}, []string{"job_name"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spywatcher_job_leader_targets",
			Help: "Targets of a job whose lease this instance holds (it runs them)."}, []string{"job_name"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.runs, m.failures, m.takeovers, m.leaseErrors, m.duration, m.leader} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("jobs: metrics: %w", err)
		}
	}
	return m, nil
}
