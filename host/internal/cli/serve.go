package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/app"
	"github.com/spywatcher/spywatcher/host/internal/config"
	"github.com/spywatcher/spywatcher/host/internal/ingest/simulate"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

func serve(ctx context.Context, args []string, env Env) error {
	cfg, rest, err := loadConfig("serve", args, env)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q (see spywatcher serve --help)", rest)}
	}
	log := app.NewLogger(cfg, env.Stderr)
	log.Info("configuration", cfg.Dump()...)
	a, err := app.New(ctx, cfg, log, env.Stdout)
	if err != nil {
		return err
	}
	defer a.Close()
	var pluginIDs []string
	if cfg.PluginsDir != "" {
		if pluginIDs, err = a.InstallPluginsDir(ctx, cfg.PluginsDir); err != nil {
			return err
		}
	}
	var sources []app.Source
	ingest := cfg.HasRole(config.RoleIngest) // without it, no sources
	if cfg.Simulate && ingest {
		src, err := simulatorSource(ctx, cfg, a, log, pluginIDs)
		if err != nil {
			return err
		}
		sources = append(sources, src)
	}
	if cfg.DiscordToken != "" && ingest {
		src, err := a.GatewaySource()
		if err != nil {
			return err
		}
		sources = append(sources, src)
	}
	return a.Serve(ctx, sources...)
}

// simulatorSource builds the demo guild's simulator. A restart continues the
// same guild: the roster is pinned to the guild's first appearance in the
// store (so user IDs stay the same) and simulated time resumes after the
// newest stored event instead of writing the same history twice.
//
// The guild gets the simulation's time zone, and the plugins of
// --plugins-dir are enabled and granted in it (the first time), so that the
// demo shows scores without setup.
func simulatorSource(ctx context.Context, cfg *config.Config, a *app.App, log *slog.Logger, pluginIDs []string) (app.Source, error) {
	loc, _ := time.LoadLocation(cfg.SimTimezone) // validated by config
	sc := simulate.Config{Seed: cfg.SimSeed, Members: cfg.SimMembers, Timezone: loc}
	probe, err := simulate.New(sc)
	if err != nil {
		return app.Source{}, err
	}
	guild := probe.Truth().GuildID
	from := time.Now().Add(-cfg.SimHistory).Truncate(time.Millisecond)
	sc.Epoch = from
	switch g, err := a.Store.GetGuild(ctx, guild); {
	case err == nil:
		sc.Epoch = g.FirstSeen
		latest, err := a.Store.LatestEventAt(ctx, guild)
		if err != nil {
			return app.Source{}, err
		}
		if latest.After(from) {
			from = latest.Add(time.Millisecond)
		}
		if from.Before(sc.Epoch) {
			sc.Epoch = from
		}
	case !errors.Is(err, store.ErrNotFound):
		return app.Source{}, err
	}
	sim, err := simulate.New(sc)
	if err != nil {
		return app.Source{}, err
	}
	if err := a.Store.EnsureGuildTimezone(ctx, guild, sc.Epoch, cfg.SimTimezone); err != nil {
		return app.Source{}, err
	}
	// The demo guild comes configured to collect everything, as a real
	// guild's admin would choose; settings an admin saved are kept.
	if err := a.Privacy.EnsureSettings(ctx, demoSettings(guild, cfg.SimTimezone)); err != nil {
		return app.Source{}, err
	}
	if err := a.EnablePlugins(ctx, guild, pluginIDs, "simulate"); err != nil {
		return app.Source{}, err
	}
	log.Info("simulating a guild", "guild", guild, "members", cfg.SimMembers, "seed", cfg.SimSeed,
		"from", from.Format(time.RFC3339), "speed", cfg.SimSpeed)
	return app.Source{Name: "simulator", Run: func(ctx context.Context) error {
		return sim.Run(ctx, a.Pipe, from, cfg.SimSpeed)
	}}, nil
}

// demoSettings is the configuration of a simulated guild: everything
// collected, default retention.
func demoSettings(guild, timezone string) store.GuildSettings {
	return store.GuildSettings{GuildID: guild, Timezone: timezone, UpdatedBy: "simulator",
		Tracking:  store.Tracking{Presence: true, Messages: true, Typing: true, Voice: true, Members: true},
		Retention: store.DefaultRetention()}
}
