package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/spywatcher/spywatcher/host/internal/sealing"
)

// Encryption at rest. Plugin key-value values are sealed whole (every
// plugin's, not only those of plugins granted message.content.read: the host
// cannot tell which values hold message content, a grant given later would
// leave earlier values in the clear, and AES-GCM costs microseconds per
// value); plugin_kv.enc_key names the sealing key ('' = plain). Short text
// secrets (OAuth PKCE verifiers) are stored as "sealed:<key id>:<base64>".
// The additional data binds each value to its row, so a sealed value copied
// to another row does not open.

// SetSeal replaces the keyring (tests; the CLI's key rotation).
func (s *Store) SetSeal(k *sealing.Keyring) { s.seal = k }

func kvAAD(pluginID, guildID, key string) []byte {
	return []byte(pluginID + "\x00" + guildID + "\x00" + key)
}

// sealKV returns what to store for a plugin value and the key that sealed it.
func (s *Store) sealKV(pluginID, guildID, key string, value []byte) ([]byte, string, error) {
	if s.seal.Current() == "" {
		return value, "", nil
	}
	kid, out, err := s.seal.Seal(value, kvAAD(pluginID, guildID, key))
	return out, kid, err
}

func (s *Store) openKV(pluginID, guildID, key, kid string, stored []byte) ([]byte, error) {
	if kid == "" {
		return stored, nil
	}
	return s.seal.Open(kid, stored, kvAAD(pluginID, guildID, key))
}

func (s *Store) sealText(plain, aad string) (string, error) {
	if s.seal.Current() == "" {
		return plain, nil
	}
	kid, b, err := s.seal.Seal([]byte(plain), []byte(aad))
	if err != nil {
		return "", err
	}
	return "sealed:" + kid + ":" + base64.RawStdEncoding.EncodeToString(b), nil
}

func (s *Store) openText(stored, aad string) (string, error) {
	rest, ok := strings.CutPrefix(stored, "sealed:")
	if !ok {
		return stored, nil
	}
	kid, body, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("store: malformed sealed value")
	}
	b, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil {
		return "", errors.New("store: malformed sealed value")
	}
	p, err := s.seal.Open(kid, b, []byte(aad))
	return string(p), err
}

// ResealResult counts what Reseal did.
type ResealResult struct {
	Resealed int `json:"resealed"` // values now sealed by the current key
	Failed   int `json:"failed"`   // values no configured key opens
}

// ResealPluginData re-encrypts every plugin value not sealed by the current
// key (including values stored in the clear before a key was configured),
// in batches of batch rows, each in its own short transaction.
func (s *Store) ResealPluginData(ctx context.Context, batch int) (ResealResult, error) {
	var res ResealResult
	cur := s.seal.Current()
	if cur == "" {
		return res, sealing.ErrNoKey
	}
	if batch <= 0 {
		batch = 500
	}
	var ap, ag, ak string // keyset cursor
	for {
		rs, err := s.r.QueryContext(ctx, s.q(`SELECT plugin_id, guild_id, key, value, enc_key FROM plugin_kv
			WHERE enc_key <> ? AND (plugin_id > ? OR (plugin_id = ? AND (guild_id > ? OR (guild_id = ? AND key > ?))))
			ORDER BY plugin_id, guild_id, key LIMIT ?`), cur, ap, ap, ag, ag, ak, batch)
		if err != nil {
			return res, fmt.Errorf("store: reseal: %w", err)
		}
		type row struct {
			p, g, k, kid string
			v            []byte
		}
		var rows []row
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.p, &r.g, &r.k, &r.v, &r.kid); err != nil {
				rs.Close()
				return res, fmt.Errorf("store: reseal: %w", err)
			}
			rows = append(rows, r)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return res, fmt.Errorf("store: reseal: %w", err)
		}
		if len(rows) == 0 {
			return res, nil
		}
		last := rows[len(rows)-1]
		ap, ag, ak = last.p, last.g, last.k
		err = s.writeTx(ctx, func(tx *sql.Tx) error {
			for _, r := range rows {
				plain, err := s.openKV(r.p, r.g, r.k, r.kid, r.v)
				if err != nil {
					res.Failed++
					s.log.Warn("plugin value cannot be opened; left as it is", "plugin", r.p, "guild", r.g, "key_id", r.kid, "err", err)
					continue
				}
				sealed, kid, err := s.sealKV(r.p, r.g, r.k, plain)
				if err != nil {
					return err
				}
				// Only if unchanged meanwhile: a concurrent write already used the current key.
				n, err := tx.ExecContext(ctx, s.q(`UPDATE plugin_kv SET value = ?, enc_key = ? WHERE plugin_id = ? AND guild_id = ? AND key = ? AND enc_key = ?`),
					sealed, kid, r.p, r.g, r.k, r.kid)
				if err != nil {
					return err
				}
				if c, _ := n.RowsAffected(); c > 0 {
					res.Resealed++
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("store: reseal: %w", err)
		}
	}
}

// SetSigningKeySecret replaces the stored (sealed) secret of a signing key.
func (s *Store) SetSigningKeySecret(ctx context.Context, id, secret string) error {
	if _, err := s.w.ExecContext(ctx, s.q(`UPDATE signing_keys SET secret = ? WHERE id = ?`), secret, id); err != nil {
		return fmt.Errorf("store: update signing key: %w", err)
	}
	return nil
}

// writeTx runs f in a write transaction.
func (s *Store) writeTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
