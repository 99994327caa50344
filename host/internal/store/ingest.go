package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// IngestResult tells what one batch changed.
type IngestResult struct {
	// Stored holds the events that were new, in the order they were given.
	Stored []event.Event
	// Duplicates counts events whose ID was already stored (or repeated
	// within the batch).
	Duplicates int
}

// Ingest stores a batch of validated events in one transaction: the raw
// events (idempotent by ID), and for the events that were new, everything
// derived from them — members, roles, presence sessions, message metadata,
// bans, joins and leaves, channels, guilds and hourly activity. A duplicate
// changes nothing, so replaying a file twice stores nothing new.
//
// Ingest is meant to be called by one goroutine per instance (the pipeline's
// writer); on PostgreSQL the member rows a batch touches are locked so that
// concurrent writers from several instances serialise per member.
func (s *Store) Ingest(ctx context.Context, evs []event.Event) (IngestResult, error) {
	var res IngestResult
	if len(evs) == 0 {
		return res, nil
	}
	rows, uniq := encodeEvents(evs, ms(s.now()))
	res.Duplicates = len(evs) - len(uniq)

	conn, err := s.w.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("store: ingest: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("store: ingest: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op

	bt := &batchTx{conn: conn, tx: tx}
	isNew, err := s.insertEvents(ctx, bt, rows)
	if err != nil {
		return res, fmt.Errorf("store: ingest: events: %w", err)
	}
	stored := make([]event.Event, 0, len(isNew))
	for _, i := range uniq {
		if isNew[evs[i].ID] {
			stored = append(stored, evs[i])
		}
	}
	res.Duplicates += len(uniq) - len(stored)
	if len(stored) > 0 {
		d := newDerivation(s.greatest())
		if err := d.load(ctx, s, tx, stored); err != nil {
			return res, fmt.Errorf("store: ingest: load state: %w", err)
		}
		d.apply(stored)
		if err := d.write(ctx, s, bt); err != nil {
			return res, fmt.Errorf("store: ingest: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("store: ingest: commit: %w", err)
	}
	res.Stored = stored
	return res, nil
}

type eventRow struct {
	id, guild, kind, user, channel string
	at                             int64
	data                           []byte
	ingestedAt                     int64
}

// encodeEvents turns events into rows, dropping repeats of an ID within the
// batch; uniq holds the indexes of the first occurrences.
func encodeEvents(evs []event.Event, now int64) (rows []eventRow, uniq []int) {
	seen := make(map[string]struct{}, len(evs))
	rows = make([]eventRow, 0, len(evs))
	uniq = make([]int, 0, len(evs))
	for i := range evs {
		ev := &evs[i]
		if _, dup := seen[ev.ID]; dup {
			continue
		}
		seen[ev.ID] = struct{}{}
		data, err := json.Marshal(event.WithoutContent(ev.Data))
		if err != nil || string(data) == "null" {
			data = []byte("{}")
		}
		rows = append(rows, eventRow{
			id: ev.ID, guild: ev.GuildID, kind: string(ev.Kind), user: ev.UserID,
			channel: ev.ChannelID, at: ms(ev.At), data: data, ingestedAt: now,
		})
		uniq = append(uniq, i)
	}
	return rows, uniq
}

// insertEvents appends rows to the events table and reports which IDs were new.
func (s *Store) insertEvents(ctx context.Context, bt *batchTx, rows []eventRow) (map[string]bool, error) {
	if s.dialect == Postgres {
		return s.copyEvents(ctx, bt, rows)
	}
	tx := bt.tx
	isNew := make(map[string]bool, len(rows))
	const cols = 8
	for start := 0; start < len(rows); start += maxRows(cols) {
		chunk := rows[start:min(len(rows), start+maxRows(cols))]
		args := make([]any, 0, len(chunk)*cols)
		for _, r := range chunk {
			args = append(args, r.id, r.guild, r.kind, r.user, r.channel, r.at, r.data, r.ingestedAt)
		}
		q := `INSERT INTO events (id, guild_id, kind, user_id, channel_id, at, data, ingested_at) VALUES ` +
			placeholders(len(chunk), cols) + ` ON CONFLICT (id) DO NOTHING RETURNING id`
		rs, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				rs.Close()
				return nil, err
			}
			isNew[id] = true
		}
		if err := rs.Close(); err != nil {
			return nil, err
		}
	}
	return isNew, nil
}

// maxRows is how many rows of cols columns fit one multi-row statement
// within both dialects' parameter limits.
func maxRows(cols int) int { return 30000 / cols }

// batchTx is the transaction of one ingest batch and the connection under
// it (COPY needs the connection).
type batchTx struct {
	conn *sql.Conn
	tx   *sql.Tx
}

// bulk inserts rows of len(cols) values each (args is flat) into table,
// with suffix (an ON CONFLICT clause, or "") applied to every row.
//
// SQLite gets multi-row INSERT statements. PostgreSQL gets COPY straight
// into the table when there is no conflict clause, otherwise one INSERT …
// SELECT FROM unnest(…) with a column array per parameter
// (ingest_postgres.go). Huge multi-row VALUES statements are slow to parse
// and plan on PostgreSQL; both of these are not, with one round trip per
// table.
func (s *Store) bulk(ctx context.Context, bt *batchTx, table, columns, suffix string, args []any) error {
	cols := strings.Split(columns, ",")
	for i := range cols {
		cols[i] = strings.TrimSpace(cols[i])
	}
	n := len(args) / len(cols)
	if n == 0 {
		return nil
	}
	if s.dialect != Postgres {
		per := maxRows(len(cols))
		for start := 0; start < n; start += per {
			end := min(n, start+per)
			q := `INSERT INTO ` + table + ` (` + columns + `) VALUES ` + placeholders(end-start, len(cols)) + ` ` + suffix
			if _, err := bt.tx.ExecContext(ctx, q, args[start*len(cols):end*len(cols)]...); err != nil {
				return err
			}
		}
		return nil
	}
	if suffix == "" {
		return withPgx(bt.conn, func(c *pgx.Conn) error {
			_, err := c.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(n, func(i int) ([]any, error) {
				return args[i*len(cols) : (i+1)*len(cols)], nil
			}))
			return err
		})
	}
	q, params, err := s.unnestInsert(ctx, bt, table, cols, args)
	if err != nil {
		return err
	}
	_, err = bt.tx.ExecContext(ctx, q+` `+suffix, params...)
	return err
}

