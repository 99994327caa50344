package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL bulk ingest sends each table's rows in one statement. Plain
// appends use COPY. Upserts (ON CONFLICT), which COPY cannot do, and the
// events, whose new IDs come back with RETURNING, use one INSERT … SELECT
// FROM unnest($1::type[], …) with a column array per parameter: one round
// trip, no staging table. (Staging through a temporary table cost three round
// trips per table and batch and a file truncation at every commit, and behind
// PgBouncer a table created and dropped in every transaction.)

// withPgx runs f with the pgx connection under conn. Statements f issues
// take part in the transaction open on conn.
func withPgx(conn *sql.Conn, f func(*pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: not a pgx connection: %T", dc)
		}
		return f(c.Conn())
	})
}

// copyEvents stores the events of a batch and returns the IDs that were
// new. Duplicates are rare (the pipeline drops most before they get here),
// so it first COPYs the batch inside a savepoint, which costs about a
// quarter less than INSERT … ON CONFLICT DO NOTHING RETURNING; only when
// that meets an ID already stored does it roll back to the savepoint and
// insert with ON CONFLICT.
func (s *Store) copyEvents(ctx context.Context, bt *batchTx, rows []eventRow) (map[string]bool, error) {
	cols := []string{"id", "guild_id", "kind", "user_id", "channel_id", "at", "data", "ingested_at"}
	args := make([]any, 0, len(rows)*len(cols))
	for i := range rows {
		r := &rows[i]
		args = append(args, r.id, r.guild, r.kind, r.user, r.channel, r.at, string(r.data), r.ingestedAt)
	}
	if _, err := bt.tx.ExecContext(ctx, `SAVEPOINT events_copy`); err != nil {
		return nil, err
	}
	err := withPgx(bt.conn, func(c *pgx.Conn) error {
		_, err := c.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			return args[i*len(cols) : (i+1)*len(cols)], nil
		}))
		return err
	})
	if err == nil {
		isNew := make(map[string]bool, len(rows))
		for i := range rows {
			isNew[rows[i].id] = true
		}
		return isNew, nil
	}
	if !isUniqueViolation(err) {
		return nil, fmt.Errorf("copy: %w", err)
	}
	if _, err := bt.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT events_copy`); err != nil {
		return nil, err
	}
	q, params, err := s.unnestInsert(ctx, bt, "events", cols, args)
	if err != nil {
		return nil, err
	}
	rs, err := bt.tx.QueryContext(ctx, q+` ON CONFLICT (id) DO NOTHING RETURNING id`, params...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	isNew := make(map[string]bool, len(rows))
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, err
		}
		isNew[id] = true
	}
	return isNew, rs.Err()
}

// unnestInsert returns `INSERT INTO table (cols) SELECT * FROM unnest(…)`
// with one typed array parameter per column, and those parameters, for rows
// of len(cols) values each (args is flat).
func (s *Store) unnestInsert(ctx context.Context, bt *batchTx, table string, cols []string, args []any) (string, []any, error) {
	types, err := s.columnTypes(ctx, bt, table)
	if err != nil {
		return "", nil, err
	}
	var q strings.Builder
	q.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") SELECT * FROM unnest(")
	params := make([]any, len(cols))
	for j, c := range cols {
		t, ok := types[c]
		if !ok {
			return "", nil, fmt.Errorf("store: %s has no column %s", table, c)
		}
		if j > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "$%d::%s[]", j+1, t)
		col := make([]any, len(args)/len(cols))
		for i := range col {
			col[i] = args[i*len(cols)+j]
		}
		params[j] = col
	}
	q.WriteString(")")
	return q.String(), params, nil
}

// columnTypes returns a table's column types (their udt names, such as
// int8 or text), read once per table.
func (s *Store) columnTypes(ctx context.Context, bt *batchTx, table string) (map[string]string, error) {
	if t, ok := s.colTypes.Load(table); ok {
		return t.(map[string]string), nil
	}
	rs, err := bt.tx.QueryContext(ctx, `SELECT column_name, udt_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`, table)
	if err != nil {
		return nil, fmt.Errorf("store: columns of %s: %w", table, err)
	}
	defer rs.Close()
	types := map[string]string{}
	for rs.Next() {
		var c, t string
		if err := rs.Scan(&c, &t); err != nil {
			return nil, err
		}
		types[c] = t
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("store: table %s not found", table)
	}
	s.colTypes.Store(table, types)
	return types, nil
}
