package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/analytics"
	"github.com/spywatcher/spywatcher/host/internal/api"
	"github.com/spywatcher/spywatcher/host/internal/config"
	"github.com/spywatcher/spywatcher/host/internal/jobs"
	"github.com/spywatcher/spywatcher/host/internal/lease"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
)

// Roles (`serve --roles`) decide what an instance runs:
//
//	api     the REST API (and the embedded web UI); without it the HTTP
//	        listener serves only /healthz, /readyz and /metrics
//	ws      live dashboards over WebSocket (withWS)
//	ingest  the sources: Discord gateway, simulator
//	jobs    the job runner: plugin ticks, and the scoring and retention
//	        jobs registered on App.Jobs
//
// The pipeline runs on every instance: the api role's POST /api/v1/events
// feeds it too, and it drains whatever was accepted before shutdown. Plugin
// on_events dispatch follows the pipeline (events reach plugins on the
// instance that stored them); plugin ticks are jobs.

// httpHandler is the HTTP handler for the instance's roles.
// The WebSocket hub exists only with the ws role (d.Live); its routes are
// part of the API router, which an instance without the api role still
// builds but exposes only for the live stream.
func (a *App) httpHandler(d api.Deps) (http.Handler, error) {
	probes := api.Probes(d)
	withAPI, withWS := a.cfg.HasRole(config.RoleAPI), d.Live != nil
	if !withAPI && !withWS {
		return probes, nil
	}
	router, err := api.Router(d)
	if err != nil {
		return nil, err
	}
	if withAPI {
		return router, nil
	}
	return onlyLive(router, probes), nil
}

// onlyLive serves the live stream's routes from router and everything else
// from probes (health, readiness, metrics; 404 for the rest).
func onlyLive(router, probes http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/ws", "/api/v1/ws/ticket":
			router.ServeHTTP(w, r)
		default:
			probes.ServeHTTP(w, r)
		}
	})
}

// readyChecks are what /readyz asks besides the database.
func (a *App) readyChecks() map[string]func(context.Context) error {
	if a.Redis == nil {
		return nil
	}
	return map[string]func(context.Context) error{
		"redis": func(ctx context.Context) error { return a.Redis.Ping(ctx).Err() },
	}
}

// newJobs builds the job runner over the leases the instances share:
// Redis when configured, else the database's leases table.
func (a *App) newJobs() (*jobs.Runner, error) {
	var leases lease.Fenced = a.Store
	if a.Redis != nil {
		leases = lease.NewRedis(a.Redis, "spywatcher:lease:")
	}
	r, err := jobs.New(jobs.Config{
		Leases:     leases,
		Holder:     instanceID(),
		TTL:        a.cfg.JobLeaseTTL,
		Registerer: a.reg,
		Logger:     a.log.With("component", "jobs"),
	})
	if err != nil {
		return nil, err
	}
	// Plugin ticks: one lease per plugin and guild.
	err = r.Register(jobs.Job{
		Name:  "plugin-tick",
		Every: time.Minute, // each target says its own (manifest tick_seconds)
		Targets: func(context.Context) ([]jobs.Target, error) {
			tt := a.Plugins.TickTargets()
			out := make([]jobs.Target, len(tt))
			for i, t := range tt {
				out[i] = jobs.Target{Key: t.Key(), Every: t.Every}
			}
			return out, nil
		},
		Run: func(ctx context.Context, r jobs.Run) error {
			id, guild, ok := plugin.SplitTickKey(r.Target)
			if !ok {
				return fmt.Errorf("plugin tick: bad target %q", r.Target)
			}
			// The fencing check: an instance that lost the lease while
			// paused does not tick (the new holder does).
			if err := r.Check(ctx); err != nil {
				return err
			}
			if err := a.Plugins.Tick(ctx, id, guild, time.Now()); err != nil && !errors.Is(err, plugin.ErrNotRunnable) {
				return err
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	// Scoring: one lease per guild that has a scorer, every
	// --score-interval (negative: only on demand).
	if a.cfg.ScoreInterval > 0 {
		err = r.Register(jobs.Job{
			Name:  "scores",
			Every: a.cfg.ScoreInterval,
			Targets: func(context.Context) ([]jobs.Target, error) {
				guilds := a.Plugins.ScoreGuilds()
				out := make([]jobs.Target, len(guilds))
				for i, g := range guilds {
					out[i] = jobs.Target{Key: g}
				}
				return out, nil
			},
			Run: func(ctx context.Context, r jobs.Run) error {
				if err := r.Check(ctx); err != nil {
					return err
				}
				_, err := a.Scoring.RunGuild(ctx, r.Target, "schedule")
				if errors.Is(err, analytics.ErrBusy) || errors.Is(err, analytics.ErrNoScorers) {
					return nil // a recompute is running, or the scorers went away
				}
				return err
			},
		})
	}
	if err != nil {
		return nil, err
	}
	// Retention: one instance purges at a time (the deletes are idempotent,
	// so this only saves duplicated work).
	if a.Privacy != nil && a.cfg.RetentionInterval > 0 {
		err = r.Register(jobs.Job{
			Name:  "retention",
			Every: a.cfg.RetentionInterval,
			Run: func(ctx context.Context, r jobs.Run) error {
				if err := r.Check(ctx); err != nil {
					return err
				}
				rep, err := a.Privacy.Purge(ctx)
				a.log.Debug("retention run", "rows", rep.Rows, "guilds_purged", rep.GuildsPurged, "took", rep.Took)
				return err
			},
		})
	}
	return r, err
}

// instanceID names this process in leases: host name, process ID and a
// random suffix (two containers may share both).
func instanceID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
