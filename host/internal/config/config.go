// Package config is Spywatcher's one table of settings. Each setting has a
// flag, an environment variable, a default, a parser that validates, and a
// secret mark that keeps its value out of dumps and logs. Flags override the
// environment, which overrides defaults.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Config holds every setting of the host.
type Config struct {
	Addr            string
	DataDir         string
	DatabaseURL     string
	DBMaxConns      int
	RedisURL        string
	AdminToken      string
	LogLevel        slog.Level
	LogFormat       string
	ShutdownTimeout time.Duration
	MaxBodyBytes    int64

	Simulate    bool
	SimMembers  int
	SimSeed     int64
	SimSpeed    float64
	SimHistory  time.Duration
	SimTimezone string

	DiscordToken      string
	DiscordGuilds     []string
	DiscordShardCount int
	DiscordShards     []int
	DiscordLeaseTTL   time.Duration
	DiscordAPIURL     string

	QueueSize     int
	BatchSize     int
	FlushInterval time.Duration
	IngestWriters int
	// WSWriteInterval is the live stream's shortest time between two
	// writes to one connection.
	WSWriteInterval time.Duration

	PluginMemoryMB        int
	PluginQuarantineAfter int
	FetchAllowPrivate     []netip.Prefix

	PluginsDir    string
	ScoreInterval time.Duration
	ScoreWindow   time.Duration
	ScoreBatch    int

	SecretKey          string
	AccessTokenTTL     time.Duration
	SessionTTL         time.Duration
	SigningKeyRotation time.Duration
	CookieSecure       string
	CORSOrigins        []string
	TrustedProxies     []netip.Prefix
	RateLimitIP        int
	RateLimitUser      int
	RateLimitLogin     int
	APIKeyTiers        string
	APIKeyTier         string
	Discord            DiscordConfig

	WebDevURL string
	// Roles this instance runs (see HasRole); JobLeaseTTL and DBPgBouncer
	// are scale-out settings (OPERATIONS.md).
	Roles       []string
	JobLeaseTTL time.Duration
	DBPgBouncer bool
	// Privacy and the data lifecycle (host/internal/privacy).
	OldSecretKeys     []string
	GuildRemovalGrace time.Duration
	RetentionInterval time.Duration
	RetentionBatch    int
}

// The roles of `serve --roles`: one binary, scaled per role.
const (
	RoleAPI    = "api"    // the REST API and the web UI
	RoleWS     = "ws"     // live dashboards over WebSocket
	RoleIngest = "ingest" // sources (Discord gateway, simulator) feeding the pipeline
	RoleJobs   = "jobs"   // background jobs: plugin ticks, scoring, retention purge
)

// AllRoles lists every role, in the order help shows them.
var AllRoles = []string{RoleAPI, RoleWS, RoleIngest, RoleJobs}

// HasRole reports whether this instance runs role.
func (c *Config) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// DiscordConfig is the Discord OAuth2 application; empty ClientID turns
// Discord login off. Its REST calls go to DiscordAPIURL, like the gateway's.
type DiscordConfig struct {
	ClientID     string
	ClientSecret string
	RedirectURL  string
	AuthorizeURL string
	TokenURL     string
}

// DSN returns the database to use: DatabaseURL, or the SQLite file in DataDir.
func (c *Config) DSN() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, "spywatcher.db")
}

// Writers is the number of concurrent ingest writers: the setting, or what
// suits the database (SQLite has one writer; PostgreSQL overlaps batches).
func (c *Config) Writers() int {
	if c.IngestWriters > 0 {
		return c.IngestWriters
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		return 3
	}
	return 1
}

// Setting is one row of the table.
type Setting struct {
	Name    string // flag name, without dashes
	Env     string
	Default string
	Usage   string
	Secret  bool
	IsBool  bool
	apply   func(c *Config, v string) error
	get     func(c *Config) string
}

