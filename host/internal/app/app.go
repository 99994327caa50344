// Package app is the one place that builds the host from its configuration:
// it opens the store, creates the pipeline, bus, authenticator and API, starts
// the sources, and shuts them down in the right order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/analytics"
	"github.com/spywatcher/spywatcher/host/internal/api"
	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/config"
	"github.com/spywatcher/spywatcher/host/internal/jobs"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/privacy"
	"github.com/spywatcher/spywatcher/host/internal/ratelimit"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/sealing"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/host/internal/webui"
	"github.com/spywatcher/spywatcher/host/internal/ws"
	"github.com/spywatcher/spywatcher/web"
)

// App is a built host.
type App struct {
	cfg   *config.Config
	log   *slog.Logger
	Store *store.Store
	Bus   *bus.Local
	Pipe  *pipeline.Pipeline
	// Authz is the one enforcer (users, API keys, plugins).
	Authz *authz.Enforcer
	// Plugins is the plugin host.
	Plugins *plugin.Host
	// Scoring runs the scorer plugins.
	Scoring *analytics.Scoring
	// Privacy carries out guild settings, data requests and retention; its
	// filter decides at ingest what is collected.
	Privacy *privacy.Service
	// Seal is the keyring of secrets that encrypt values at rest (nil:
	// no --secret-key).
	Seal *sealing.Keyring
	// Redis is the shared client when SPYWATCHER_REDIS_URL is set, else nil.
	Redis *redis.Client
	// Jobs runs background jobs once across instances (jobs role); other
	// parts register theirs here before Serve (see package jobs).
	Jobs *jobs.Runner
	reg  registry
	out  io.Writer
}

// NewLogger returns the host's structured logger as configured.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// New opens the store (applying migrations) and builds the pipeline. out
// receives messages meant for the operator's eyes, such as a generated
// admin token.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, out io.Writer) (*App, error) {
	return newApp(ctx, cfg, log, out, prometheus.NewRegistry())
}

// registry is where the host's metrics are registered and gathered from.
type registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

