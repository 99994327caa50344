package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/spywatcher/spywatcher/host/internal/sealing"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// KeyStore keeps access token signing keys.
type KeyStore interface {
	AddSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	DeleteSigningKeysBefore(ctx context.Context, t time.Time) error
}

// Token audience and issuer; a token minted for anything else is refused.
const (
	Issuer   = "spywatcher"
	Audience = "spywatcher-api"
)

// signingMethod is the one algorithm accepted. Pinning it refuses "none"
// and algorithm-confusion tokens whatever their header says.
var signingMethod = jwt.SigningMethodHS256

// Keyring signs and verifies access tokens (JWT, HS256) with keys kept in
// the database so that every instance can verify every instance's tokens.
// The newest key signs; older keys verify until no token they signed can
// still be live. Key IDs travel in the "kid" header. With a secret key
// configured, keys are stored sealed (AES-256-GCM); they are never logged.
type Keyring struct {
	st       KeyStore
	seal     *sealing.Keyring // nil: stored unsealed
	rotate   time.Duration
	tokenTTL time.Duration
	now      func() time.Time
	log      *slog.Logger

	rotating sync.Mutex // one rotation at a time in this process
	mu       sync.RWMutex
	keys     map[string][]byte
	current  string
	currentT time.Time
	loadedAt time.Time
}

// KeyringConfig configures NewKeyring.
type KeyringConfig struct {
	SecretKey string // optional; seals stored keys
	// OldSecretKeys still open keys sealed before a secret key rotation.
	OldSecretKeys []string
	Rotate        time.Duration // a new key signs after this long
	TokenTTL      time.Duration // access token lifetime
	Now           func() time.Time
	Logger        *slog.Logger
}

// NewKeyring loads the signing keys, creating the first one if needed.
func NewKeyring(ctx context.Context, st KeyStore, c KeyringConfig) (*Keyring, error) {
	k := &Keyring{st: st, rotate: c.Rotate, tokenTTL: c.TokenTTL, now: c.Now, log: c.Logger, keys: map[string][]byte{}}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.rotate <= 0 {
		k.rotate = 24 * time.Hour
	}
	if k.tokenTTL <= 0 {
		k.tokenTTL = 15 * time.Minute
	}
	seal, err := sealing.New(c.SecretKey, c.OldSecretKeys)
	if err != nil {
		return nil, fmt.Errorf("auth: keyring cipher: %w", err)
	}
	k.seal = seal
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	if err := k.ensureCurrent(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// sealKey encodes a signing key for storage: "plain:<base64>" without a
// secret key, else "sealed:<key id>:<base64>" (see package sealing).
func (k *Keyring) sealKey(raw []byte) (string, error) {
	return SealSigningKey(k.seal, raw)
}

func (k *Keyring) openKey(s string) ([]byte, error) {
	return OpenSigningKey(k.seal, s)
}

// SealSigningKey encodes a signing key for storage under the keyring's
// current key.
func SealSigningKey(seal *sealing.Keyring, raw []byte) (string, error) {
	if seal.Current() == "" {
		return "plain:" + base64.RawStdEncoding.EncodeToString(raw), nil
	}
	kid, b, err := seal.Seal(raw, nil)
	if err != nil {
		return "", err
	}
	return "sealed:" + kid + ":" + base64.RawStdEncoding.EncodeToString(b), nil
}

// OpenSigningKey decodes a stored signing key. Keys sealed before key IDs
// were recorded ("sealed:<base64>") are opened by whichever key fits.
func OpenSigningKey(seal *sealing.Keyring, s string) ([]byte, error) {
	kind, body, _ := strings.Cut(s, ":")
	kid, enc, hasID := strings.Cut(body, ":")
	if !hasID {
		enc = body
	}
	b, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New("bad encoding")
	}
	switch {
	case kind == "plain":
		return b, nil
	case kind == "sealed" && seal == nil:
		return nil, errors.New("sealed, and no secret key is configured")
	case kind == "sealed" && hasID:
		return seal.Open(kid, b, nil)
	case kind == "sealed":
		p, _, err := seal.OpenAny(b, nil)
		if err != nil {
			return nil, errors.New("sealed by another secret key")
		}
		return p, nil
	}
	return nil, errors.New("unknown key encoding")
}

// ResealSigningKeys re-encodes every stored signing key under the current
// secret key; keys no configured secret opens are reported and left alone.
func ResealSigningKeys(ctx context.Context, st interface {
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	SetSigningKeySecret(ctx context.Context, id, secret string) error
}, seal *sealing.Keyring) (resealed, failed int, err error) {
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, sk := range keys {
		raw, err := OpenSigningKey(seal, sk.Secret)
		if err != nil {
			failed++
			continue
		}
		enc, err := SealSigningKey(seal, raw)
		if err != nil {
			return resealed, failed, err
		}
		if err := st.SetSigningKeySecret(ctx, sk.ID, enc); err != nil {
			return resealed, failed, err
		}
		resealed++
	}
	return resealed, failed, nil
}

// load reads every key from the store.
func (k *Keyring) load(ctx context.Context) error {
	stored, err := k.st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("auth: load signing keys: %w", err)
	}
	keys := map[string][]byte{}
	var cur string
	var curT time.Time
	for _, s := range stored {
		raw, err := k.openKey(s.Secret)
		if err != nil {
			k.log.Warn("auth: signing key unusable; tokens it signed are refused", "kid", s.ID, "reason", err.Error())
			continue
		}
		keys[s.ID] = raw
		if s.CreatedAt.After(curT) {
			cur, curT = s.ID, s.CreatedAt
		}
	}
	k.mu.Lock()
	k.keys, k.current, k.currentT, k.loadedAt = keys, cur, curT, k.now()
	k.mu.Unlock()
	return nil
}