// Settings returns the table, in the order help lists it.
func Settings() []Setting {
	return []Setting{
		str("addr", "SPYWATCHER_ADDR", "127.0.0.1:8080", "HTTP listen address (host:port)",
			func(c *Config) *string { return &c.Addr }, validAddr),
		str("data-dir", "SPYWATCHER_DATA_DIR", "data", "directory for the SQLite database, spill files and caches",
			func(c *Config) *string { return &c.DataDir }, nonEmpty),
		secret(str("database-url", "SPYWATCHER_DATABASE_URL", "", "PostgreSQL URL (postgres://user:pass@host/db); empty uses SQLite in the data directory",
			func(c *Config) *string { return &c.DatabaseURL }, validDatabaseURL)),
		integer("db-max-conns", "SPYWATCHER_DB_MAX_CONNS", "10", "largest database connection pool (readers, for SQLite)",
			func(c *Config) *int { return &c.DBMaxConns }, 1, 1000),
		secret(str("redis-url", "SPYWATCHER_REDIS_URL", "", "Redis URL (redis://host:6379/0) shared by several host instances; empty keeps everything in-process",
			func(c *Config) *string { return &c.RedisURL }, validRedisURL)),
		secret(str("admin-token", "SPYWATCHER_ADMIN_TOKEN", "", "admin API token; empty generates one on first start and prints it once",
			func(c *Config) *string { return &c.AdminToken }, validToken)),
		{Name: "log-level", Env: "SPYWATCHER_LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error",
			apply: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) },
			get:   func(c *Config) string { return strings.ToLower(c.LogLevel.String()) }},
		str("log-format", "SPYWATCHER_LOG_FORMAT", "text", "text or json",
			func(c *Config) *string { return &c.LogFormat }, oneOf("text", "json")),
		duration("shutdown-timeout", "SPYWATCHER_SHUTDOWN_TIMEOUT", "30s", "how long SIGTERM waits for queued events to be stored",
			func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		{Name: "max-body-bytes", Env: "SPYWATCHER_MAX_BODY_BYTES", Default: "8388608", Usage: "largest accepted request body",
			apply: func(c *Config, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 1024 || n > 1<<30 {
					return errors.New("must be a number of bytes between 1024 and 1073741824")
				}
				c.MaxBodyBytes = n
				return nil
			},
			get: func(c *Config) string { return strconv.FormatInt(c.MaxBodyBytes, 10) }},

		boolean("simulate", "SPYWATCHER_SIMULATE", "false", "feed a simulated guild into the host",
			func(c *Config) *bool { return &c.Simulate }),
		integer("simulate-members", "SPYWATCHER_SIMULATE_MEMBERS", "300", "members of the simulated guild",
			func(c *Config) *int { return &c.SimMembers }, 1, 1_000_000),
		{Name: "simulate-seed", Env: "SPYWATCHER_SIMULATE_SEED", Default: "1", Usage: "seed of the simulated guild (same seed, same guild)",
			apply: func(c *Config, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return errors.New("must be an integer")
				}
				c.SimSeed = n
				return nil
			},
			get: func(c *Config) string { return strconv.FormatInt(c.SimSeed, 10) }},
		{Name: "simulate-speed", Env: "SPYWATCHER_SIMULATE_SPEED", Default: "3600", Usage: "simulated seconds per real second while catching up with the present",
			apply: func(c *Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 1 || f > 1e7 {
					return errors.New("must be a number between 1 and 10000000")
				}
				c.SimSpeed = f
				return nil
			},
			get: func(c *Config) string { return strconv.FormatFloat(c.SimSpeed, 'g', -1, 64) }},
		duration("simulate-history", "SPYWATCHER_SIMULATE_HISTORY", "72h", "how much past the simulator fills in before going live",
			func(c *Config) *time.Duration { return &c.SimHistory }),
		str("simulate-timezone", "SPYWATCHER_SIMULATE_TIMEZONE", "UTC", "IANA time zone of the simulated community's day/night rhythm",
			func(c *Config) *string { return &c.SimTimezone }, validTimezone),

		secret(str("discord-token", "SPYWATCHER_DISCORD_TOKEN", "", "bot token from the Discord Developer Portal; set, it turns on the Discord gateway source",
			func(c *Config) *string { return &c.DiscordToken }, validDiscordToken)),
		{Name: "discord-guilds", Env: "SPYWATCHER_DISCORD_GUILDS", Default: "", Usage: "comma-separated guild IDs to watch; empty watches every guild the bot is in",
			apply: func(c *Config, v string) error {
				ids, err := parseGuildIDs(v)
				c.DiscordGuilds = ids
				return err
			},
			get: func(c *Config) string { return strings.Join(c.DiscordGuilds, ",") }},
		integer("discord-shard-count", "SPYWATCHER_DISCORD_SHARD_COUNT", "0", "gateway shards in total; 0 uses Discord's recommendation",
			func(c *Config) *int { return &c.DiscordShardCount }, 0, 100_000),
		{Name: "discord-shards", Env: "SPYWATCHER_DISCORD_SHARDS", Default: "", Usage: "shard IDs this instance may run, like 0,2,4-7; empty: any (each shard runs on exactly one instance)",
			apply: func(c *Config, v string) error {
				ids, err := parseShardIDs(v)
				c.DiscordShards = ids
				return err
			},
			get: func(c *Config) string { return formatShardIDs(c.DiscordShards) }},
		duration("discord-lease-ttl", "SPYWATCHER_DISCORD_LEASE_TTL", "30s", "how long a shard stays with an instance that stopped renewing its lease before another instance takes it over",
			func(c *Config) *time.Duration { return &c.DiscordLeaseTTL }),
		str("discord-api-url", "SPYWATCHER_DISCORD_API_URL", "https://discord.com/api/v9", "Discord REST API base URL (change it to go through a REST proxy)",
			func(c *Config) *string { return &c.DiscordAPIURL }, validHTTPURL),

		integer("queue-size", "SPYWATCHER_QUEUE_SIZE", "65536", "events the ingest queue holds before shedding presence and pushing back",
			func(c *Config) *int { return &c.QueueSize }, 16, 10_000_000),
		integer("batch-size", "SPYWATCHER_BATCH_SIZE", "32768", "most events stored per transaction (fewer, larger transactions write each index page to the log once)",
			func(c *Config) *int { return &c.BatchSize }, 1, 100_000),
		duration("flush-interval", "SPYWATCHER_FLUSH_INTERVAL", "50ms", "longest an event waits for its batch to fill",
			func(c *Config) *time.Duration { return &c.FlushInterval }),
		integer("ingest-writers", "SPYWATCHER_INGEST_WRITERS", "0", "batches stored at once (partitioned by member); 0 picks 1 for SQLite, 3 for PostgreSQL",
			func(c *Config) *int { return &c.IngestWriters }, 0, 64),
		duration("ws-write-interval", "SPYWATCHER_WS_WRITE_INTERVAL", "50ms", "shortest time between two writes to one live-stream connection; what comes sooner goes out together (shorter: fresher dashboards, more CPU per connection)",
			func(c *Config) *time.Duration { return &c.WSWriteInterval }),

		integer("plugin-memory-mb", "SPYWATCHER_PLUGIN_MEMORY_MB", "512", "memory all live plugin instances may use together; idle ones beyond it are evicted",
			func(c *Config) *int { return &c.PluginMemoryMB }, 16, 1<<20),
		integer("plugin-quarantine-after", "SPYWATCHER_PLUGIN_QUARANTINE_AFTER", "5", "consecutive failures after which a plugin is quarantined in a guild",
			func(c *Config) *int { return &c.PluginQuarantineAfter }, 1, 1000),
		{Name: "fetch-allow-private", Env: "SPYWATCHER_FETCH_ALLOW_PRIVATE", Default: "", Usage: "comma-separated private networks (CIDR) plugins' http.fetch may reach, for internal webhooks; metadata addresses stay blocked",
			apply: func(c *Config, v string) error {
				c.FetchAllowPrivate = nil
				for _, part := range strings.Split(v, ",") {
					if part = strings.TrimSpace(part); part == "" {
						continue
					}
					p, err := netip.ParsePrefix(part)
					if err != nil {
						return fmt.Errorf("%q is not a CIDR network such as 10.1.2.0/24", part)
					}
					c.FetchAllowPrivate = append(c.FetchAllowPrivate, p.Masked())
				}
				return nil
			},
			get: func(c *Config) string {
				parts := make([]string, len(c.FetchAllowPrivate))
				for i, p := range c.FetchAllowPrivate {
					parts[i] = p.String()
				}
				return strings.Join(parts, ",")
			}},

		str("plugins-dir", "SPYWATCHER_PLUGINS_DIR", "", "a directory of built plugins (one plugin.json per subdirectory, as make plugins writes them) installed or upgraded at start; with --simulate they are also enabled and granted in the simulated guild",
			func(c *Config) *string { return &c.PluginsDir }, func(string) error { return nil }),
		duration("score-interval", "SPYWATCHER_SCORE_INTERVAL", "15m", "how often each guild's members are scored by its scorer plugins",
			func(c *Config) *time.Duration { return &c.ScoreInterval }),
		duration("score-window", "SPYWATCHER_SCORE_WINDOW", "168h", "the window of the statistics scorers receive",
			func(c *Config) *time.Duration { return &c.ScoreWindow }),
		integer("score-batch", "SPYWATCHER_SCORE_BATCH", "500", "members per call of a scorer's score hook",
			func(c *Config) *int { return &c.ScoreBatch }, 1, 5000),

		secret(str("secret-key", "SPYWATCHER_SECRET_KEY", "", "encrypts at rest the access token signing keys, plugin key-value data and OAuth PKCE verifiers (at least 32 characters); to change it, see --old-secret-keys and `spywatcher keys rotate`",
			func(c *Config) *string { return &c.SecretKey }, minLen(32))),
		duration("access-token-ttl", "SPYWATCHER_ACCESS_TOKEN_TTL", "15m", "lifetime of an access token (JWT)",
			func(c *Config) *time.Duration { return &c.AccessTokenTTL }),
		duration("session-ttl", "SPYWATCHER_SESSION_TTL", "720h", "how long a login lasts without logging in again (refresh token lifetime)",
			func(c *Config) *time.Duration { return &c.SessionTTL }),
		duration("signing-key-rotation", "SPYWATCHER_SIGNING_KEY_ROTATION", "24h", "how often a new access token signing key is made",
			func(c *Config) *time.Duration { return &c.SigningKeyRotation }),
		str("cookie-secure", "SPYWATCHER_COOKIE_SECURE", "auto", "Secure session cookies: auto (when the request came over TLS, or X-Forwarded-Proto says https), always or never",
			func(c *Config) *string { return &c.CookieSecure }, oneOf("auto", "always", "never")),
		str("web-dev-url", "SPYWATCHER_WEB_DEV_URL", "", "development: proxy the dashboard to this Vite dev server (http://127.0.0.1:5173) instead of serving the embedded build",
			func(c *Config) *string { return &c.WebDevURL }, func(v string) error {
				if v == "" {
					return nil
				}
				return validHTTPURL(v)
			}),
		{Name: "cors-origins", Env: "SPYWATCHER_CORS_ORIGINS", Default: "", Usage: "comma-separated origins (https://dash.example) whose pages may call the API with credentials",
			apply: func(c *Config, v string) error {
				c.CORSOrigins = nil
				for _, o := range strings.Split(v, ",") {
					if o = strings.TrimSpace(o); o == "" {
						continue
					}
					if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") || strings.Count(o, "/") != 2 {
						return fmt.Errorf("origin %q must be scheme://host[:port]", o)
					}
					c.CORSOrigins = append(c.CORSOrigins, o)
				}
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.CORSOrigins, ",") }},
		{Name: "trusted-proxies", Env: "SPYWATCHER_TRUSTED_PROXIES", Default: "127.0.0.1/32,::1/128", Usage: "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed",
			apply: func(c *Config, v string) error {
				c.TrustedProxies = nil
				for _, s := range strings.Split(v, ",") {
					if s = strings.TrimSpace(s); s == "" {
						continue
					}
					p, err := netip.ParsePrefix(s)
					if err != nil {
						a, aerr := netip.ParseAddr(s)
						if aerr != nil {
							return fmt.Errorf("%q is not an address or CIDR", s)
						}
						p = netip.PrefixFrom(a, a.BitLen())
					}
					c.TrustedProxies = append(c.TrustedProxies, p.Masked())
				}
				return nil
			},
			get: func(c *Config) string {
				out := make([]string, len(c.TrustedProxies))
				for i, p := range c.TrustedProxies {
					out[i] = p.String()
				}
				return strings.Join(out, ",")
			}},
		integer("rate-limit-ip", "SPYWATCHER_RATE_LIMIT_IP", "1200", "requests per minute from one address (0: unlimited)",
			func(c *Config) *int { return &c.RateLimitIP }, 0, 10_000_000),
		integer("rate-limit-user", "SPYWATCHER_RATE_LIMIT_USER", "1200", "requests per minute of one logged-in user or admin token (0: unlimited)",
			func(c *Config) *int { return &c.RateLimitUser }, 0, 10_000_000),
		integer("rate-limit-login", "SPYWATCHER_RATE_LIMIT_LOGIN", "20", "login and token refresh attempts per minute from one address",
			func(c *Config) *int { return &c.RateLimitLogin }, 1, 1_000_000),
		str("api-key-tiers", "SPYWATCHER_API_KEY_TIERS", "free=60/10000,standard=600/200000,unlimited=100000/1000000000", "API key tiers: name=requestsPerMinute/requestsPerDay, comma-separated",
			func(c *Config) *string { return &c.APIKeyTiers }, validTiers),
		str("api-key-tier", "SPYWATCHER_API_KEY_TIER", "standard", "tier of new API keys when none is asked for",
			func(c *Config) *string { return &c.APIKeyTier }, nonEmpty),
		str("discord-client-id", "SPYWATCHER_DISCORD_CLIENT_ID", "", "Discord OAuth2 application ID; empty turns Discord login off",
			func(c *Config) *string { return &c.Discord.ClientID }, func(string) error { return nil }),
		secret(str("discord-client-secret", "SPYWATCHER_DISCORD_CLIENT_SECRET", "", "Discord OAuth2 client secret",
			func(c *Config) *string { return &c.Discord.ClientSecret }, func(string) error { return nil })),
		str("discord-redirect-url", "SPYWATCHER_DISCORD_REDIRECT_URL", "http://127.0.0.1:8080/api/v1/auth/discord/callback", "this host's callback URL as registered with Discord",
			func(c *Config) *string { return &c.Discord.RedirectURL }, validHTTPURL),
		str("discord-authorize-url", "SPYWATCHER_DISCORD_AUTHORIZE_URL", "https://discord.com/oauth2/authorize", "Discord's OAuth2 authorization endpoint",
			func(c *Config) *string { return &c.Discord.AuthorizeURL }, validHTTPURL),
		str("discord-token-url", "SPYWATCHER_DISCORD_TOKEN_URL", "https://discord.com/api/oauth2/token", "Discord's OAuth2 token endpoint",
			func(c *Config) *string { return &c.Discord.TokenURL }, validHTTPURL),

		{Name: "roles", Env: "SPYWATCHER_ROLES", Default: "api,ws,ingest,jobs", Usage: "comma-separated roles this instance runs: api, ws, ingest, jobs (health and metrics are always served)",
			apply: func(c *Config, v string) error {
				c.Roles = nil
				for _, r := range strings.Split(v, ",") {
					if r = strings.TrimSpace(r); r == "" {
						continue
					}
					if r == "all" {
						c.Roles = append(c.Roles[:0], AllRoles...)
						return nil
					}
					if !slices.Contains(AllRoles, r) {
						return fmt.Errorf("unknown role %q (roles: %s)", r, strings.Join(AllRoles, ", "))
					}
					if !slices.Contains(c.Roles, r) {
						c.Roles = append(c.Roles, r)
					}
				}
				if len(c.Roles) == 0 {
					return errors.New("name at least one role")
				}
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.Roles, ",") }},
		duration("job-lease-ttl", "SPYWATCHER_JOB_LEASE_TTL", "30s", "how long a background job (per guild) stays with an instance that stopped renewing its lease before another jobs instance takes it over",
			func(c *Config) *time.Duration { return &c.JobLeaseTTL }),
		boolean("db-pgbouncer", "SPYWATCHER_DB_PGBOUNCER", "false", "the PostgreSQL URL points at PgBouncer in transaction pooling mode: no named prepared statements",
			func(c *Config) *bool { return &c.DBPgBouncer }),
		// Privacy and the data lifecycle.
		secret(Setting{Name: "old-secret-keys", Env: "SPYWATCHER_OLD_SECRET_KEYS", Default: "",
			Usage: "comma-separated previous --secret-key values: what they sealed stays readable until `spywatcher keys rotate` re-seals it under the current key",
			apply: func(c *Config, v string) error {
				c.OldSecretKeys = nil
				for _, k := range strings.Split(v, ",") {
					if k = strings.TrimSpace(k); k == "" {
						continue
					}
					if len(k) < 32 {
						return errors.New("every old secret key has at least 32 characters")
					}
					c.OldSecretKeys = append(c.OldSecretKeys, k)
				}
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.OldSecretKeys, ",") }}),
		duration("guild-removal-grace", "SPYWATCHER_GUILD_REMOVAL_GRACE", "72h", "how long a guild's data is kept after the bot leaves it or an admin removes it, before it is deleted",
			func(c *Config) *time.Duration { return &c.GuildRemovalGrace }),
		duration("retention-interval", "SPYWATCHER_RETENTION_INTERVAL", "1h", "how often expired data (past each guild's retention windows) and removed guilds are deleted",
			func(c *Config) *time.Duration { return &c.RetentionInterval }),
		integer("retention-batch", "SPYWATCHER_RETENTION_BATCH", "5000", "most rows one retention or deletion statement removes (bounds how long it holds locks)",
			func(c *Config) *int { return &c.RetentionBatch }, 100, 1000000),
	}
}