// memberKey identifies a member.
type memberKey struct{ guild, user string }

type clientState struct {
	status string // "" when not connected
	since  int64
}

// memberRow is a members row; presenceRow a member_presence row. Both are
// comparable, so a batch writes back only rows that changed.
type memberRow struct {
	username, name, nick string
	joinedAt             int64 // 0: unknown
	leftAt               sql.NullInt64
	banned               bool
	firstSeen            int64
	lastMessageAt        int64 // 0: never
	messageCount         int64
	firstMessageAt       int64 // 0: never
	lastMinuteCount      int64 // messages in the clock minute of lastMessageAt
}

type presenceRow struct {
	lastSeen int64
	status   string
	statusAt int64
	clients  [3]clientState // desktop, mobile, web (event.Clients order)
	mark     int64          // since when the set of connected clients is unchanged (analytics)
}

// memberState is a member as loaded, changed in memory by a batch and
// written back once. The members row is loaded only for members with an
// event that can change it; presence updates, most of the traffic, touch
// only the presence row.
type memberState struct {
	row, loadedRow   memberRow
	pres, loadedPres presenceRow
	rowLoaded        bool // the members row was read (it may not exist)
	rowExists        bool
	presExists       bool
	firstAt          int64  // time of the member's first event in the batch
	globalName       string // from the batch's user info, for the display name

	roles       map[string]int64 // role -> since; nil until loaded
	rolesLoaded bool
	roleBase    map[string]int64 // roles as loaded, to write only the difference
}

type sessionRow struct {
	guild, user, client, status string
	start, end                  int64
}

type roleChangeRow struct {
	eventID, guild, user, role string
	added                      bool
	at                         int64
}

type activityKey struct {
	guild, user string
	hour        int64
}

type activityCounts struct {
	messages, edits, deletes, typing, presence, voice, joins, leaves int64
}

// derivation computes, from a batch of new events, every row they change.
type derivation struct {
	greatest string

	members    map[memberKey]*memberState
	sessions   []sessionRow
	roleChange []roleChangeRow
	membership [][]any
	bansAdd    [][]any
	bansLift   [][]any
	msgInsert  [][]any
	msgEdit    [][]any
	msgDelete  [][]any
	typing     [][]any
	users      map[string][]any
	guilds     map[string]*event.Event // latest guild.update per guild
	guildSeen  map[string]int64        // first time each guild appears in the batch
	channels   map[string]*event.Event // latest channel.update per channel
	activity   map[activityKey]*activityCounts
	presence   map[activityKey]*presenceTotals
	rhythm     map[activityKey]*rhythmTotals // hour is the UTC day's start
	chanMsgs   map[channelDayKey]int64
}

