package cli

import (
	"context"
	"fmt"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

func migrate(ctx context.Context, args []string, env Env) error {
	cfg, rest, err := loadConfig("migrate", args, env)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", rest)}
	}
	st, err := store.Open(ctx, cfg.DSN(), store.Options{PgBouncer: cfg.DBPgBouncer})
	if err != nil {
		return err
	}
	defer st.Close()
	cur, latest, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s schema at version %d (this binary knows up to %d)\n", st.Dialect(), cur, latest)
	return nil
}
