package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL bulk ingest uses COPY. Events go through a temporary staging
// table so that duplicates can be dropped with ON CONFLICT (COPY itself would
// abort on the first one) and the new IDs returned in the same statement. The
// staging table is created per connection and emptied at commit, which also
// works through PgBouncer in transaction mode.

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

func (s *Store) copyEvents(ctx context.Context, bt *batchTx, rows []eventRow) (map[string]bool, error) {
	tx := bt.tx
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS events_stage
		(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
		return nil, err
	}
	err := withPgx(bt.conn, func(c *pgx.Conn) error {
		_, err := c.CopyFrom(ctx, pgx.Identifier{"events_stage"},
			[]string{"id", "guild_id", "kind", "user_id", "channel_id", "at", "data", "ingested_at"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				r := &rows[i]
				return []any{r.id, r.guild, r.kind, r.user, r.channel, r.at, string(r.data), r.ingestedAt}, nil
			}))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	rs, err := tx.QueryContext(ctx, `INSERT INTO events SELECT * FROM events_stage ON CONFLICT (id) DO NOTHING RETURNING id`)
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
