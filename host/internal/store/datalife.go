package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// The data lifecycle: one registry of the tables that hold data about a
// person, one of the tables that hold data of a guild, and one of the
// tables retention trims. Deletion, export, retention and guild removal
// work from these lists only, and tests compare them with the live schema
// (TestPersonalTablesRegistered, TestGuildTablesRegistered), so a table
// added by a later migration cannot escape them: add it here in the same
// change.

// PersonalTable is a table with rows about one person.
type PersonalTable struct {
	Table      string
	UserColumn string
	// GuildColumn scopes rows to a guild; "" for tables that are not
	// per guild (deleted only by an instance-wide request).
	GuildColumn string
	// Keep says why rows survive a deletion request; "" means they are
	// deleted. Kept rows are still exported.
	Keep string
	// NoExport leaves the table out of exports (credentials).
	NoExport string
}

// PersonalTables lists every table with a column naming a person. Analytics
// tables (per-member aggregates, scores) are added here by their migration's
// change.
var PersonalTables = []PersonalTable{
	{Table: "members", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "member_presence", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "member_roles", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "role_changes", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "membership_changes", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "bans", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "events", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "presence_sessions", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "messages", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "typing", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "activity_hourly", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "plugin_kv", UserColumn: "user_id", GuildColumn: "guild_id"},
	// Analytics (00005); presence_hourly's rows with user_id '' are guild
	// totals and stay.
	{Table: "presence_hourly", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "message_rhythm_daily", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "channel_messages_daily", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "role_members_daily", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "member_scores", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "score_history", UserColumn: "user_id", GuildColumn: "guild_id"},
	{Table: "users", UserColumn: "id"},
	{Table: "opt_outs", UserColumn: "user_id", GuildColumn: "guild_id", Keep: "the opt-out must outlive the deletion, or the person would be tracked again"},
	{Table: "privacy_requests", UserColumn: "user_id", GuildColumn: "guild_id", Keep: "the record that a request was made and carried out (no data about the person beyond the ID)"},
	{Table: "accounts", UserColumn: "discord_id", Keep: "a dashboard login the person created and deletes themselves (DELETE /api/v1/admin/users/{account})",
		NoExport: "holds a password hash"},
}

// GuildTable is a table with rows that belong to one guild.
type GuildTable struct {
	Table       string
	GuildColumn string
	Keep        string // why rows survive the guild's deletion; "" = deleted
}

// GuildTables lists every table with a guild column, in deletion order
// (the guilds row itself last).
var GuildTables = []GuildTable{
	{Table: "events", GuildColumn: "guild_id"},
	{Table: "presence_sessions", GuildColumn: "guild_id"},
	{Table: "messages", GuildColumn: "guild_id"},
	{Table: "typing", GuildColumn: "guild_id"},
	{Table: "role_changes", GuildColumn: "guild_id"},
	{Table: "membership_changes", GuildColumn: "guild_id"},
	{Table: "bans", GuildColumn: "guild_id"},
	{Table: "activity_hourly", GuildColumn: "guild_id"},
	{Table: "presence_hourly", GuildColumn: "guild_id"},
	{Table: "message_rhythm_daily", GuildColumn: "guild_id"},
	{Table: "channel_messages_daily", GuildColumn: "guild_id"},
	{Table: "role_changes_daily", GuildColumn: "guild_id"},
	{Table: "role_members_daily", GuildColumn: "guild_id"},
	{Table: "score_history", GuildColumn: "guild_id"},
	{Table: "member_scores", GuildColumn: "guild_id"},
	{Table: "score_runs", GuildColumn: "guild_id"},
	{Table: "member_roles", GuildColumn: "guild_id"},
	{Table: "member_presence", GuildColumn: "guild_id"},
	{Table: "members", GuildColumn: "guild_id"},
	{Table: "channels", GuildColumn: "guild_id"},
	{Table: "plugin_kv", GuildColumn: "guild_id"},
	{Table: "plugin_grants", GuildColumn: "guild_id"},
	{Table: "plugin_guilds", GuildColumn: "guild_id"},
	{Table: "guild_access", GuildColumn: "guild_id"},
	{Table: "opt_outs", GuildColumn: "guild_id"},
	{Table: "guild_settings", GuildColumn: "guild_id"},
	{Table: "audit_log", GuildColumn: "guild_id", Keep: "the audit trail, including of the deletion itself"},
	{Table: "privacy_requests", GuildColumn: "guild_id", Keep: "the record of the deletion"},
	{Table: "guilds", GuildColumn: "id"},
}

