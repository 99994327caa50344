package sealing

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"testing"
)

const (
	s1 = "first-secret-first-secret-first-secret"
	s2 = "second-secret-second-secret-second-secret"
)

func TestRoundTripAndRotation(t *testing.T) {
	k1, err := New(s1, nil)
	if err != nil {
		t.Fatal(err)
	}
	kid, sealed, err := k1.Seal([]byte("message content"), []byte("row-1"))
	if err != nil || kid != KeyID(s1) || bytes.Contains(sealed, []byte("message")) {
		t.Fatalf("seal: %q %v", kid, err)
	}
	if p, err := k1.Open(kid, sealed, []byte("row-1")); err != nil || string(p) != "message content" {
		t.Fatalf("open: %q %v", p, err)
	}
	if _, err := k1.Open(kid, sealed, []byte("row-2")); err == nil {
		t.Fatal("opened with another row's additional data")
	}
	// Rotation: the new key seals, the old still opens.
	k2, _ := New(s2, []string{s1})
	if k2.Current() != KeyID(s2) || !k2.Has(KeyID(s1)) {
		t.Fatalf("keyring %v", k2.order)
	}
	if p, err := k2.Open(kid, sealed, []byte("row-1")); err != nil || string(p) != "message content" {
		t.Fatalf("old value with the rotated keyring: %v", err)
	}
	kid2, _, _ := k2.Seal([]byte("x"), nil)
	if kid2 != KeyID(s2) {
		t.Fatalf("new values sealed by %s", kid2)
	}
	// Without the old key the old value is refused, and says why.
	k3, _ := New(s2, nil)
	if _, err := k3.Open(kid, sealed, []byte("row-1")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old value without the old key: %v", err)
	}
	if KeyID(s1) == KeyID(s2) || len(KeyID(s1)) != 8 {
		t.Fatal("key IDs")
	}
}

func TestNoKey(t *testing.T) {
	k, err := New("", nil)
	if err != nil || k != nil {
		t.Fatalf("no secrets: %v %v", k, err)
	}
	if _, _, err := k.Seal([]byte("x"), nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal without a key: %v", err)
	}
	if k.Current() != "" {
		t.Fatal("current of nil")
	}
	// Only old keys: opens, never seals.
	ro, _ := New("", []string{s1})
	if _, _, err := ro.Seal([]byte("x"), nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal with only old keys: %v", err)
	}
}

// TestOpenAnyReadsTheSigningKeyFormat: values sealed before key IDs were
// recorded (auth's signing keys: AES-GCM under SHA-256 of the secret,
// nonce first, no additional data) open with OpenAny.
func TestOpenAnyReadsTheSigningKeyFormat(t *testing.T) {
	sum := sha256.Sum256([]byte(s1))
	block, _ := aes.NewCipher(sum[:])
	a, _ := cipher.NewGCM(block)
	nonce := make([]byte, a.NonceSize())
	legacy := a.Seal(nonce, nonce, []byte("signing key"), nil)
	k, _ := New(s2, []string{s1})
	p, id, err := k.OpenAny(legacy, nil)
	if err != nil || string(p) != "signing key" || id != KeyID(s1) {
		t.Fatalf("legacy value: %q %s %v", p, id, err)
	}
}