// Load builds a Config from defaults, then the environment, then args.
// Remaining non-flag arguments are returned. On -h/--help it writes the
// table to out and returns flag.ErrHelp. extra may define flags of one
// command that are not settings (such as an output file).
func Load(name string, args []string, getenv func(string) string, out io.Writer, extra ...func(*flag.FlagSet)) (*Config, []string, error) {
	c := &Config{}
	table := Settings()
	for _, s := range table {
		if err := s.apply(c, s.Default); err != nil {
			return nil, nil, fmt.Errorf("config: default of %s %q: %w", s.Name, s.Default, err)
		}
	}
	for _, s := range table {
		if v := getenv(s.Env); v != "" {
			if err := s.apply(c, v); err != nil {
				return nil, nil, fmt.Errorf("config: %s=%s: %w", s.Env, shown(s, v), err)
			}
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The flag package quotes the raw value in its errors; keep our own
	// error so that a secret given on the command line is not echoed.
	var badFlag error
	for _, s := range table {
		s := s
		set := func(v string) error {
			if err := s.apply(c, v); err != nil {
				badFlag = fmt.Errorf("config: --%s %s: %w", s.Name, shown(s, v), err)
				return err
			}
			return nil
		}
		if s.IsBool {
			fs.BoolFunc(s.Name, s.Usage, set)
		} else {
			fs.Func(s.Name, s.Usage, set)
		}
	}
	for _, f := range extra {
		f(fs)
	}
	// Flags may follow positional arguments ("plugin enable counter --guild
	// 1"), as people type them; "--" ends flag parsing.
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, nil, loadError(err, badFlag, fs, out, name, extra)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
	return c, positional, nil
}

// loadError explains a flag parsing failure, printing the usage on -h.
func loadError(err, badFlag error, fs *flag.FlagSet, out io.Writer, name string, extra []func(*flag.FlagSet)) error {
	if !errors.Is(err, flag.ErrHelp) {
		if badFlag != nil {
			return badFlag
		}
		return fmt.Errorf("config: %w (see %s --help)", err, name)
	}
	if len(extra) > 0 {
		fmt.Fprintf(out, "Flags of %s:\n", name)
		table := map[string]bool{}
		for _, s := range Settings() {
			table[s.Name] = true
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !table[f.Name] {
				fmt.Fprintf(out, "  --%-22s %s\n", f.Name, f.Usage)
			}
		})
		fmt.Fprintln(out)
	}
	Usage(out, name)
	return err
}

// Usage writes the settings table.
func Usage(w io.Writer, name string) {
	fmt.Fprintf(w, "Usage: spywatcher %s [flags]\n\nEvery flag can also be set by its environment variable; flags win.\n\n", name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tENVIRONMENT\tDEFAULT\tDESCRIPTION")
	for _, s := range Settings() {
		def := s.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(tw, "--%s\t%s\t%s\t%s\n", s.Name, s.Env, def, s.Usage)
	}
	tw.Flush()
}

// Dump returns every setting's current value, with secrets redacted, for
// logging the effective configuration.
func (c *Config) Dump() []any {
	var out []any
	for _, s := range Settings() {
		v := s.get(c)
		if s.Secret && v != "" {
			v = "[redacted]"
		}
		out = append(out, slog.String(s.Name, v))
	}
	return out
}

func shown(s Setting, v string) string {
	if s.Secret {
		return "[redacted]"
	}
	return strconv.Quote(v)
}

func secret(s Setting) Setting { s.Secret = true; return s }

func str(name, env, def, usage string, field func(*Config) *string, validate func(string) error) Setting {
	return Setting{Name: name, Env: env, Default: def, Usage: usage,
		apply: func(c *Config, v string) error {
			if err := validate(v); err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return *field(c) }}
}

func integer(name, env, def, usage string, field func(*Config) *int, lo, hi int) Setting {
	return Setting{Name: name, Env: env, Default: def, Usage: usage,
		apply: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				return fmt.Errorf("must be an integer between %d and %d", lo, hi)
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*field(c)) }}
}

