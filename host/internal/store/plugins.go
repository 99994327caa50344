package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// InstalledPlugin is a plugin's active version.
type InstalledPlugin struct {
	ID          string          `json:"id"`
	Version     string          `json:"version"`
	Manifest    json.RawMessage `json:"manifest"`
	SHA256      string          `json:"sha256"`
	InstalledAt time.Time       `json:"installed_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// PluginGuild is a plugin's state in one guild.
type PluginGuild struct {
	PluginID         string          `json:"plugin_id"`
	GuildID          string          `json:"guild_id"`
	Enabled          bool            `json:"enabled"`
	Config           json.RawMessage `json:"config"`
	ConfigVersion    int64           `json:"config_version"`
	QuarantinedAt    *time.Time      `json:"quarantined_at,omitempty"`
	QuarantineReason string          `json:"quarantine_reason,omitempty"`
	LastError        string          `json:"last_error,omitempty"`
	LastErrorAt      *time.Time      `json:"last_error_at,omitempty"`
	UpdatedAt        time.Time       `json:"updated_at"`
}

// PluginGrant is one permission granted to a plugin in a guild.
type PluginGrant struct {
	Permission string    `json:"permission"`
	Hosts      []string  `json:"hosts,omitempty"`
	GrantedBy  string    `json:"granted_by,omitempty"`
	GrantedAt  time.Time `json:"granted_at"`
}

// bumpPluginState records that plugin state changed, inside tx.
func (s *Store) bumpPluginState(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE plugin_state SET version = version + 1 WHERE id = 1`)
	return err
}

// PluginStateVersion changes whenever plugins, their guild state or grants
// change, in this process or another.
func (s *Store) PluginStateVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, `SELECT version FROM plugin_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: plugin state version: %w", err)
	}
	return v, nil
}

// inTx runs f in a write transaction and bumps the plugin state version.
func (s *Store) pluginTx(ctx context.Context, what string, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := f(tx); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if err := s.bumpPluginState(ctx, tx); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// PutPlugin installs a plugin or replaces its active version.
func (s *Store) PutPlugin(ctx context.Context, p InstalledPlugin) error {
	now := ms(s.now())
	return s.pluginTx(ctx, "put plugin "+p.ID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO plugins (id, version, manifest, sha256, installed_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version,
			manifest = excluded.manifest, sha256 = excluded.sha256, updated_at = excluded.updated_at`),
			p.ID, p.Version, string(p.Manifest), p.SHA256, now, now)
		return err
	})
}

const pluginCols = `id, version, manifest, sha256, installed_at, updated_at`

func scanPlugin(sc interface{ Scan(...any) error }) (InstalledPlugin, error) {
	var p InstalledPlugin
	var manifest string
	var inst, upd int64
	err := sc.Scan(&p.ID, &p.Version, &manifest, &p.SHA256, &inst, &upd)
	p.Manifest, p.InstalledAt, p.UpdatedAt = json.RawMessage(manifest), fromMS(inst), fromMS(upd)
	return p, err
}