func newDerivation(greatest string) *derivation {
	return &derivation{
		greatest:  greatest,
		members:   map[memberKey]*memberState{},
		users:     map[string][]any{},
		guilds:    map[string]*event.Event{},
		guildSeen: map[string]int64{},
		channels:  map[string]*event.Event{},
		activity:  map[activityKey]*activityCounts{},
		presence:  map[activityKey]*presenceTotals{},
		rhythm:    map[activityKey]*rhythmTotals{},
		chanMsgs:  map[channelDayKey]int64{},
	}
}

// needsRoles reports whether applying ev needs the member's current roles.
func needsRoles(k event.Kind) bool {
	return k == event.KindMemberJoin || k == event.KindMemberUpdate || k == event.KindMemberLeave
}

// load reads the member rows (and, where needed, role sets) the batch touches.
func (d *derivation) load(ctx context.Context, s *Store, tx *sql.Tx, evs []event.Event) error {
	users := map[string]map[string]bool{}     // guild -> members touched
	rows := map[string]map[string]bool{}      // guild -> members whose members row may change
	withRoles := map[string]map[string]bool{} // guild -> members whose roles change
	for i := range evs {
		ev := &evs[i]
		if ev.UserID == "" {
			continue
		}
		addTo(users, ev.GuildID, ev.UserID)
		if u := event.UserOf(ev.Data); ev.Kind != event.KindPresenceUpdate || (u != nil && u.Username != "") {
			addTo(rows, ev.GuildID, ev.UserID)
		}
		if needsRoles(ev.Kind) {
			addTo(withRoles, ev.GuildID, ev.UserID)
		}
	}
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE" // serialise concurrent writers per member
	}
	state := func(guild, user string) *memberState {
		k := memberKey{guild, user}
		m := d.members[k]
		if m == nil {
			m = &memberState{}
			d.members[k] = m
		}
		return m
	}
	for guild, set := range rows {
		for u := range set {
			state(guild, u).rowLoaded = true
		}
		err := s.inChunks(ctx, tx, `SELECT user_id, username, name, nick, joined_at, left_at, banned, first_seen,
			last_message_at, message_count, first_message_at, last_minute_count FROM members WHERE guild_id = ? AND user_id IN (%s) ORDER BY user_id`+lock, guild, set,
			func(rs *sql.Rows) error {
				var user string
				var r memberRow
				if err := rs.Scan(&user, &r.username, &r.name, &r.nick, &r.joinedAt, &r.leftAt, &r.banned,
					&r.firstSeen, &r.lastMessageAt, &r.messageCount, &r.firstMessageAt, &r.lastMinuteCount); err != nil {
					return err
				}
				m := state(guild, user)
				m.row, m.loadedRow, m.rowExists = r, r, true
				return nil
			})
		if err != nil {
			return err
		}
	}
	for guild, set := range users {
		err := s.inChunks(ctx, tx, `SELECT user_id, last_seen, status, status_at, desktop, desktop_since, mobile, mobile_since, web, web_since, presence_mark
			FROM member_presence WHERE guild_id = ? AND user_id IN (%s)`, guild, set,
			func(rs *sql.Rows) error {
				var user string
				var p presenceRow
				c := &p.clients
				if err := rs.Scan(&user, &p.lastSeen, &p.status, &p.statusAt, &c[0].status, &c[0].since, &c[1].status, &c[1].since,
					&c[2].status, &c[2].since, &p.mark); err != nil {
					return err
				}
				m := state(guild, user)
				m.pres, m.loadedPres, m.presExists = p, p, true
				return nil
			})
		if err != nil {
			return err
		}
	}
	for guild, set := range withRoles {
		for u := range set {
			m := state(guild, u)
			m.roles, m.roleBase, m.rolesLoaded = map[string]int64{}, map[string]int64{}, true
		}
		err := s.inChunks(ctx, tx, `SELECT user_id, role_id, since FROM member_roles WHERE guild_id = ? AND user_id IN (%s)`, guild, set,
			func(rs *sql.Rows) error {
				var user, role string
				var since int64
				if err := rs.Scan(&user, &role, &since); err != nil {
					return err
				}
				m := d.members[memberKey{guild, user}]
				m.roles[role], m.roleBase[role] = since, since
				return nil
			})
		if err != nil {
			return err
		}
	}
	return nil
}

