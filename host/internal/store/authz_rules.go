package store

import (
	"context"
	"database/sql"
	"fmt"
)

// RulesVersion returns a number that changes whenever the rules change.
func (s *Store) RulesVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, `SELECT version FROM authz_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: rules version: %w", err)
	}
	return v, nil
}

func (s *Store) bumpRulesVersion(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE authz_version SET version = version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("store: rules version: %w", err)
	}
	return nil
}

// Rule is one stored casbin policy line: ptype ("p" or "g") and up to four values.
type Rule struct {
	PType string
	V     [4]string
}

// ListRules returns every stored authorization rule.
func (s *Store) ListRules(ctx context.Context) ([]Rule, error) {
	rs, err := s.r.QueryContext(ctx, `SELECT ptype, v0, v1, v2, v3 FROM authz_rules ORDER BY ptype, v0, v1, v2, v3`)
	if err != nil {
		return nil, fmt.Errorf("store: list rules: %w", err)
	}
	defer rs.Close()
	var out []Rule
	for rs.Next() {
		var r Rule
		if err := rs.Scan(&r.PType, &r.V[0], &r.V[1], &r.V[2], &r.V[3]); err != nil {
			return nil, fmt.Errorf("store: list rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// AddRules stores rules; ones already present are kept as they are.
func (s *Store) AddRules(ctx context.Context, rules []Rule) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add rules: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	for _, r := range rules {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_rules (ptype, v0, v1, v2, v3) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (ptype, v0, v1, v2, v3) DO NOTHING`), r.PType, r.V[0], r.V[1], r.V[2], r.V[3]); err != nil {
			return fmt.Errorf("store: add rules: %w", err)
		}
	}
	if err := s.bumpRulesVersion(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add rules: %w", err)
	}
	return nil
}

// RemoveRules deletes rules matching a filter: ptype and, for each non-empty
// value of match, that column (v0 onwards from field).
func (s *Store) RemoveRules(ctx context.Context, ptype string, field int, match ...string) (int64, error) {
	q := `DELETE FROM authz_rules WHERE ptype = ?`
	args := []any{ptype}
	for i, v := range match {
		if v == "" {
			continue
		}
		if field+i > 3 {
			return 0, fmt.Errorf("store: remove rules: field %d out of range", field+i)
		}
		q += fmt.Sprintf(" AND v%d = ?", field+i)
		args = append(args, v)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: remove rules: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	res, err := tx.ExecContext(ctx, s.q(q), args...)
	if err != nil {
		return 0, fmt.Errorf("store: remove rules: %w", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		if err := s.bumpRulesVersion(ctx, tx); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: remove rules: %w", err)
	}
	return n, nil
}

// ReplaceRules deletes the rules matching (ptype, field, match) and adds
// rules instead, in one transaction.
func (s *Store) ReplaceRules(ctx context.Context, ptype string, field int, match []string, rules []Rule) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: replace rules: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	q := `DELETE FROM authz_rules WHERE ptype = ?`
	args := []any{ptype}
	for i, v := range match {
		if v != "" {
			q += fmt.Sprintf(" AND v%d = ?", field+i)
			args = append(args, v)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(q), args...); err != nil {
		return fmt.Errorf("store: replace rules: %w", err)
	}
	for _, r := range rules {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_rules (ptype, v0, v1, v2, v3) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (ptype, v0, v1, v2, v3) DO NOTHING`), r.PType, r.V[0], r.V[1], r.V[2], r.V[3]); err != nil {
			return fmt.Errorf("store: replace rules: %w", err)
		}
	}
	if err := s.bumpRulesVersion(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: replace rules: %w", err)
	}
	return nil
}