// RetainedTable is a table whose rows expire after a guild's window.
type RetainedTable struct {
	Table       string
	GuildColumn string
	TimeColumn  string // unix ms
	Category    string // the Retention field that sets the window
	Where       string // extra condition ("" for none)
}

// RetainedTables lists what retention trims. Score history tables go under
// category "scores".
var RetainedTables = []RetainedTable{
	{Table: "events", GuildColumn: "guild_id", TimeColumn: "at", Category: "events"},
	{Table: "role_changes", GuildColumn: "guild_id", TimeColumn: "at", Category: "events"},
	{Table: "membership_changes", GuildColumn: "guild_id", TimeColumn: "at", Category: "events"},
	{Table: "presence_sessions", GuildColumn: "guild_id", TimeColumn: "ended_at", Category: "presence"},
	{Table: "messages", GuildColumn: "guild_id", TimeColumn: "created_at", Category: "messages"},
	{Table: "typing", GuildColumn: "guild_id", TimeColumn: "at", Category: "messages"},
	{Table: "activity_hourly", GuildColumn: "guild_id", TimeColumn: "hour", Category: "aggregates"},
	{Table: "presence_hourly", GuildColumn: "guild_id", TimeColumn: "hour", Category: "aggregates"},
	{Table: "message_rhythm_daily", GuildColumn: "guild_id", TimeColumn: "day", Category: "aggregates"},
	{Table: "channel_messages_daily", GuildColumn: "guild_id", TimeColumn: "day", Category: "aggregates"},
	{Table: "role_changes_daily", GuildColumn: "guild_id", TimeColumn: "day", Category: "aggregates"},
	{Table: "role_members_daily", GuildColumn: "guild_id", TimeColumn: "day", Category: "aggregates"},
	// Current scores stay (they are replaced by each run); their history
	// and the runs expire.
	{Table: "score_history", GuildColumn: "guild_id", TimeColumn: "at", Category: "scores"},
	{Table: "score_runs", GuildColumn: "guild_id", TimeColumn: "started_at", Category: "scores"},
	// Only values tied to a member: a plugin's own state is not personal data.
	{Table: "plugin_kv", GuildColumn: "guild_id", TimeColumn: "updated_at", Category: "plugin_data", Where: "user_id <> ''"},
}

// Days returns the window of category in r (0: keep).
func (r Retention) Days(category string) int {
	switch category {
	case "events":
		return r.EventsDays
	case "presence":
		return r.PresenceDays
	case "messages":
		return r.MessagesDays
	case "scores":
		return r.ScoresDays
	case "plugin_data":
		return r.PluginDataDays
	case "aggregates":
		return r.AggregatesDays
	}
	return 0
}