// ListPlugins returns every installed plugin by ID.
func (s *Store) ListPlugins(ctx context.Context) ([]InstalledPlugin, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT `+pluginCols+` FROM plugins ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list plugins: %w", err)
	}
	defer rs.Close()
	out := []InstalledPlugin{}
	for rs.Next() {
		p, err := scanPlugin(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list plugins: %w", err)
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// GetPlugin returns an installed plugin or ErrNotFound.
func (s *Store) GetPlugin(ctx context.Context, id string) (InstalledPlugin, error) {
	p, err := scanPlugin(s.r.QueryRowContext(ctx, s.q(`SELECT `+pluginCols+` FROM plugins WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("store: plugin %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("store: get plugin %s: %w", id, err)
	}
	return p, nil
}

// DeletePlugin uninstalls a plugin with its state, grants and data in every guild.
func (s *Store) DeletePlugin(ctx context.Context, id string) error {
	return s.pluginTx(ctx, "delete plugin "+id, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM plugins WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("plugin %s: %w", id, ErrNotFound)
		}
		for _, t := range []string{"plugin_guilds", "plugin_grants", "plugin_kv", "plugin_artifacts"} {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+t+` WHERE plugin_id = ?`), id); err != nil {
				return err
			}
		}
		s.kvUsage.forget(id)
		return nil
	})
}

const pluginGuildCols = `plugin_id, guild_id, enabled, config, config_version, quarantined_at, quarantine_reason,
	last_error, last_error_at, updated_at`

func scanPluginGuild(sc interface{ Scan(...any) error }) (PluginGuild, error) {
	var g PluginGuild
	var config string
	var quarantined, lastErrAt sql.NullInt64
	var upd int64
	err := sc.Scan(&g.PluginID, &g.GuildID, &g.Enabled, &config, &g.ConfigVersion, &quarantined, &g.QuarantineReason,
		&g.LastError, &lastErrAt, &upd)
	g.Config, g.QuarantinedAt, g.LastErrorAt, g.UpdatedAt = json.RawMessage(config), nullMS(quarantined), nullMS(lastErrAt), fromMS(upd)
	return g, err
}

// ListPluginGuilds returns the state of plugins in guilds; empty IDs do not filter.
func (s *Store) ListPluginGuilds(ctx context.Context, pluginID, guildID string) ([]PluginGuild, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT `+pluginGuildCols+` FROM plugin_guilds
		WHERE (? = '' OR plugin_id = ?) AND (? = '' OR guild_id = ?) ORDER BY plugin_id, guild_id`),
		pluginID, pluginID, guildID, guildID)
	if err != nil {
		return nil, fmt.Errorf("store: list plugin guilds: %w", err)
	}
	defer rs.Close()
	out := []PluginGuild{}
	for rs.Next() {
		g, err := scanPluginGuild(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list plugin guilds: %w", err)
		}
		out = append(out, g)
	}
	return out, rs.Err()
}

// GetPluginGuild returns a plugin's state in a guild; a plugin never touched
// there has the zero state (disabled, empty config) and no error.
func (s *Store) GetPluginGuild(ctx context.Context, pluginID, guildID string) (PluginGuild, error) {
	g, err := scanPluginGuild(s.r.QueryRowContext(ctx, s.q(`SELECT `+pluginGuildCols+` FROM plugin_guilds
		WHERE plugin_id = ? AND guild_id = ?`), pluginID, guildID))
	if errors.Is(err, sql.ErrNoRows) {
		return PluginGuild{PluginID: pluginID, GuildID: guildID, Config: json.RawMessage("{}")}, nil
	}
	if err != nil {
		return g, fmt.Errorf("store: plugin %s in guild %s: %w", pluginID, guildID, err)
	}
	return g, nil
}

// upsertPluginGuild makes sure the row exists, then runs set (an UPDATE
// fragment with its arguments) on it.
func (s *Store) upsertPluginGuild(ctx context.Context, tx *sql.Tx, pluginID, guildID, set string, args ...any) error {
	now := ms(s.now())
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO plugin_guilds (plugin_id, guild_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (plugin_id, guild_id) DO NOTHING`), pluginID, guildID, now); err != nil {
		return err
	}
	args = append(args, now, pluginID, guildID)
	_, err := tx.ExecContext(ctx, s.q(`UPDATE plugin_guilds SET `+set+`, updated_at = ? WHERE plugin_id = ? AND guild_id = ?`), args...)
	return err
}

// SetPluginEnabled enables or disables a plugin in a guild. Enabling also
// lifts a quarantine: it is the admin's decision to try again.
func (s *Store) SetPluginEnabled(ctx context.Context, pluginID, guildID string, enabled bool) error {
	return s.pluginTx(ctx, "enable plugin", func(tx *sql.Tx) error {
		if enabled {
			return s.upsertPluginGuild(ctx, tx, pluginID, guildID, `enabled = ?, quarantined_at = NULL, quarantine_reason = ''`, enabled)
		}
		return s.upsertPluginGuild(ctx, tx, pluginID, guildID, `enabled = ?`, enabled)
	})
}

// SetPluginConfig replaces a plugin's configuration in a guild.
func (s *Store) SetPluginConfig(ctx context.Context, pluginID, guildID string, config json.RawMessage) error {
	return s.pluginTx(ctx, "configure plugin", func(tx *sql.Tx) error {
		return s.upsertPluginGuild(ctx, tx, pluginID, guildID, `config = ?, config_version = config_version + 1`, string(config))
	})
}

// QuarantinePlugin stops a plugin in a guild until an admin enables it again.
func (s *Store) QuarantinePlugin(ctx context.Context, pluginID, guildID, reason string) error {
	return s.pluginTx(ctx, "quarantine plugin", func(tx *sql.Tx) error {
		return s.upsertPluginGuild(ctx, tx, pluginID, guildID, `quarantined_at = ?, quarantine_reason = ?`, ms(s.now()), reason)
	})
}

// RecordPluginError keeps the last error of a plugin in a guild. It does not
// bump the state version: errors do not change what runs.
func (s *Store) RecordPluginError(ctx context.Context, pluginID, guildID, msg string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: record plugin error: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	if err := s.upsertPluginGuild(ctx, tx, pluginID, guildID, `last_error = ?, last_error_at = ?`, truncateText(msg, 2000), ms(s.now())); err != nil {
		return fmt.Errorf("store: record plugin error: %w", err)
	}
	return tx.Commit()
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// GrantPlugin adds or replaces grants of a plugin in a guild.
func (s *Store) GrantPlugin(ctx context.Context, pluginID, guildID string, grants []PluginGrant) error {
	now := ms(s.now())
	return s.pluginTx(ctx, "grant", func(tx *sql.Tx) error {
		for _, g := range grants {
			hosts, _ := json.Marshal(g.Hosts)
			if g.Hosts == nil {
				hosts = []byte("[]")
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO plugin_grants (plugin_id, guild_id, permission, hosts, granted_by, granted_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (plugin_id, guild_id, permission) DO UPDATE SET
				hosts = excluded.hosts, granted_by = excluded.granted_by, granted_at = excluded.granted_at`),
				pluginID, guildID, g.Permission, string(hosts), g.GrantedBy, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// RevokePlugin removes grants; no permissions means all of them.
func (s *Store) RevokePlugin(ctx context.Context, pluginID, guildID string, permissions []string) error {
	return s.pluginTx(ctx, "revoke", func(tx *sql.Tx) error {
		if len(permissions) == 0 {
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM plugin_grants WHERE plugin_id = ? AND guild_id = ?`), pluginID, guildID)
			return err
		}
		for _, p := range permissions {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM plugin_grants WHERE plugin_id = ? AND guild_id = ? AND permission = ?`),
				pluginID, guildID, p); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListPluginGrants returns grants; empty IDs do not filter.
func (s *Store) ListPluginGrants(ctx context.Context, pluginID, guildID string) (map[[2]string][]PluginGrant, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT plugin_id, guild_id, permission, hosts, granted_by, granted_at FROM plugin_grants
		WHERE (? = '' OR plugin_id = ?) AND (? = '' OR guild_id = ?) ORDER BY plugin_id, guild_id, permission`),
		pluginID, pluginID, guildID, guildID)
	if err != nil {
		return nil, fmt.Errorf("store: list grants: %w", err)
	}
	defer rs.Close()
	out := map[[2]string][]PluginGrant{}
	for rs.Next() {
		var p, g, hosts string
		var gr PluginGrant
		var at int64
		if err := rs.Scan(&p, &g, &gr.Permission, &hosts, &gr.GrantedBy, &at); err != nil {
			return nil, fmt.Errorf("store: list grants: %w", err)
		}
		gr.GrantedAt = fromMS(at)
		json.Unmarshal([]byte(hosts), &gr.Hosts) //nolint:errcheck // written by GrantPlugin
		out[[2]string{p, g}] = append(out[[2]string{p, g}], gr)
	}
	return out, rs.Err()
}

// ErrQuota is returned when a plugin's key-value data would exceed its quota.
var ErrQuota = errors.New("store: quota exceeded")

// KVGet returns a plugin's value for key in a guild, or ErrNotFound.
func (s *Store) KVGet(ctx context.Context, pluginID, guildID, key string) ([]byte, error) {
	var v []byte
	var kid string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT value, enc_key FROM plugin_kv WHERE plugin_id = ? AND guild_id = ? AND key = ?`),
		pluginID, guildID, key).Scan(&v, &kid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: kv get: %w", err)
	}
	if v, err = s.openKV(pluginID, guildID, key, kid, v); err != nil {
		return nil, fmt.Errorf("store: kv get: %w", err)
	}
	return v, nil
}

// KVSet stores value under key unless the plugin's data in the guild would
// then exceed quota bytes (keys and values counted), which gives ErrQuota.
func (s *Store) KVSet(ctx context.Context, pluginID, guildID, key, userID string, value []byte, quota int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: kv set: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	var old int64
	err = tx.QueryRowContext(ctx, s.q(`SELECT `+kvSize+` FROM plugin_kv WHERE plugin_id = ? AND guild_id = ? AND key = ?`),
		pluginID, guildID, key).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: kv set: %w", err)
	}
	used, err := s.kvUsed(ctx, tx, pluginID, guildID)
	if err != nil {
		return fmt.Errorf("store: kv set: %w", err)
	}
	size := int64(len(key) + len(value))
	if used-old+size > quota {
		return fmt.Errorf("%w: %d of %d bytes used, this value needs %d", ErrQuota, used-old, quota, size)
	}
	stored, kid, err := s.sealKV(pluginID, guildID, key, value)
	if err != nil {
		return fmt.Errorf("store: kv set: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO plugin_kv (plugin_id, guild_id, key, value, user_id, updated_at, enc_key)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (plugin_id, guild_id, key) DO UPDATE SET value = excluded.value,
		user_id = excluded.user_id, updated_at = excluded.updated_at, enc_key = excluded.enc_key`),
		pluginID, guildID, key, stored, userID, ms(s.now()), kid); err != nil {
		return fmt.Errorf("store: kv set: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: kv set: %w", err)
	}
	s.kvUsage.add(pluginID, guildID, size-old)
	return nil
}

// KVDelete removes key.
func (s *Store) KVDelete(ctx context.Context, pluginID, guildID, key string) error {
	var size int64
	err := s.w.QueryRowContext(ctx, s.q(`DELETE FROM plugin_kv WHERE plugin_id = ? AND guild_id = ? AND key = ? RETURNING `+kvSize),
		pluginID, guildID, key).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: kv delete: %w", err)
	}
	s.kvUsage.add(pluginID, guildID, -size)
	return nil
}

// kvSize is what an entry counts against its plugin's quota.
const kvSize = `LENGTH(key) + LENGTH(value)`

// kvUsageTTL bounds how long a cached usage total is trusted.
const kvUsageTTL = time.Minute

// kvUsage caches each plugin's bytes per guild, so that a write checks its
// quota without summing every row the plugin has there (which made every
// write cost time in proportion to the data already stored). Writes through
// this Store adjust the total; it is recomputed when older than kvUsageTTL,
// which bounds the drift from writes by other processes (another host
// instance, a bulk deletion elsewhere) to what they wrote in that time.
type kvUsage struct {
	mu sync.Mutex
	m  map[[2]string]kvTotal
}

type kvTotal struct {
	bytes int64
	at    time.Time
}

func (u *kvUsage) get(k [2]string, now time.Time) (int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.m[k]
	if !ok || now.Sub(t.at) > kvUsageTTL || now.Before(t.at) {
		return 0, false
	}
	return t.bytes, true
}

func (u *kvUsage) set(k [2]string, bytes int64, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[[2]string]kvTotal{}
	}
	u.m[k] = kvTotal{bytes: bytes, at: now}
}

func (u *kvUsage) add(pluginID, guildID string, delta int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := [2]string{pluginID, guildID}
	if t, ok := u.m[k]; ok {
		t.bytes += delta
		u.m[k] = t
	}
}

func (u *kvUsage) forget(pluginID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k := range u.m {
		if k[0] == pluginID {
			delete(u.m, k)
		}
	}
}

// kvUsed returns the plugin's bytes in the guild, from the cache or summed
// within tx.
func (s *Store) kvUsed(ctx context.Context, tx *sql.Tx, pluginID, guildID string) (int64, error) {
	k := [2]string{pluginID, guildID}
	now := s.now()
	if v, ok := s.kvUsage.get(k, now); ok {
		return v, nil
	}
	var used int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(`+kvSize+`), 0) FROM plugin_kv WHERE plugin_id = ? AND guild_id = ?`),
		pluginID, guildID).Scan(&used); err != nil {
		return 0, err
	}
	s.kvUsage.set(k, used, now)
	return used, nil
}

// KVEntry is one stored key and value.
type KVEntry struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// KVList returns up to limit entries with the prefix, in key order, after
// the key after.
func (s *Store) KVList(ctx context.Context, pluginID, guildID, prefix, after string, limit int) ([]KVEntry, error) {
	// A range scan instead of LIKE: prefixes may contain % and _.
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT key, value, enc_key FROM plugin_kv WHERE plugin_id = ? AND guild_id = ?
		AND key > ? AND key >= ? AND (? = '' OR key < ?) ORDER BY key LIMIT ?`),
		pluginID, guildID, after, prefix, prefix, prefixEnd(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("store: kv list: %w", err)
	}
	defer rs.Close()
	out := []KVEntry{}
	for rs.Next() {
		var e KVEntry
		var kid string
		if err := rs.Scan(&e.Key, &e.Value, &kid); err != nil {
			return nil, fmt.Errorf("store: kv list: %w", err)
		}
		if e.Value, err = s.openKV(pluginID, guildID, e.Key, kid, e.Value); err != nil {
			return nil, fmt.Errorf("store: kv list: %w", err)
		}
		out = append(out, e)
	}
	return out, rs.Err()
}

// prefixEnd returns the smallest string greater than every string with the
// prefix ("" when there is none).
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// KVUsage returns the bytes a plugin's data takes in a guild.
func (s *Store) KVUsage(ctx context.Context, pluginID, guildID string) (int64, error) {
	var used int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM plugin_kv
		WHERE plugin_id = ? AND guild_id = ?`), pluginID, guildID).Scan(&used)
	if err != nil {
		return 0, fmt.Errorf("store: kv usage: %w", err)
	}
	return used, nil
}
