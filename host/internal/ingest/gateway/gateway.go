package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
)

// Handler receives every dispatch of a shard, in the order Discord sent
// them, from one goroutine per shard (so several shards call it
// concurrently). An error stops the source: return one only when going on
// is pointless, such as a closed pipeline or a full disk.
type Handler interface {
	HandleDispatch(ctx context.Context, d discord.Dispatch) error
}

// Leaser grants named, expiring leases (see package lease). *store.Store,
// *lease.Local and *lease.Redis implement it.
type Leaser interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Config configures a Source. Token, Handler and Leaser are required; zero
// tuning fields take the defaults noted.
type Config struct {
	// Token is the bot token, with or without the "Bot " prefix.
	Token string
	// Guilds, if not empty, is the allow-list of guild IDs: dispatches of
	// other guilds are dropped before the Handler sees them.
	Guilds []string
	// ShardCount is the total number of shards; 0 takes Discord's
	// recommendation from GET /gateway/bot.
	ShardCount int
	// Shards are the shard IDs this instance may run; nil means all. Each is
	// run only while this instance holds its lease.
	Shards  []int
	Handler Handler
	Leaser  Leaser
	// Content decides about the MESSAGE_CONTENT intent; nil never asks.
	Content ContentPolicy
	// APIURL is the REST API base; "" is Discord's (DefaultAPIURL).
	APIURL string
	// HTTPClient makes the REST calls; nil uses one with a 20 s timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Holder names this instance in leases; "" makes one from the host
	// name, the process ID and a random suffix.
	Holder string

	LeaseTTL           time.Duration // how long a dead holder keeps a shard; default 30s
	IdentifyInterval   time.Duration // between identifies of one rate-limit bucket; default 5s (Discord's)
	MemberRequestEvery time.Duration // between member requests for one guild; default 30s (Discord's)
	MemberRequestGap   time.Duration // between member requests on one connection; default 600ms
	ReconnectMin       time.Duration // first pause after a failed connect; default 1s
	ReconnectMax       time.Duration // longest pause; default 2m
	OpenTimeout        time.Duration // longest a connect-and-handshake may take; default 30s
	Buffer             int           // dispatches buffered per shard; default 4096
	DrainTimeout       time.Duration // how long stopping waits for buffered dispatches; default 10s
	// Now is the clock for receive times; nil means time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.LeaseTTL, 30*time.Second)
	setDur(&c.IdentifyInterval, 5*time.Second)
	setDur(&c.MemberRequestEvery, 30*time.Second)
	setDur(&c.MemberRequestGap, 600*time.Millisecond)
	setDur(&c.ReconnectMin, time.Second)
	setDur(&c.ReconnectMax, 2*time.Minute)
	setDur(&c.OpenTimeout, 30*time.Second)
	setDur(&c.DrainTimeout, 10*time.Second)
	if c.Buffer <= 0 {
		c.Buffer = 4096
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 20 * time.Second}
	}
	if c.Holder == "" {
		c.Holder = newHolder()
	}
}

// Source runs the shards of one bot.
type Source struct {
	cfg   Config
	token string // with the "Bot " prefix, as discordgo sends it
	bot   string // the bot's user ID, or "bot": scopes lease names
	allow map[string]bool
	rest  *http.Client
	log   *slog.Logger
	m     *metrics

	identifies atomic.Int64 // makes each identify's lease holder unique
}

// New checks cfg and returns a Source; nothing connects before Run.
func New(cfg Config) (*Source, error) {
	cfg.defaults()
	tok := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(cfg.Token), "Bot "))
	switch {
	case tok == "":
		return nil, errors.New("gateway: no bot token")
	case cfg.Handler == nil:
		return nil, errors.New("gateway: no handler")
	case cfg.Leaser == nil:
		return nil, errors.New("gateway: no leaser")
	}
	for _, id := range cfg.Shards {
		if id < 0 || (cfg.ShardCount > 0 && id >= cfg.ShardCount) {
			return nil, fmt.Errorf("gateway: shard %d is not in 0..%d", id, cfg.ShardCount-1)
		}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	s := &Source{
		cfg:   cfg,
		token: "Bot " + tok,
		bot:   botID(tok),
		rest:  restClient(cfg.HTTPClient, cfg.APIURL),
		log:   cfg.Logger.With("source", "discord"),
		m:     m,
	}
	if len(cfg.Guilds) > 0 {
		s.allow = make(map[string]bool, len(cfg.Guilds))
		for _, g := range cfg.Guilds {
			s.allow[g] = true
		}
	}
	return s, nil
}

