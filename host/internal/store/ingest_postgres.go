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
// abort on the first one) and the new IDs returned in the same statement.
// Directly connected, a staging table lives as long as its connection and is
// emptied at every commit (ON COMMIT DELETE ROWS): creating it in every
// transaction instead halved PostgreSQL ingest (BENCHMARKS.md). Behind
// PgBouncer in transaction mode (Options.PgBouncer) a temporary table is
// session state the next transaction may not see, or another client may, so
// there staging tables live for one transaction (ON COMMIT DROP).

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
	if err := stage(ctx, bt, "events_stage", "events"); err != nil {
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

// stage makes the transaction's staging table target shaped like table,
// empty. It is dropped at commit or rollback. (A server connection still
// holding one from a release that kept them per connection has it empty:
// those were emptied at commit; IF NOT EXISTS reuses it.)
func stage(ctx context.Context, bt *batchTx, target, table string) error {
	if bt.staged[target] {
		_, err := bt.tx.ExecContext(ctx, `TRUNCATE `+target)
		return err
	}
	onCommit := "DELETE ROWS"
	if bt.perTx {
		onCommit = "DROP"
	}
	if _, err := bt.tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+target+
		` (LIKE `+table+` INCLUDING DEFAULTS) ON COMMIT `+onCommit); err != nil {
		return err
	}
	bt.staged[target] = true
	return nil
}