// deleteBatch deletes up to limit rows of table matching where, in one
// short statement (its own transaction), and returns how many went.
func (s *Store) deleteBatch(ctx context.Context, table, where string, args []any, limit int) (int64, error) {
	var q string
	if s.dialect == Postgres {
		q = `DELETE FROM ` + table + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM ` + table + ` WHERE ` + where + ` LIMIT ?))`
	} else {
		q = `DELETE FROM ` + table + ` WHERE rowid IN (SELECT rowid FROM ` + table + ` WHERE ` + where + ` LIMIT ?)`
	}
	res, err := s.w.ExecContext(ctx, s.q(q), append(args, limit)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// batchTarget is how long one delete batch should hold its locks.
const batchTarget = 50 * time.Millisecond

// deleteAll deletes every row matching where in batches of at most limit
// rows, sized to take about batchTarget each.
func (s *Store) deleteAll(ctx context.Context, table, where string, args []any, limit int) (int64, error) {
	if limit <= 0 {
		limit = 5000
	}
	var total int64
	size := limit
	for {
		start := time.Now()
		n, err := s.deleteBatch(ctx, table, where, args, size)
		total += n
		if err != nil {
			return total, fmt.Errorf("%s: %w", table, err)
		}
		if n < int64(size) {
			return total, nil
		}
		// limit bounds the rows of a batch; time bounds them too, so that a
		// slow disk or a busy machine does not stretch how long one batch
		// holds its locks: aim at batchTarget per batch.
		switch took := time.Since(start); {
		case took > 2*batchTarget && size > 100:
			size = max(100, size/2)
		case took < batchTarget/2 && size < limit:
			size = min(limit, size*2)
		}
		if s.dialect == SQLite {
			// SQLite has one writer: leave it free for as long as the batch
			// held it, so that ingest waits at most about one batch and the
			// background checkpoints keep the write-ahead log small.
			select {
			case <-time.After(time.Since(start)):
			case <-ctx.Done():
				return total, ctx.Err()
			}
		}
	}
}

// DeleteUser deletes everything the core holds about a person: in one
// guild, or in every guild (and their user record) when guildID is "". It
// returns the rows deleted per table. Rows are deleted in batches of batch,
// so ingest is never blocked for long; an event about the person ingested
// meanwhile may survive, which is why callers add an opt-out first when the
// person asked not to be tracked.
func (s *Store) DeleteUser(ctx context.Context, guildID, userID string, batch int) (map[string]int64, error) {
	out := map[string]int64{}
	if userID == "" {
		return out, fmt.Errorf("store: delete user: empty user ID")
	}
	guilds := []string{guildID}
	if guildID == "" {
		var err error
		if guilds, err = s.userGuilds(ctx, userID); err != nil {
			return out, err
		}
	}
	for _, t := range PersonalTables {
		if t.Keep != "" {
			continue
		}
		if t.GuildColumn == "" {
			continue
		}
		for _, g := range guilds {
			n, err := s.deleteAll(ctx, t.Table, t.GuildColumn+` = ? AND `+t.UserColumn+` = ?`, []any{g, userID}, batch)
			if n > 0 {
				out[t.Table] += n
			}
			if err != nil {
				return out, fmt.Errorf("store: delete user: %w", err)
			}
		}
	}
	// Other people's events may name the person (mentions): the ID is
	// replaced there.
	for _, g := range guilds {
		n, err := s.scrubMentions(ctx, g, userID, batch)
		if n > 0 {
			out["events.data (mentions redacted)"] += n
		}
		if err != nil {
			return out, fmt.Errorf("store: delete user: %w", err)
		}
	}
	for _, t := range PersonalTables {
		if t.Keep != "" || t.GuildColumn != "" {
			continue
		}
		where, args := t.UserColumn+` = ?`, []any{userID}
		if guildID != "" {
			// Only once no guild holds the person any more.
			where += ` AND NOT EXISTS (SELECT 1 FROM members WHERE members.user_id = ?)`
			args = append(args, userID)
		}
		n, err := s.deleteAll(ctx, t.Table, where, args, batch)
		if n > 0 {
			out[t.Table] += n
		}
		if err != nil {
			return out, fmt.Errorf("store: delete user: %w", err)
		}
	}
	return out, nil
}

// scrubMentions replaces a quoted user ID in the guild's stored message
// events (mention lists) with "deleted". The matching rows are found on the
// read pool, walking the guild's events in time order a page at a time, so
// the scan never holds the write lock; they are then rewritten by ID in
// short transactions of batch rows.
func (s *Store) scrubMentions(ctx context.Context, guildID, userID string, batch int) (int64, error) {
	if batch <= 0 {
		batch = 5000
	}
	quoted := `"` + userID + `"`
	// SQLite stores data as a BLOB, which LIKE does not match as text.
	data, update := `CAST(data AS TEXT)`, `UPDATE events SET data = CAST(REPLACE(CAST(data AS TEXT), ?, '"deleted"') AS BLOB) WHERE id = ?`
	if s.dialect == Postgres {
		data, update = `data::text`, `UPDATE events SET data = REPLACE(data::text, ?, '"deleted"')::jsonb WHERE id = ?`
	}
	var total int64
	var afterAt int64 = -1 << 62
	afterID := ""
	for {
		rs, err := s.r.QueryContext(ctx, s.q(`SELECT id, at FROM events WHERE guild_id = ? AND (at > ? OR (at = ? AND id > ?))
			AND kind IN ('message.create', 'message.update') AND `+data+` LIKE ? ORDER BY at, id LIMIT ?`),
			guildID, afterAt, afterAt, afterID, "%"+quoted+"%", batch)
		if err != nil {
			return total, fmt.Errorf("events: %w", err)
		}
		var ids []string
		for rs.Next() {
			if err := rs.Scan(&afterID, &afterAt); err != nil {
				rs.Close()
				return total, fmt.Errorf("events: %w", err)
			}
			ids = append(ids, afterID)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return total, fmt.Errorf("events: %w", err)
		}
		err = s.writeTx(ctx, func(tx *sql.Tx) error {
			for _, id := range ids {
				if _, err := tx.ExecContext(ctx, s.q(update), quoted, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("events: %w", err)
		}
		total += int64(len(ids))
		if len(ids) < batch {
			return total, nil
		}
	}
}

// userGuilds returns every guild that may hold rows about a person.
func (s *Store) userGuilds(ctx context.Context, userID string) ([]string, error) {
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT id FROM guilds UNION SELECT guild_id FROM members WHERE user_id = ?
		UNION SELECT guild_id FROM plugin_kv WHERE user_id = ?`), userID, userID)
	if err != nil {
		return nil, fmt.Errorf("store: user guilds: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var g string
		if err := rs.Scan(&g); err != nil {
			return nil, fmt.Errorf("store: user guilds: %w", err)
		}
		out = append(out, g)
	}
	return out, rs.Err()
}