// ensureCurrent makes a new key when there is none or the newest is due
// for rotation, and forgets keys too old to have signed a live token.
func (k *Keyring) ensureCurrent(ctx context.Context) error {
	if !k.due() {
		return nil
	}
	k.rotating.Lock()
	defer k.rotating.Unlock()
	// Another instance (or goroutine) may have rotated already.
	if err := k.load(ctx); err != nil {
		return err
	}
	if !k.due() {
		return nil
	}
	now := k.now()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("auth: new signing key: %w", err)
	}
	idb := make([]byte, 8)
	rand.Read(idb) //nolint:errcheck // crypto/rand does not fail
	sealed, err := k.sealKey(raw)
	if err != nil {
		return fmt.Errorf("auth: seal signing key: %w", err)
	}
	id := hex.EncodeToString(idb)
	if err := k.st.AddSigningKey(ctx, store.SigningKey{ID: id, Secret: sealed, CreatedAt: now}); err != nil {
		return err
	}
	// A key stops signing at curT+rotate and its last token dies tokenTTL later.
	if err := k.st.DeleteSigningKeysBefore(ctx, now.Add(-k.rotate-2*k.tokenTTL)); err != nil {
		return err
	}
	k.log.Info("auth: access token signing key rotated", "kid", id)
	return k.load(ctx)
}

// due reports whether the signing key must be made or rotated.
func (k *Keyring) due() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current == "" || k.now().Sub(k.currentT) >= k.rotate
}

// Claims are the claims of an access token.
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	CSRF      string `json:"csrf,omitempty"`
}

// Sign issues an access token for an account's session.
func (k *Keyring) Sign(ctx context.Context, accountID, sessionID, csrf string) (string, time.Time, error) {
	if err := k.ensureCurrent(ctx); err != nil {
		return "", time.Time{}, err
	}
	now := k.now()
	exp := now.Add(k.tokenTTL)
	jti := make([]byte, 12)
	rand.Read(jti) //nolint:errcheck // crypto/rand does not fail
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: accountID, Audience: jwt.ClaimStrings{Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
			ID: hex.EncodeToString(jti),
		},
		SessionID: sessionID, CSRF: csrf,
	}
	t := jwt.NewWithClaims(signingMethod, c)
	k.mu.RLock()
	kid, key := k.current, k.keys[k.current]
	k.mu.RUnlock()
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign access token: %w", err)
	}
	return s, exp, nil
}

// Verify checks an access token's algorithm, key, signature, audience,
// issuer and times, and returns its claims. The error says why a token was
// refused (for the audit log) and always wraps ErrUnauthenticated.
func (k *Keyring) Verify(ctx context.Context, token string) (Claims, error) {
	var c Claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{signingMethod.Alg()}),
		jwt.WithAudience(Audience), jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(k.now), jwt.WithLeeway(5*time.Second),
	)
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" || len(kid) > 64 {
			return nil, errors.New("no key id")
		}
		if key := k.key(ctx, kid); key != nil {
			return key, nil
		}
		return nil, errors.New("unknown key id")
	})
	if err != nil {
		return c, fmt.Errorf("%w: access token: %s", ErrUnauthenticated, reason(err))
	}
	if c.SessionID == "" || c.Subject == "" {
		return c, fmt.Errorf("%w: access token without a session", ErrUnauthenticated)
	}
	return c, nil
}

// key returns the key with kid, reloading the keys (at most once a second)
// when another instance may have rotated.
func (k *Keyring) key(ctx context.Context, kid string) []byte {
	k.mu.RLock()
	key, ok := k.keys[kid]
	stale := k.now().Sub(k.loadedAt) > time.Second
	k.mu.RUnlock()
	if ok {
		return key
	}
	if !stale {
		return nil
	}
	if err := k.load(ctx); err != nil {
		k.log.Error("auth: reload signing keys", "err", err)
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[kid]
}

// reason names why a token was refused without echoing the token.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable (algorithm or key)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing claim"
	}
	return "invalid"
}
