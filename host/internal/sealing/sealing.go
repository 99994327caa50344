// Package sealing encrypts sensitive values at rest with AES-256-GCM under a
// keyring of secrets from the configuration.
//
// It generalises how auth.Keyring has sealed signing keys since the
// beginning (AES-256-GCM, key = SHA-256 of the configured --secret-key): the
// current secret seals, and older secrets (--old-secret-keys) still open
// what they sealed, so a key is rotated by configuring a new secret, moving
// the old one to the old list, running `spywatcher keys rotate` to re-seal
// everything under the new key, and finally dropping the old secret.
//
// A key's ID is derived from its secret (a truncated hash under a fixed
// label, which reveals nothing usable about the secret), so operators never
// name keys and a sealed value records which key sealed it.
package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrUnknownKey is returned when a value was sealed by a key that is not
// configured.
var ErrUnknownKey = errors.New("sealing: value sealed by a key that is not configured (is --old-secret-keys missing it?)")

// ErrNoKey is returned by Seal when no secret is configured.
var ErrNoKey = errors.New("sealing: no secret key configured")

// Keyring holds the configured keys. The zero value and nil seal nothing.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	order   []string // current first, then the old keys as configured
}

// New returns a keyring whose current key is derived from current and which
// also opens values sealed by the old secrets. current "" gives a keyring
// that only opens (no new value is sealed); no secrets at all give nil.
func New(current string, old []string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	add := func(secret string) error {
		id := KeyID(secret)
		if _, dup := k.aeads[id]; dup {
			return nil
		}
		sum := sha256.Sum256([]byte(secret))
		block, err := aes.NewCipher(sum[:])
		if err != nil {
			return fmt.Errorf("sealing: %w", err)
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("sealing: %w", err)
		}
		k.aeads[id] = a
		k.order = append(k.order, id)
		return nil
	}
	if current != "" {
		if err := add(current); err != nil {
			return nil, err
		}
		k.current = KeyID(current)
	}
	for _, s := range old {
		if s == "" {
			continue
		}
		if err := add(s); err != nil {
			return nil, err
		}
	}
	if len(k.aeads) == 0 {
		return nil, nil
	}
	return k, nil
}

// KeyID is the ID of the key derived from secret.
func KeyID(secret string) string {
	sum := sha256.Sum256([]byte("spywatcher key id\x00" + secret))
	return hex.EncodeToString(sum[:4])
}

// Current returns the ID of the key that seals new values, "" for none.
func (k *Keyring) Current() string {
	if k == nil {
		return ""
	}
	return k.current
}

// Has reports whether the key with id is configured.
func (k *Keyring) Has(id string) bool {
	if k == nil {
		return false
	}
	_, ok := k.aeads[id]
	return ok
}

// Seal encrypts plain under the current key, binding it to aad (the value's
// identity, so a sealed value cannot be moved to another row). It returns
// the key ID and nonce||ciphertext.
func (k *Keyring) Seal(plain, aad []byte) (kid string, sealed []byte, err error) {
	if k == nil || k.current == "" {
		return "", nil, ErrNoKey
	}
	a := k.aeads[k.current]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("sealing: %w", err)
	}
	return k.current, a.Seal(nonce, nonce, plain, aad), nil
}

// Open decrypts a value sealed by the key kid with aad.
func (k *Keyring) Open(kid string, sealed, aad []byte) ([]byte, error) {
	if k == nil {
		return nil, ErrUnknownKey
	}
	a, ok := k.aeads[kid]
	if !ok {
		return nil, fmt.Errorf("%w: key %s", ErrUnknownKey, kid)
	}
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, errors.New("sealing: sealed value too short")
	}
	n := a.NonceSize()
	plain, err := a.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("sealing: open with key %s: %w", kid, err)
	}
	return plain, nil
}

// OpenAny decrypts a value sealed without a recorded key ID, trying every
// key (GCM authentication tells the right one). It exists for values sealed
// before key IDs were recorded.
func (k *Keyring) OpenAny(sealed, aad []byte) ([]byte, string, error) {
	if k == nil {
		return nil, "", ErrUnknownKey
	}
	for _, id := range k.order {
		if p, err := k.Open(id, sealed, aad); err == nil {
			return p, id, nil
		}
	}
	return nil, "", ErrUnknownKey
}
