package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/config"
	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway"
	"github.com/spywatcher/spywatcher/host/internal/lease"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// GatewaySource builds the live Discord source of `spywatcher serve`
// (SPYWATCHER_DISCORD_TOKEN set): dispatches are normalised into the
// pipeline. Shard leases live in Redis when SPYWATCHER_REDIS_URL is set,
// else in the database, so that instances sharing either split the shards.
func (a *App) GatewaySource() (Source, error) {
	var leaser gateway.Leaser = a.Store
	closeLeaser := func() {}
	if a.cfg.RedisURL != "" {
		opts, err := redis.ParseURL(a.cfg.RedisURL)
		if err != nil {
			return Source{}, fmt.Errorf("redis url: %w", err)
		}
		rc := redis.NewClient(opts)
		leaser = lease.NewRedis(rc, "spywatcher:lease:")
		closeLeaser = func() { rc.Close() }
	}
	in, err := gateway.NewIngest(discord.NewNormalizer(storeRoles{a.Store}), a.Pipe, a.log, a.reg)
	if err != nil {
		closeLeaser()
		return Source{}, err
	}
	gc := gatewayConfig(a.cfg, a.log, a.reg, in, leaser)
	gc.Content = a.Plugins // asks for message content only when a guild granted it
	src, err := gateway.New(gc)
	if err != nil {
		closeLeaser()
		return Source{}, err
	}
	return Source{Name: "discord", Run: func(ctx context.Context) error {
		defer closeLeaser()
		return src.Run(ctx)
	}}, nil
}

// NewRecorder builds the gateway source of `spywatcher record`, which writes
// every dispatch to w instead of ingesting it. It runs alone, outside any
// host, so its leases are in-process: recording beside a running host
// opens a session of its own.
func NewRecorder(cfg *config.Config, log *slog.Logger, w io.Writer) (*gateway.Source, *gateway.Recorder, error) {
	rec := gateway.NewRecorder(w)
	src, err := gateway.New(gatewayConfig(cfg, log, nil, rec, &lease.Local{}))
	if err != nil {
		return nil, nil, err
	}
	return src, rec, nil
}

func gatewayConfig(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, h gateway.Handler, l gateway.Leaser) gateway.Config {
	return gateway.Config{
		Token:      cfg.DiscordToken,
		Guilds:     cfg.DiscordGuilds,
		ShardCount: cfg.DiscordShardCount,
		Shards:     cfg.DiscordShards,
		Handler:    h,
		Leaser:     l,
		APIURL:     cfg.DiscordAPIURL,
		Logger:     log,
		Registerer: reg,
		LeaseTTL:   cfg.DiscordLeaseTTL,
	}
}

// storeRoles lets the normaliser diff a member's roles against the store
// when it has not seen the member since start.
type storeRoles struct{ st *store.Store }

func (r storeRoles) MemberRoles(ctx context.Context, guildID, userID string) ([]string, bool, error) {
	return r.st.KnownMemberRoles(ctx, guildID, userID)
}