// Holder returns this instance's name in leases.
func (s *Source) Holder() string { return s.cfg.Holder }

// Run connects the shards this instance may run and feeds their dispatches
// to the Handler until ctx ends (it then returns nil once every buffered
// dispatch is handled) or a failure retrying cannot fix (bad token,
// disallowed intents, a Handler error).
func (s *Source) Run(ctx context.Context) error {
	info, err := s.gatewayBot(ctx)
	if err != nil {
		return err
	}
	count := s.cfg.ShardCount
	if count <= 0 {
		count = max(info.Shards, 1)
	}
	conc := max(info.SessionStartLimit.MaxConcurrency, 1)
	ids := s.cfg.Shards
	if len(ids) == 0 {
		for i := range count {
			ids = append(ids, i)
		}
	}
	for _, id := range ids {
		if id >= count {
			return fmt.Errorf("gateway: shard %d configured, but there are only %d shards (0..%d)", id, count, count-1)
		}
	}
	s.log.Info("discord gateway starting", "shards", ids, "shard_count", count, "max_concurrency", conc,
		"instance", s.cfg.Holder, "guild_allow_list", len(s.allow), "intents", int(intents(false)))
	if sl := info.SessionStartLimit; sl.Total > 0 && sl.Remaining == 0 {
		s.log.Warn("Discord says this bot has no session starts left today; identifies will fail until the limit resets",
			"reset_after", time.Duration(sl.ResetAfter)*time.Millisecond)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(ids))
	for _, id := range ids {
		go func() { errc <- s.holdShard(ctx, id, count, conc) }()
	}
	var first error
	for range ids {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// gatewayBot asks Discord for the recommended shard count and the identify
// concurrency, retrying while Discord cannot be reached. A 401 means the
// token is wrong, which retrying cannot fix.
func (s *Source) gatewayBot(ctx context.Context) (*discordgo.GatewayBotResponse, error) {
	sess, _ := discordgo.New(s.token) // New never fails
	sess.Client = s.rest
	sess.LogLevel = -1
	wait := s.cfg.ReconnectMin
	for {
		info, err := sess.GatewayBot(discordgo.WithContext(ctx))
		if err == nil {
			return info, nil
		}
		var re *discordgo.RESTError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w (HTTP 401 from GET /gateway/bot): set SPYWATCHER_DISCORD_TOKEN to the token shown under Bot → Reset Token in the Developer Portal (%s)", ErrInvalidToken, portal)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Warn("cannot reach Discord; retrying", "in", wait, "err", err)
		if !sleep(ctx, jitter(wait)) {
			return nil, ctx.Err()
		}
		wait = min(wait*2, s.cfg.ReconnectMax)
	}
}

// errLeaseLost ends a shard's run when its lease could not be renewed.
var errLeaseLost = errors.New("gateway: shard lease lost")

// holdShard runs shard id whenever this instance holds its lease, until ctx
// ends or the shard fails for good.
func (s *Source) holdShard(ctx context.Context, id, count, conc int) error {
	name := fmt.Sprintf("discord:%s:shard:%d/%d", s.bot, id, count)
	log := s.log.With("shard", fmt.Sprintf("%d/%d", id, count))
	poll := s.cfg.LeaseTTL / 3
	waiting := false
	for {
		ok, err := s.cfg.Leaser.AcquireLease(ctx, name, s.cfg.Holder, s.cfg.LeaseTTL)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn("cannot take the shard lease; retrying", "err", err)
		}
		if !ok {
			if !waiting && err == nil {
				log.Info("shard is run by another instance; standing by to take over")
				waiting = true
			}
			if !sleep(ctx, poll) {
				return nil
			}
			continue
		}
		waiting = false
		log.Info("shard lease taken", "instance", s.cfg.Holder)
		s.m.shards.Inc()
		err = s.whileHolding(ctx, name, log, func(ctx context.Context) error {
			return newShard(s, id, count, conc, log).run(ctx)
		})
		s.m.shards.Dec()
		switch {
		case errors.Is(err, errLeaseLost):
			continue // stand by like any other instance
		case err != nil:
			return err
		}
		// Stopping: let another instance take over at once.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := s.cfg.Leaser.ReleaseLease(rctx, name, s.cfg.Holder); err != nil {
			log.Warn("cannot release the shard lease; another instance takes over when it expires", "err", err)
		}
		cancel()
		return nil
	}
}