func addTo(m map[string]map[string]bool, k, v string) {
	if m[k] == nil {
		m[k] = map[string]bool{}
	}
	m[k][v] = true
}

// inChunks runs query (with %s standing for the set) for the first
// argument and the members of set, calling scan per row. PostgreSQL gets the
// whole set as one array parameter (= ANY(?)); SQLite, without arrays, gets
// IN lists of 500.
func (s *Store) inChunks(ctx context.Context, tx *sql.Tx, query, first string, set map[string]bool, scan func(*sql.Rows) error) error {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	chunk := 500
	if s.dialect == Postgres {
		chunk = len(keys)
	}
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(len(keys), start+chunk)]
		var q string
		var args []any
		if s.dialect == Postgres {
			q = strings.Replace(query, "IN (%s)", "= ANY(?)", 1)
			args = []any{first, part}
		} else {
			q = fmt.Sprintf(query, inList(len(part)))
			args = make([]any, 0, len(part)+1)
			args = append(args, first)
			for _, k := range part {
				args = append(args, k)
			}
		}
		rs, err := tx.QueryContext(ctx, s.q(q), args...)
		if err != nil {
			return err
		}
		for rs.Next() {
			if err := scan(rs); err != nil {
				rs.Close()
				return err
			}
		}
		if err := rs.Close(); err != nil {
			return err
		}
	}
	return nil
}

