package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// PutPluginArtifact keeps the code of plugin id at version, replacing the
// previous version's: instances that have not loaded a plugin yet read it
// from here (GetPluginArtifact).
func (s *Store) PutPluginArtifact(ctx context.Context, id, version, sha256 string, code []byte) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO plugin_artifacts (plugin_id, version, sha256, code) VALUES (?, ?, ?, ?)
		ON CONFLICT (plugin_id) DO UPDATE SET version = excluded.version, sha256 = excluded.sha256, code = excluded.code`),
		id, version, sha256, code)
	if err != nil {
		return fmt.Errorf("store: put plugin artifact %s %s: %w", id, version, err)
	}
	return nil
}

// GetPluginArtifact returns the code of plugin id at version and its
// SHA-256, or ErrNotFound.
func (s *Store) GetPluginArtifact(ctx context.Context, id, version string) (code []byte, sha256 string, err error) {
	err = s.r.QueryRowContext(ctx, s.q(`SELECT code, sha256 FROM plugin_artifacts WHERE plugin_id = ? AND version = ?`), id, version).Scan(&code, &sha256)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("store: plugin artifact %s %s: %w", id, version, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("store: plugin artifact %s %s: %w", id, version, err)
	}
	return code, sha256, nil
}