func newApp(ctx context.Context, cfg *config.Config, log *slog.Logger, out io.Writer, reg registry) (*App, error) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	seal, err := sealing.New(cfg.SecretKey, cfg.OldSecretKeys)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DSN(), store.Options{MaxConns: cfg.DBMaxConns, Logger: log, PgBouncer: cfg.DBPgBouncer, Seal: seal})
	if err != nil {
		return nil, err
	}
	rdb, err := openRedis(ctx, cfg.RedisURL)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Policy and privacy setting changes reach the other instances through
	// Redis at once; a cheap poll of the stored versions also picks up what
	// the CLI (or an instance without Redis) changed.
	var notifier interface {
		authz.Notifier
		privacy.Notifier
	} = bus.NewSignals()
	if rdb != nil {
		notifier = bus.NewRedisSignals(rdb, log)
	}
	filter, err := privacy.NewFilter(ctx, st, notifier, log)
	if err != nil {
		st.Close()
		if rdb != nil {
			rdb.Close()
		}
		return nil, err
	}
	b := bus.NewLocal()
	p, err := pipeline.New(pipeline.Config{
		QueueSize:     cfg.QueueSize,
		BatchSize:     cfg.BatchSize,
		FlushInterval: cfg.FlushInterval,
		Writers:       cfg.Writers(),
		SpillDir:      filepath.Join(cfg.DataDir, "spill"),
		Filter:        filter,
		Logger:        log,
	}, st, b, reg)
	if err != nil {
		st.Close()
		if rdb != nil {
			rdb.Close()
		}
		return nil, err
	}
	enf, err := authz.New(ctx, st, authz.Options{Notifier: notifier, Logger: log, PollEvery: 2 * time.Second})
	if err != nil {
		st.Close()
		if rdb != nil {
			rdb.Close()
		}
		return nil, err
	}
	ph, err := NewPluginHost(ctx, cfg, st, enf, b, reg, log)
	if err != nil {
		enf.Close()
		st.Close()
		if rdb != nil {
			rdb.Close()
		}
		return nil, err
	}
	priv, err := privacy.New(privacy.Config{Grace: cfg.GuildRemovalGrace, Batch: cfg.RetentionBatch, Logger: log},
		st, filter, ph, reg)
	if err != nil {
		ph.Close(ctx)
		enf.Close()
		st.Close()
		if rdb != nil {
			rdb.Close()
		}
		return nil, err
	}
	// Scheduled scoring is a job (newJobs); Scoring itself only serves
	// on-demand recomputes.
	scoring := analytics.NewScoring(analytics.ScoringConfig{Window: cfg.ScoreWindow,
		BatchSize: cfg.ScoreBatch, Logger: log}, st, ph, b)
	a := &App{cfg: cfg, log: log, Store: st, Bus: b, Pipe: p, Authz: enf, Plugins: ph, Scoring: scoring,
		Privacy: priv, Seal: seal, Redis: rdb, reg: reg, out: out}
	if err := a.registerHealth(); err != nil {
		a.Close()
		return nil, err
	}
	if a.Jobs, err = a.newJobs(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// NewPluginHost builds the plugin host as configured; the CLI uses it too.
func NewPluginHost(ctx context.Context, cfg *config.Config, st *store.Store, policy plugin.Policy, b *bus.Local, reg prometheus.Registerer, log *slog.Logger) (*plugin.Host, error) {
	return plugin.New(ctx, plugin.Config{
		Dir:               filepath.Join(cfg.DataDir, "plugins"),
		CacheDir:          filepath.Join(cfg.DataDir, "plugin-cache"),
		MaxMemoryBytes:    int64(cfg.PluginMemoryMB) << 20,
		QuarantineAfter:   cfg.PluginQuarantineAfter,
		FetchAllowPrivate: cfg.FetchAllowPrivate,
		FlushInterval:     cfg.FlushInterval,
		Scores:            &b.Scores,
		ExternalTicks:     true, // run by the job runner (roles.go)
		Logger:            log,
	}, st, policy, safehttp.New(safehttp.Options{}), b, reg)
}

// openRedis connects to url ("" means no Redis).
func openRedis(ctx context.Context, url string) (*redis.Client, error) {
	if url == "" {
		return nil, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("redis: invalid SPYWATCHER_REDIS_URL") // the URL may hold a password: not echoed
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis: cannot reach %s: %w", opts.Addr, err)
	}
	return rdb, nil
}

// Close releases the enforcer, Redis and the store.
func (a *App) Close() error {
	a.Plugins.Close(context.Background())
	a.Authz.Close()
	if a.Redis != nil {
		a.Redis.Close()
	}
	return a.Store.Close()
}

// authDeps builds sessions, logins, API key accounting and rate limits.
func (a *App) authDeps(ctx context.Context) (api.Deps, *auth.UsageRecorder, error) {
	c := a.cfg
	tiers, err := auth.ParseTiers(c.APIKeyTiers)
	if err != nil {
		return api.Deps{}, nil, err
	}
	if _, ok := tiers[c.APIKeyTier]; !ok {
		return api.Deps{}, nil, fmt.Errorf("config: --api-key-tier %q is not one of --api-key-tiers (%v)", c.APIKeyTier, auth.TierNames(tiers))
	}
	keys, err := auth.NewKeyring(ctx, a.Store, auth.KeyringConfig{SecretKey: c.SecretKey, OldSecretKeys: c.OldSecretKeys, Rotate: c.SigningKeyRotation, TokenTTL: c.AccessTokenTTL, Logger: a.log})
	if err != nil {
		return api.Deps{}, nil, err
	}
	sessions := auth.NewSessions(a.Store, keys, c.SessionTTL, nil)
	passwords, err := auth.NewPasswords(a.Store, auth.DefaultArgon2, nil)
	if err != nil {
		return api.Deps{}, nil, err
	}
	usage := auth.NewUsageRecorder(a.Store, nil)
	var limiter ratelimit.Limiter = ratelimit.NewMemory(nil)
	if a.Redis != nil {
		limiter = ratelimit.NewRedis(a.Redis, "spywatcher:rl:")
	}
	d := api.Deps{
		Auth:        auth.NewAuthenticator(a.Store).WithUsers(sessions, a.Store, a.Store, usage),
		Authz:       a.Authz,
		Passwords:   passwords,
		Sessions:    sessions,
		Limiter:     limiter,
		Limits:      api.Limits{PerIP: c.RateLimitIP, PerPrincipal: c.RateLimitUser, Login: c.RateLimitLogin, Tiers: tiers},
		Security:    api.Security{CookieSecure: c.CookieSecure, CORSOrigins: c.CORSOrigins, TrustedProxies: c.TrustedProxies},
		Argon2:      auth.DefaultArgon2,
		DefaultTier: c.APIKeyTier,
	}
	if c.Discord.ClientID != "" {
		d.Discord = auth.NewDiscord(auth.DiscordConfig{
			ClientID: c.Discord.ClientID, ClientSecret: c.Discord.ClientSecret, RedirectURL: c.Discord.RedirectURL,
			AuthorizeURL: c.Discord.AuthorizeURL, TokenURL: c.Discord.TokenURL, APIURL: c.DiscordAPIURL,
		}, a.Store, a.Authz, nil, nil)
	}
	return d, usage, nil
}

// newHub builds the live dashboard's WebSocket hub over the API's
// authentication; with Redis, events and tickets are shared by every
// instance.
func (a *App) newHub(d api.Deps) (*ws.Hub, error) {
	cfg := ws.Config{Auth: d.Auth, Authz: a.Authz, Origins: a.cfg.CORSOrigins, MinWriteInterval: a.cfg.WSWriteInterval, Registerer: a.reg, Logger: a.log}
	if a.Redis != nil {
		cfg.Fanout = bus.NewRedisSignals(a.Redis, a.log)
		cfg.Tickets = ws.NewRedisTickets(a.Redis)
	}
	return ws.New(cfg, a.Bus)
}

// Source is something that feeds events until its context ends.
type Source struct {
	Name string
	Run  func(ctx context.Context) error
}

// Serve runs the HTTP server, the pipeline and the sources until ctx ends,
// then shuts down: sources stop, HTTP stops taking requests, and the pipeline
// stores everything already accepted (up to ShutdownTimeout; what is left
// after that is written to a spill file).
func (a *App) Serve(ctx context.Context, sources ...Source) error {
	generated, err := auth.EnsureAdminToken(ctx, a.Store, a.cfg.AdminToken)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if generated != "" {
		fmt.Fprintf(a.out, "\n  Admin token (shown once, stored hashed; keep it safe):\n\n      %s\n\n", generated)
	}
	d, usage, err := a.authDeps(ctx)
	if err != nil {
		return err
	}
	d.Store, d.Ingest, d.Gatherer, d.Registerer, d.Logger, d.MaxBodyBytes = a.Store, a.Pipe, a.reg, a.reg, a.log, a.cfg.MaxBodyBytes
	d.Plugins = a.Plugins
	if a.cfg.HasRole(config.RoleWS) {
		hub, err := a.newHub(d)
		if err != nil {
			return err
		}
		d.Live = hub
		hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
		hubDone := make(chan struct{})
		go func() { hub.Run(hubCtx); close(hubDone) }()
		defer func() { stopHub(); <-hubDone }()
	}
	dist, _ := web.Dist()
	if d.Web, err = webui.New(dist, a.cfg.WebDevURL); err != nil {
		return err
	}
	d.ReadyChecks = a.readyChecks()
	d.Scoring = a.Scoring
	d.Privacy = a.Privacy
	handler, err := a.httpHandler(d)
	if err != nil {
		return err
	}
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan struct{})
	go func() {
		defer close(usageDone)
		if err := usage.Run(usageCtx, 10*time.Second); err != nil {
			a.log.Error("api key usage not saved", "err", err)
		}
	}()
	defer func() { stopUsage(); <-usageDone }()
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another spywatcher running? set --addr or SPYWATCHER_ADDR)", a.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}

	// The pipeline outlives ctx: it must drain after the sources stop.
	pipeCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- a.Pipe.Run(pipeCtx) }()
	// Plugins get every stored batch, until the pipeline has drained.
	pluginCtx, stopPlugins := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPlugins()
	pluginsDone := make(chan struct{})
	go func() {
		a.Plugins.Start(pluginCtx, a.Bus.Subscribe(4096))
		close(pluginsDone)
	}()
	scoringDone := make(chan struct{})
	go func() {
		a.Scoring.Start(pluginCtx)
		close(scoringDone)
	}()

	// Background jobs (jobs role) stop with ctx and hand their leases over.
	jobsCtx, stopJobs := context.WithCancel(ctx)
	jobsDone := make(chan struct{})
	if a.cfg.HasRole(config.RoleJobs) {
		go func() { a.Jobs.Run(jobsCtx); close(jobsDone) }() //nolint:errcheck // returns nil
	} else {
		close(jobsDone)
	}
	defer func() { stopJobs(); <-jobsDone }()
	if !a.cfg.HasRole(config.RoleIngest) && len(sources) > 0 {
		a.log.Info("ingest role off: sources not started", "sources", len(sources))
		sources = nil
	}

	// Privacy: the ingest filter follows setting changes made elsewhere,
	// retention runs periodically, and leavers' data is deleted where the
	// guild asks for it.
	privCtx, stopPrivacy := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPrivacy()
	leaves := a.Bus.Subscribe(1024)
	var privWG sync.WaitGroup
	privWG.Add(2) // retention is a job (newJobs)
	go func() { defer privWG.Done(); a.Privacy.Filter().Run(privCtx, 2*time.Second) }()
	go func() { defer privWG.Done(); a.Privacy.WatchLeaves(privCtx, leaves.C) }()
	defer func() { stopPrivacy(); leaves.Cancel(); privWG.Wait() }()

	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	var wg sync.WaitGroup
	srcErr := make(chan error, len(sources))
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.log.Info("source started", "source", s.Name)
			if err := s.Run(srcCtx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, pipeline.ErrClosed) {
				a.log.Error("source stopped", "source", s.Name, "err", err)
				srcErr <- fmt.Errorf("source %s: %w", s.Name, err)
				return
			}
			a.log.Info("source stopped", "source", s.Name)
		}()
	}

	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	a.log.Info("spywatcher serving", "url", "http://"+ln.Addr().String(), "database", string(a.Store.Dialect()), "roles", a.cfg.Roles)

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-srcErr:
		runErr = err
	}

	stopSources()
	wg.Wait()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if err := srv.Shutdown(shutCtx); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	cancel()
	a.Pipe.Close()
	queued := a.Pipe.QueueLen()
	timer := time.AfterFunc(a.cfg.ShutdownTimeout, func() {
		a.log.Error("shutdown timeout: writing what is left to a spill file", "timeout", a.cfg.ShutdownTimeout)
		hardStop()
	})
	defer timer.Stop()
	if err := <-pipeDone; err != nil && runErr == nil {
		runErr = fmt.Errorf("pipeline: %w", err)
	}
	stopPlugins()
	<-pluginsDone
	<-scoringDone
	a.log.Info("stopped", "drained_events", queued)
	return runErr
}