// inList returns "?,?,?" with n placeholders.
func inList(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// member returns the state of a member, creating a new one first seen at at.
func (d *derivation) member(guild, user string, at int64) *memberState {
	k := memberKey{guild, user}
	m := d.members[k]
	if m == nil {
		m = &memberState{}
		d.members[k] = m
	}
	if m.firstAt == 0 || at < m.firstAt {
		m.firstAt = at
	}
	if m.pres.status == "" {
		m.pres.status, m.pres.lastSeen = string(event.StatusOffline), at
	}
	if m.rowLoaded {
		if m.row.firstSeen == 0 {
			m.row.firstSeen, m.row.name = at, user
		}
		if at < m.row.firstSeen {
			m.row.firstSeen = at
		}
	}
	return m
}

const hourMS = int64(time.Hour / time.Millisecond)

// count adds to the guild's hourly totals and, when user is set, the
// member's.
func (d *derivation) count(guild, user string, at int64, f func(*activityCounts)) {
	hour := at - at%hourMS
	d.bump(activityKey{guild, "", hour}, f)
	if user != "" {
		d.bump(activityKey{guild, user, hour}, f)
	}
}

func (d *derivation) bump(k activityKey, f func(*activityCounts)) {
	c := d.activity[k]
	if c == nil {
		c = &activityCounts{}
		d.activity[k] = c
	}
	f(c)
}

// apply folds the events, in time order, into the loaded state.
func (d *derivation) apply(evs []event.Event) {
	order := make([]int, len(evs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return evs[order[a]].At.Before(evs[order[b]].At) })
	for _, i := range order {
		d.applyOne(&evs[i])
	}
}

func (d *derivation) applyOne(ev *event.Event) {
	at := ms(ev.At)
	if _, ok := d.guildSeen[ev.GuildID]; !ok {
		d.guildSeen[ev.GuildID] = at
	}
	if u := event.UserOf(ev.Data); u != nil && u.Username != "" {
		created, _ := event.SnowflakeTime(u.ID)
		d.users[u.ID] = []any{u.ID, u.Username, u.GlobalName, u.Avatar, u.Bot, ms(created), at}
	}
	var m *memberState
	if ev.UserID != "" {
		m = d.member(ev.GuildID, ev.UserID, at)
		if u := event.UserOf(ev.Data); u != nil && u.Username != "" {
			m.row.username, m.globalName = u.Username, u.GlobalName
			m.row.name = m.displayName(ev.UserID)
		}
	}
	seen := func() {
		if at > m.pres.lastSeen {
			m.pres.lastSeen = at
		}
	}
	switch data := ev.Data.(type) {
	case *event.Presence:
		d.count(ev.GuildID, "", at, func(c *activityCounts) { c.presence++ })
		seen()
		if at < m.pres.statusAt {
			return // older than what we know: kept in the log, not in sessions
		}
		var next [3]bool
		for i, cl := range event.Clients() {
			next[i] = data.ClientStatus.Get(cl).Online()
		}
		d.accountPresence(ev.GuildID, ev.UserID, m, at, next)
		for i, cl := range event.Clients() {
			ns := data.ClientStatus.Get(cl)
			if ns == event.StatusOffline {
				ns = ""
			}
			d.setClient(ev, m, i, string(ns), at)
		}
		m.pres.status, m.pres.statusAt = string(data.Status), at
	case *event.MessageCreate:
		seen()
		d.messageRhythm(ev, m, at)
		m.row.messageCount++
		if at > m.row.lastMessageAt {
			m.row.lastMessageAt = at
		}
		d.msgInsert = append(d.msgInsert, []any{data.MessageID, ev.GuildID, ev.ChannelID, ev.UserID, at,
			data.Length, data.Attachments, data.Embeds, len(data.Mentions), data.ReplyTo})
		d.count(ev.GuildID, ev.UserID, at, func(c *activityCounts) { c.messages++ })
	case *event.MessageUpdate:
		if m != nil {
			seen()
		}
		edited := at
		if !data.EditedAt.IsZero() {
			edited = ms(data.EditedAt)
		}
		d.msgEdit = append(d.msgEdit, []any{edited, data.Length, data.Attachments, data.Embeds, data.MessageID})
		d.count(ev.GuildID, ev.UserID, at, func(c *activityCounts) { c.edits++ })
	case *event.MessageDelete:
		d.msgDelete = append(d.msgDelete, []any{at, data.MessageID})
		d.count(ev.GuildID, ev.UserID, at, func(c *activityCounts) { c.deletes++ })
	case *event.TypingStart:
		seen()
		d.typing = append(d.typing, []any{ev.ID, ev.GuildID, ev.ChannelID, ev.UserID, at})
		d.count(ev.GuildID, ev.UserID, at, func(c *activityCounts) { c.typing++ })
	case *event.VoiceState:
		seen()
		d.count(ev.GuildID, ev.UserID, at, func(c *activityCounts) { c.voice++ })
	case *event.MemberJoin:
		if !data.Backfill {
			seen()
		}
		if !data.Backfill || m.row.joinedAt == 0 {
			m.row.joinedAt = at
		}
		m.row.leftAt = sql.NullInt64{}
		m.row.nick = data.Nick
		m.row.name = m.displayName(ev.UserID)
		clear(m.roles)
		for _, r := range data.Roles {
			m.roles[r] = at
		}
		d.membership = append(d.membership, []any{ev.ID, ev.GuildID, ev.UserID, "join", at})
		if !data.Backfill {
			d.count(ev.GuildID, ev.UserID, at, func(c *activityCounts) { c.joins++ })
		}
	case *event.MemberLeave:
		m.row.leftAt = sql.NullInt64{Int64: at, Valid: true}
		if at >= m.pres.statusAt {
			d.accountPresence(ev.GuildID, ev.UserID, m, at, [3]bool{})
		}
		for i := range m.pres.clients {
			d.setClient(ev, m, i, "", at)
		}
		m.pres.status, m.pres.statusAt = string(event.StatusOffline), max(m.pres.statusAt, at)
		clear(m.roles)
		d.membership = append(d.membership, []any{ev.ID, ev.GuildID, ev.UserID, "leave", at})
		d.count(ev.GuildID, ev.UserID, at, func(c *activityCounts) { c.leaves++ })
	case *event.MemberUpdate:
		if data.Nick != "" {
			m.row.nick = data.Nick
			m.row.name = m.displayName(ev.UserID)
		}
		added, removed := data.RolesAdded, data.RolesRemoved
		if len(added) == 0 && len(removed) == 0 && data.Roles != nil {
			added, removed = diffRoles(m.roles, data.Roles)
		}
		for _, r := range added {
			if _, ok := m.roles[r]; !ok {
				m.roles[r] = at
			}
			d.roleChange = append(d.roleChange, roleChangeRow{ev.ID, ev.GuildID, ev.UserID, r, true, at})
		}
		for _, r := range removed {
			delete(m.roles, r)
			d.roleChange = append(d.roleChange, roleChangeRow{ev.ID, ev.GuildID, ev.UserID, r, false, at})
		}
		if data.Roles != nil {
			keep := make(map[string]bool, len(data.Roles))
			for _, r := range data.Roles {
				keep[r] = true
				if _, ok := m.roles[r]; !ok {
					m.roles[r] = at
				}
			}
			for r := range m.roles {
				if !keep[r] {
					delete(m.roles, r)
				}
			}
		}
	case *event.BanAdd:
		m.row.banned = true
		d.bansAdd = append(d.bansAdd, []any{ev.ID, ev.GuildID, ev.UserID, data.Reason, at})
	case *event.BanRemove:
		m.row.banned = false
		d.bansLift = append(d.bansLift, []any{at, ev.GuildID, ev.UserID})
	case *event.GuildUpdate:
		d.guilds[ev.GuildID] = ev
	case *event.ChannelUpdate:
		d.channels[ev.ChannelID] = ev
	}
}

// setClient moves client i of member m to status ns at time at, closing the
// stretch that ends.
func (d *derivation) setClient(ev *event.Event, m *memberState, i int, ns string, at int64) {
	cur := m.pres.clients[i]
	if ns == cur.status {
		return
	}
	if cur.status != "" && at > cur.since {
		d.sessions = append(d.sessions, sessionRow{ev.GuildID, ev.UserID, string(event.Clients()[i]), cur.status, cur.since, at})
	}
	if ns == "" {
		m.pres.clients[i] = clientState{}
	} else {
		m.pres.clients[i] = clientState{status: ns, since: at}
	}
}

func diffRoles(have map[string]int64, want []string) (added, removed []string) {
	w := make(map[string]bool, len(want))
	for _, r := range want {
		w[r] = true
		if _, ok := have[r]; !ok {
			added = append(added, r)
		}
	}
	for r := range have {
		if !w[r] {
			removed = append(removed, r)
		}
	}
	slices.Sort(removed)
	return added, removed
}

// displayName picks what the dashboard shows for a member.
func (m *memberState) displayName(user string) string {
	switch {
	case m.row.nick != "":
		return m.row.nick
	case m.globalName != "":
		return m.globalName
	case m.row.username != "":
		return m.row.username
	}
	return user
}

// write stores everything the batch derived.
func (d *derivation) write(ctx context.Context, s *Store, bt *batchTx) error {
	tx := bt.tx
	// Guilds first: every event's guild exists afterwards.
	if len(d.guildSeen) > 0 {
		args := make([]any, 0, len(d.guildSeen)*3)
		for g, at := range d.guildSeen {
			args = append(args, g, at, at)
		}
		if err := s.bulk(ctx, bt, "guilds", `id, first_seen, updated_at`, `ON CONFLICT (id) DO NOTHING`, args); err != nil {
			return fmt.Errorf("guilds: %w", err)
		}
	}
	for g, ev := range d.guilds {
		data := ev.Data.(*event.GuildUpdate)
		var removed any
		if data.Removed {
			removed = ms(ev.At)
		}
		_, err := tx.ExecContext(ctx, s.q(`UPDATE guilds SET
			name = CASE WHEN ? <> '' THEN ? ELSE name END,
			owner_id = CASE WHEN ? <> '' THEN ? ELSE owner_id END,
			icon = CASE WHEN ? <> '' THEN ? ELSE icon END,
			member_count = CASE WHEN ? > 0 THEN ? ELSE member_count END,
			removed_at = ?, updated_at = ? WHERE id = ?`),
			data.Name, data.Name, data.OwnerID, data.OwnerID, data.Icon, data.Icon,
			data.MemberCount, data.MemberCount, removed, ms(ev.At), g)
		if err != nil {
			return fmt.Errorf("guild %s: %w", g, err)
		}
	}
	if len(d.channels) > 0 {
		args := make([]any, 0, len(d.channels)*9)
		for id, ev := range d.channels {
			c := ev.Data.(*event.ChannelUpdate)
			var deleted any
			if c.Deleted {
				deleted = ms(ev.At)
			}
			args = append(args, id, ev.GuildID, c.Name, string(c.Type), c.ParentID, c.Position, c.NSFW, deleted, ms(ev.At))
		}
		if err := s.bulk(ctx, bt, "channels", `id, guild_id, name, type, parent_id, position, nsfw, deleted_at, updated_at`,
			`ON CONFLICT (id) DO UPDATE SET guild_id = excluded.guild_id, name = excluded.name, type = excluded.type,
			parent_id = excluded.parent_id, position = excluded.position, nsfw = excluded.nsfw,
			deleted_at = excluded.deleted_at, updated_at = excluded.updated_at`, args); err != nil {
			return fmt.Errorf("channels: %w", err)
		}
	}
	if len(d.users) > 0 {
		args := make([]any, 0, len(d.users)*7)
		for _, u := range d.users {
			args = append(args, u...)
		}
		if err := s.bulk(ctx, bt, "users", `id, username, global_name, avatar, bot, created_at, updated_at`,
			`ON CONFLICT (id) DO UPDATE SET username = excluded.username, global_name = excluded.global_name,
			avatar = excluded.avatar, bot = excluded.bot, updated_at = excluded.updated_at`, args); err != nil {
			return fmt.Errorf("users: %w", err)
		}
	}
	if err := d.writeMembers(ctx, s, bt); err != nil {
		return fmt.Errorf("members: %w", err)
	}
	if len(d.sessions) > 0 {
		args := make([]any, 0, len(d.sessions)*6)
		for _, r := range d.sessions {
			args = append(args, r.guild, r.user, r.client, r.status, r.start, r.end)
		}
		if err := s.bulk(ctx, bt, "presence_sessions", `guild_id, user_id, client, status, started_at, ended_at`, ``, args); err != nil {
			return fmt.Errorf("presence sessions: %w", err)
		}
	}
	if len(d.roleChange) > 0 {
		args := make([]any, 0, len(d.roleChange)*6)
		for _, r := range d.roleChange {
			args = append(args, r.eventID, r.guild, r.user, r.role, r.added, r.at)
		}
		if err := s.bulk(ctx, bt, "role_changes", `event_id, guild_id, user_id, role_id, added, at`,
			`ON CONFLICT DO NOTHING`, args); err != nil {
			return fmt.Errorf("role changes: %w", err)
		}
	}
	if err := s.bulk(ctx, bt, "membership_changes", `event_id, guild_id, user_id, action, at`,
		`ON CONFLICT DO NOTHING`, flatten(d.membership)); err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	if err := s.bulk(ctx, bt, "bans", `event_id, guild_id, user_id, reason, banned_at`,
		`ON CONFLICT DO NOTHING`, flatten(d.bansAdd)); err != nil {
		return fmt.Errorf("bans: %w", err)
	}
	for _, b := range d.bansLift {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE bans SET lifted_at = ? WHERE guild_id = ? AND user_id = ? AND lifted_at IS NULL`), b...); err != nil {
			return fmt.Errorf("lift ban: %w", err)
		}
	}
	if err := s.bulk(ctx, bt, "messages", `id, guild_id, channel_id, user_id, created_at, length, attachments, embeds, mentions, reply_to`,
		`ON CONFLICT (id) DO NOTHING`, flatten(d.msgInsert)); err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	for _, e := range d.msgEdit {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE messages SET edited_at = ?, length = ?, attachments = ?, embeds = ?, edit_count = edit_count + 1 WHERE id = ?`), e...); err != nil {
			return fmt.Errorf("message edit: %w", err)
		}
	}
	for _, e := range d.msgDelete {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE messages SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`), e...); err != nil {
			return fmt.Errorf("message delete: %w", err)
		}
	}
	if err := s.bulk(ctx, bt, "typing", `event_id, guild_id, channel_id, user_id, at`,
		`ON CONFLICT DO NOTHING`, flatten(d.typing)); err != nil {
		return fmt.Errorf("typing: %w", err)
	}
	if len(d.activity) > 0 {
		keys := make([]activityKey, 0, len(d.activity))
		for k := range d.activity {
			keys = append(keys, k)
		}
		// A fixed order keeps concurrent writers from deadlocking on PostgreSQL.
		sort.Slice(keys, func(i, j int) bool {
			a, b := keys[i], keys[j]
			if a.guild != b.guild {
				return a.guild < b.guild
			}
			if a.user != b.user {
				return a.user < b.user
			}
			return a.hour < b.hour
		})
		args := make([]any, 0, len(keys)*11)
		for _, k := range keys {
			c := d.activity[k]
			args = append(args, k.guild, k.user, k.hour, c.messages, c.edits, c.deletes, c.typing, c.presence, c.voice, c.joins, c.leaves)
		}
		if err := s.bulk(ctx, bt, "activity_hourly", `guild_id, user_id, hour, messages, edits, deletes, typing, presence_updates, voice_updates, joins, leaves`,
			`ON CONFLICT (guild_id, user_id, hour) DO UPDATE SET
			messages = activity_hourly.messages + excluded.messages,
			edits = activity_hourly.edits + excluded.edits,
			deletes = activity_hourly.deletes + excluded.deletes,
			typing = activity_hourly.typing + excluded.typing,
			presence_updates = activity_hourly.presence_updates + excluded.presence_updates,
			voice_updates = activity_hourly.voice_updates + excluded.voice_updates,
			joins = activity_hourly.joins + excluded.joins,
			leaves = activity_hourly.leaves + excluded.leaves`, args); err != nil {
			return fmt.Errorf("activity: %w", err)
		}
	}
	if err := d.writeAnalytics(ctx, s, bt); err != nil {
		return fmt.Errorf("analytics: %w", err)
	}
	return nil
}

func (d *derivation) writeMembers(ctx context.Context, s *Store, bt *batchTx) error {
	tx := bt.tx
	keys := make([]memberKey, 0, len(d.members))
	for k, m := range d.members {
		if m != nil && m.firstAt != 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].guild != keys[j].guild {
			return keys[i].guild < keys[j].guild
		}
		return keys[i].user < keys[j].user
	})
	var rows, ensure, pres, roleDel, roleAdd []any
	for _, k := range keys {
		m := d.members[k]
		switch r := m.row; {
		case m.rowLoaded && (!m.rowExists || r != m.loadedRow):
			rows = append(rows, k.guild, k.user, r.username, r.name, r.nick, r.joinedAt, r.leftAt, r.banned,
				r.firstSeen, r.lastMessageAt, r.messageCount, r.firstMessageAt, r.lastMinuteCount)
		case !m.rowLoaded && !m.presExists:
			// Only presence seen, for a member without a presence row: likely
			// new, so make sure the members row exists without reading it.
			ensure = append(ensure, k.guild, k.user, k.user, m.firstAt)
		}
		if p := m.pres; !m.presExists || p != m.loadedPres {
			c := &p.clients
			pres = append(pres, k.guild, k.user, p.lastSeen, p.status, p.statusAt,
				c[0].status, c[0].since, c[1].status, c[1].since, c[2].status, c[2].since, p.mark)
		}
		if m.rolesLoaded {
			for r := range m.roleBase {
				if _, ok := m.roles[r]; !ok {
					roleDel = append(roleDel, k.guild, k.user, r)
				}
			}
			for r, since := range m.roles {
				if _, ok := m.roleBase[r]; !ok {
					roleAdd = append(roleAdd, k.guild, k.user, r, since)
				}
			}
		}
	}
	if err := s.bulk(ctx, bt, "members", `guild_id, user_id, username, name, nick, joined_at, left_at, banned,
		first_seen, last_message_at, message_count, first_message_at, last_minute_count`,
		`ON CONFLICT (guild_id, user_id) DO UPDATE SET username = excluded.username, name = excluded.name,
		nick = excluded.nick, joined_at = excluded.joined_at, left_at = excluded.left_at, banned = excluded.banned,
		first_seen = excluded.first_seen, last_message_at = excluded.last_message_at, message_count = excluded.message_count,
		first_message_at = excluded.first_message_at, last_minute_count = excluded.last_minute_count`, rows); err != nil {
		return err
	}
	if err := s.bulk(ctx, bt, "members", `guild_id, user_id, name, first_seen`, `ON CONFLICT (guild_id, user_id) DO NOTHING`, ensure); err != nil {
		return err
	}
	if err := s.bulk(ctx, bt, "member_presence", `guild_id, user_id, last_seen, status, status_at, desktop, desktop_since,
		mobile, mobile_since, web, web_since, presence_mark`,
		`ON CONFLICT (guild_id, user_id) DO UPDATE SET last_seen = `+d.greatest+`(member_presence.last_seen, excluded.last_seen),
		status = excluded.status, status_at = excluded.status_at,
		desktop = excluded.desktop, desktop_since = excluded.desktop_since, mobile = excluded.mobile,
		mobile_since = excluded.mobile_since, web = excluded.web, web_since = excluded.web_since,
		presence_mark = excluded.presence_mark`, pres); err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	for i := 0; i < len(roleDel); i += 3 {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM member_roles WHERE guild_id = ? AND user_id = ? AND role_id = ?`), roleDel[i:i+3]...); err != nil {
			return fmt.Errorf("roles: %w", err)
		}
	}
	if err := s.bulk(ctx, bt, "member_roles", "guild_id, user_id, role_id, since", `ON CONFLICT DO NOTHING`, roleAdd); err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	return nil
}

func flatten(rows [][]any) []any {
	if len(rows) == 0 {
		return nil
	}
	out := make([]any, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}
