package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

type apiKeyStore interface {
	CreateAPIKey(ctx context.Context, k store.APIKey, hash string) (store.APIKey, error)
	GetAPIKey(ctx context.Context, id string) (store.APIKey, error)
	ListAPIKeys(ctx context.Context, accountID string) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error
	APIKeyUsage(ctx context.Context, id string, from time.Time) ([]store.KeyUsage, error)
}

// SubjectLinker scopes API keys and forgets subjects; *authz.Enforcer implements it.
type SubjectLinker interface {
	Link(ctx context.Context, sub, parent string, doms ...string) error
	RemoveSubject(ctx context.Context, sub string) error
}

type apiKeysHandler struct {
	store   apiKeyStore
	links   SubjectLinker
	tiers   map[string]auth.Tier
	defTier string
	g       *guard
	now     func() time.Time
	err     errWriter
}

// createdKey is a new key with its secret, shown this once.
type createdKey struct {
	store.APIKey
	Secret string `json:"secret"`
}

func (h *apiKeysHandler) list(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	keys := []store.APIKey{}
	if p.AccountID != "" {
		var err error
		if keys, err = h.store.ListAPIKeys(r.Context(), p.AccountID); err != nil {
			h.err.write(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": keys, "tiers": h.tiers})
}

func (h *apiKeysHandler) create(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	if p.AccountID == "" {
		h.err.write(w, r, badRequest("the admin token has no account to own a key: log in as a user (create one with spywatcher user create)"))
		return
	}
	var body struct {
		Name      string   `json:"name"`
		Guilds    []string `json:"guilds"`
		Write     bool     `json:"write"`
		Tier      string   `json:"tier"`
		ExpiresIn string   `json:"expires_in"`
	}
	if err := decodeJSON(r, &body); err != nil {
		h.err.write(w, r, err)
		return
	}
	var fields []event.FieldError
	if len(body.Name) > 100 {
		fields = append(fields, event.FieldError{Field: "name", Message: "at most 100 characters"})
	}
	if body.Tier == "" {
		body.Tier = h.defTier
	}
	if _, ok := h.tiers[body.Tier]; !ok {
		fields = append(fields, event.FieldError{Field: "tier", Message: "must be one of " + strings.Join(auth.TierNames(h.tiers), ", ")})
	}
	switch {
	case len(body.Guilds) == 0:
		fields = append(fields, event.FieldError{Field: "guilds", Message: `list the guild IDs the key may use, or ["*"] for all of yours`})
	case len(body.Guilds) > 100:
		fields = append(fields, event.FieldError{Field: "guilds", Message: "at most 100 guilds"})
	case len(body.Guilds) > 1 && containsStr(body.Guilds, authz.AnyDomain):
		fields = append(fields, event.FieldError{Field: "guilds", Message: `"*" stands alone`})
	default:
		for _, g := range body.Guilds {
			if g != authz.AnyDomain && !event.IsSnowflake(g) {
				fields = append(fields, event.FieldError{Field: "guilds", Message: "must be Discord IDs"})
				break
			}
		}
	}
	var expires *time.Time
	if body.ExpiresIn != "" {
		d, err := time.ParseDuration(body.ExpiresIn)
		if err != nil || d < time.Minute || d > 5*366*24*time.Hour {
			fields = append(fields, event.FieldError{Field: "expires_in", Message: "a duration between 1m and 43920h, such as 720h"})
		} else {
			t := h.now().Add(d).UTC().Truncate(time.Millisecond)
			expires = &t
		}
	}
	if len(fields) > 0 {
		h.err.write(w, r, badRequest("invalid API key request", fields...))
		return
	}
	// A key acts as its owner in its guilds: the owner must have a role there.
	for _, g := range body.Guilds {
		if g != authz.AnyDomain {
			if err := h.g.allow(r, g, "guild", authz.Read); err != nil {
				h.err.write(w, r, err)
				return
			}
		}
	}
	id, secret := auth.NewAPIKey()
	k, err := h.store.CreateAPIKey(r.Context(), store.APIKey{ID: id, AccountID: p.AccountID, Name: body.Name,
		Prefix: secret[:len(auth.APIKeyPrefix)+8], Guilds: body.Guilds, Write: body.Write, Tier: body.Tier, ExpiresAt: expires}, auth.HashToken(secret))
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := h.links.Link(r.Context(), authz.APIKey(id), authz.User(p.AccountID), body.Guilds...); err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "apikey.create", "apikey:"+id, "", "ok", "guilds="+strings.Join(body.Guilds, ",")+" write="+boolStr(body.Write)+" tier="+body.Tier)
	writeJSON(w, http.StatusCreated, createdKey{APIKey: k, Secret: secret})
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// ownKey returns the key of the path if the caller owns it (or is it).
func (h *apiKeysHandler) ownKey(r *http.Request) (store.APIKey, error) {
	p, _ := auth.PrincipalFrom(r.Context())
	id := chi.URLParam(r, "key")
	k, err := h.store.GetAPIKey(r.Context(), id)
	if err != nil || p.AccountID == "" || k.AccountID != p.AccountID || (p.Kind == auth.KindAPIKey && p.ID != k.ID) {
		return k, notFound("API key " + truncate(id, 40) + " not found among yours")
	}
	return k, nil
}

func (h *apiKeysHandler) revoke(w http.ResponseWriter, r *http.Request) {
	k, err := h.ownKey(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := revokeKey(r.Context(), h.store, h.links, k.ID); err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "apikey.revoke", "apikey:"+k.ID, "", "ok", "")
	w.WriteHeader(http.StatusNoContent)
}

func revokeKey(ctx context.Context, st apiKeyStore, links SubjectLinker, id string) error {
	if err := st.RevokeAPIKey(ctx, id); err != nil {
		return err
	}
	return links.RemoveSubject(ctx, authz.APIKey(id))
}

func (h *apiKeysHandler) usage(w http.ResponseWriter, r *http.Request) {
	k, err := h.ownKey(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	days, err := h.store.APIKeyUsage(r.Context(), k.ID, h.now().Add(-30*24*time.Hour))
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": k, "tier": h.tiers[k.Tier], "days": days})
}