func duration(name, env, def, usage string, field func(*Config) *time.Duration) Setting {
	return Setting{Name: name, Env: env, Default: def, Usage: usage,
		apply: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("must be a positive duration such as 500ms, 30s or 72h")
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return field(c).String() }}
}

func boolean(name, env, def, usage string, field func(*Config) *bool) Setting {
	return Setting{Name: name, Env: env, Default: def, Usage: usage, IsBool: true,
		apply: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) }}
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func validAddr(v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return errors.New("must be host:port, for example 127.0.0.1:8080 or :8080")
	}
	return nil
}

func validDatabaseURL(v string) error {
	if v == "" || strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://") || strings.HasPrefix(v, "sqlite:") {
		return nil
	}
	return errors.New("must start with postgres:// or postgresql:// (or sqlite:PATH)")
}

func validRedisURL(v string) error {
	if v == "" || strings.HasPrefix(v, "redis://") || strings.HasPrefix(v, "rediss://") {
		return nil
	}
	return errors.New("must start with redis:// or rediss://")
}

func validToken(v string) error {
	if v != "" && len(v) < 16 {
		return errors.New("must be at least 16 characters")
	}
	return nil
}

func validTimezone(v string) error {
	if _, err := time.LoadLocation(v); err != nil {
		return fmt.Errorf("unknown time zone (want an IANA name like Europe/Berlin)")
	}
	return nil
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, x := range vals {
			if v == x {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

func validDiscordToken(v string) error {
	if strings.ContainsAny(strings.TrimPrefix(v, "Bot "), " \t\r\n") {
		return errors.New("must be the bot token alone (spaces found; copy it again from the Developer Portal)")
	}
	return nil
}

func parseGuildIDs(v string) ([]string, error) {
	var ids []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, err := strconv.ParseUint(f, 10, 64); err != nil {
			return nil, fmt.Errorf("%q is not a Discord guild ID", f)
		}
		ids = append(ids, f)
	}
	return ids, nil
}

// parseShardIDs reads "0,2,4-7" into sorted, distinct shard IDs.
func parseShardIDs(v string) ([]int, error) {
	seen := map[int]bool{}
	var ids []int
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b-a > 100_000 {
			return nil, fmt.Errorf("%q is not a shard ID or range like 4-7", f)
		}
		for i := a; i <= b; i++ {
			if !seen[i] {
				seen[i] = true
				ids = append(ids, i)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func formatShardIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

func validHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http:// or https:// URL")
	}
	return nil
}

func minLen(n int) func(string) error {
	return func(v string) error {
		if v != "" && len(v) < n {
			return fmt.Errorf("must be at least %d characters", n)
		}
		return nil
	}
}

// validTiers checks the syntax name=perMinute/perDay,...
func validTiers(v string) error {
	n := 0
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, lim, ok := strings.Cut(part, "=")
		pm, pd, ok2 := strings.Cut(lim, "/")
		m, err1 := strconv.Atoi(pm)
		d, err2 := strconv.Atoi(pd)
		if !ok || !ok2 || name == "" || err1 != nil || err2 != nil || m < 1 || d < 1 {
			return fmt.Errorf("tier %q: want name=perMinute/perDay", part)
		}
		n++
	}
	if n == 0 {
		return errors.New("name at least one tier")
	}
	return nil
}