// whileHolding runs run while renewing the lease every third of its TTL.
// When renewing fails long enough that the lease might expire (two thirds of
// the TTL after the last renewal), or another holder has it, run's context
// is cancelled and errLeaseLost returned: the margin keeps this instance from
// ingesting while another already does, even with some clock skew.
func (s *Source) whileHolding(ctx context.Context, name string, log *slog.Logger, run func(context.Context) error) error {
	ttl := s.cfg.LeaseTTL
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(rctx) }()
	renewed := time.Now()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
		// A renewal that hangs must not outlive the lease: it gets a third
		// of the TTL, so a stalled database is noticed in time too.
		actx, cancelAcquire := context.WithTimeout(ctx, ttl/3)
		ok, err := s.cfg.Leaser.AcquireLease(actx, name, s.cfg.Holder, ttl)
		cancelAcquire()
		if ok {
			renewed = time.Now()
			continue
		}
		if ctx.Err() != nil {
			continue // stopping; run sees it too
		}
		if err == nil || time.Since(renewed) >= ttl-ttl/3 {
			log.Error("shard lease lost; stopping the shard", "taken_by_another", err == nil, "err", err)
			cancel()
			if err := <-done; err != nil {
				return err
			}
			return errLeaseLost
		}
		log.Warn("cannot renew the shard lease; retrying", "err", err)
	}
}

// waitIdentify takes the identify lease of a rate-limit bucket: Discord lets
// max_concurrency shards, one per bucket, identify per 5 s. The lease is
// never released; it expires after IdentifyInterval.
func (s *Source) waitIdentify(ctx context.Context, bucket int) error {
	name := fmt.Sprintf("discord:%s:identify:%d", s.bot, bucket)
	holder := fmt.Sprintf("%s#%d", s.cfg.Holder, s.identifies.Add(1))
	poll := max(s.cfg.IdentifyInterval/10, 10*time.Millisecond)
	for {
		ok, err := s.cfg.Leaser.AcquireLease(ctx, name, holder, s.cfg.IdentifyInterval)
		if ok {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("cannot take the identify lease; retrying", "err", err)
		}
		if !sleep(ctx, poll) {
			return ctx.Err()
		}
	}
}

// intents returns the intents to identify with.
func (s *Source) intents(ctx context.Context) discordgo.Intent {
	if s.cfg.Content == nil {
		return intents(false)
	}
	need, err := s.cfg.Content.NeedsMessageContent(ctx)
	if err != nil {
		// Without an answer, do not receive content: it is the private choice.
		s.log.Warn("cannot tell whether message content is needed; identifying without MESSAGE_CONTENT", "err", err)
		return intents(false)
	}
	return intents(need)
}

// botID returns the bot's user ID, which the first part of a bot token
// encodes, so that bots sharing a database do not share leases.
func botID(token string) string {
	first, _, _ := strings.Cut(token, ".")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(first); err == nil && len(b) > 0 && len(b) <= 20 && allDigits(b) {
			return string(b)
		}
	}
	return "bot"
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func newHolder() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	var r [3]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter spreads retries of many shards and instances: d scaled by [0.5, 1).
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}