// UserPluginGuilds returns the (plugin, guild) pairs with data tied to a
// person (guildID "" for every guild).
func (s *Store) UserPluginGuilds(ctx context.Context, guildID, userID string) ([][2]string, error) {
	q, args := `SELECT DISTINCT plugin_id, guild_id FROM plugin_kv WHERE user_id = ?`, []any{userID}
	if guildID != "" {
		q, args = q+` AND guild_id = ?`, append(args, guildID)
	}
	rs, err := s.r.QueryContext(ctx, s.q(q+` ORDER BY plugin_id, guild_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: user plugin data: %w", err)
	}
	defer rs.Close()
	var out [][2]string
	for rs.Next() {
		var p [2]string
		if err := rs.Scan(&p[0], &p[1]); err != nil {
			return nil, fmt.Errorf("store: user plugin data: %w", err)
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// UserExport is everything held about a person: rows per table, as column
// name to value. Binary values that are not text are base64 with the
// column name suffixed "_base64"; plugin values are decrypted.
type UserExport struct {
	UserID     string                       `json:"user_id"`
	GuildID    string                       `json:"guild_id,omitempty"`
	ExportedAt time.Time                    `json:"exported_at"`
	Tables     map[string][]map[string]any  `json:"tables"`
	Omitted    map[string]string            `json:"omitted,omitempty"`
	Plugins    map[string][]ExportedKVEntry `json:"plugin_data,omitempty"`
}

// ExportedKVEntry is one plugin value tied to the person.
type ExportedKVEntry struct {
	GuildID string `json:"guild_id"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	Base64  bool   `json:"base64,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ExportUser collects every row about a person (in one guild, or all when
// guildID is "").
func (s *Store) ExportUser(ctx context.Context, guildID, userID string) (UserExport, error) {
	ex := UserExport{UserID: userID, GuildID: guildID, ExportedAt: s.now().UTC(), Tables: map[string][]map[string]any{},
		Omitted: map[string]string{}, Plugins: map[string][]ExportedKVEntry{}}
	for _, t := range PersonalTables {
		if t.NoExport != "" {
			ex.Omitted[t.Table] = t.NoExport
			continue
		}
		if t.Table == "plugin_kv" {
			if err := s.exportKV(ctx, guildID, userID, &ex); err != nil {
				return ex, err
			}
			continue
		}
		where, args := t.UserColumn+` = ?`, []any{userID}
		if guildID != "" && t.GuildColumn != "" {
			where += ` AND ` + t.GuildColumn + ` = ?`
			args = append(args, guildID)
		}
		rows, err := s.selectRows(ctx, `SELECT * FROM `+t.Table+` WHERE `+where, args...)
		if err != nil {
			return ex, fmt.Errorf("store: export %s: %w", t.Table, err)
		}
		if len(rows) > 0 {
			ex.Tables[t.Table] = rows
		}
	}
	return ex, nil
}

func (s *Store) exportKV(ctx context.Context, guildID, userID string, ex *UserExport) error {
	q, args := `SELECT plugin_id, guild_id, key, value, enc_key FROM plugin_kv WHERE user_id = ?`, []any{userID}
	if guildID != "" {
		q, args = q+` AND guild_id = ?`, append(args, guildID)
	}
	rs, err := s.r.QueryContext(ctx, s.q(q+` ORDER BY plugin_id, guild_id, key`), args...)
	if err != nil {
		return fmt.Errorf("store: export plugin data: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var p, kid string
		var e ExportedKVEntry
		var v []byte
		if err := rs.Scan(&p, &e.GuildID, &e.Key, &v, &kid); err != nil {
			return fmt.Errorf("store: export plugin data: %w", err)
		}
		plain, err := s.openKV(p, e.GuildID, e.Key, kid, v)
		switch {
		case err != nil:
			e.Error = err.Error()
		case utf8.Valid(plain):
			e.Value = string(plain)
		default:
			e.Value, e.Base64 = base64.StdEncoding.EncodeToString(plain), true
		}
		ex.Plugins[p] = append(ex.Plugins[p], e)
	}
	return rs.Err()
}

// selectRows returns rows as column -> value maps.
func (s *Store) selectRows(ctx context.Context, query string, args ...any) ([]map[string]any, error) {
	rs, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			switch v := vals[i].(type) {
			case []byte:
				if utf8.Valid(v) {
					row[c] = string(v)
				} else {
					row[c+"_base64"] = base64.StdEncoding.EncodeToString(v)
				}
			default:
				row[c] = v
			}
		}
		out = append(out, row)
	}
	return out, rs.Err()
}

// PurgeExpired deletes, for one guild and one retained table, the rows
// older than before, in batches of batch rows (each its own short
// statement). It returns how many rows went.
func (s *Store) PurgeExpired(ctx context.Context, t RetainedTable, guildID string, before time.Time, batch int) (int64, error) {
	where := t.GuildColumn + ` = ? AND ` + t.TimeColumn + ` < ?`
	if t.Where != "" {
		where += ` AND ` + t.Where
	}
	n, err := s.deleteAll(ctx, t.Table, where, []any{guildID, ms(before)}, batch)
	if err != nil {
		return n, fmt.Errorf("store: purge: %w", err)
	}
	return n, nil
}

// PurgeGuild deletes all of a guild's data (see GuildTables), its role
// assignments and plugin grants, and finally the guild itself. It returns
// the rows deleted per table.
func (s *Store) PurgeGuild(ctx context.Context, guildID string, batch int) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range GuildTables {
		if t.Keep != "" {
			continue
		}
		n, err := s.deleteAll(ctx, t.Table, t.GuildColumn+` = ?`, []any{guildID}, batch)
		if n > 0 {
			out[t.Table] = n
		}
		if err != nil {
			return out, fmt.Errorf("store: purge guild %s: %w", guildID, err)
		}
	}
	// Roles in the guild (g, subject, role, guild) and plugin grants
	// (p, plugin:x, guild, permission, use): the enforcers reload on the
	// version bump.
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM authz_rules WHERE (ptype = 'g' AND v2 = ?) OR (ptype = 'p' AND v1 = ?)`), guildID, guildID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE authz_version SET version = version + 1 WHERE id = 1`)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("store: purge guild %s: authz rules: %w", guildID, err)
	}
	if n > 0 {
		out["authz_rules"] = n
	}
	// Plugin hosts and ingest filters reload what changed under them.
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := s.bumpPluginState(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE privacy_state SET version = version + 1 WHERE id = 1`)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("store: purge guild %s: %w", guildID, err)
	}
	return out, nil
}

// SchemaColumns returns the live schema's tables and their columns (not the
// migration bookkeeping), for tests that check the registries.
func (s *Store) SchemaColumns(ctx context.Context) (map[string][]string, error) {
	q := `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
	if s.dialect == Postgres {
		q = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
	}
	rs, err := s.r.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: schema: %w", err)
	}
	defer rs.Close()
	out := map[string][]string{}
	for rs.Next() {
		var t, c string
		if err := rs.Scan(&t, &c); err != nil {
			return nil, fmt.Errorf("store: schema: %w", err)
		}
		if t == "goose_db_version" || strings.HasPrefix(t, "stage_") {
			continue
		}
		out[t] = append(out[t], c)
	}
	for t := range out {
		sort.Strings(out[t])
	}
	return out, rs.Err()
}
