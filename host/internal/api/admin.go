package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

type adminStore interface {
	CreateAccount(ctx context.Context, a store.Account) (store.Account, error)
	GetAccount(ctx context.Context, id string) (store.Account, error)
	ListAccounts(ctx context.Context) ([]store.Account, error)
	UpdateAccount(ctx context.Context, id string, u store.AccountUpdate) error
	DeleteAccount(ctx context.Context, id string) error
	ListSessions(ctx context.Context, accountID string, all bool) ([]store.Session, error)
	RevokeSession(ctx context.Context, id, reason string) error
	RevokeAccountSessions(ctx context.Context, accountID, reason string) error
	ListAudit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error)
	apiKeyStore
}

// RoleManager assigns roles; *authz.Enforcer implements it.
type RoleManager interface {
	RoleReader
	SubjectLinker
	SetRole(ctx context.Context, sub, dom, role string) error
}

type adminHandler struct {
	store  adminStore
	roles  RoleManager
	argon2 auth.Argon2
	g      *guard
	err    errWriter
}

// account is an account with its roles, as the admin API shows it.
type account struct {
	store.Account
	InstanceAdmin bool              `json:"instance_admin"`
	Roles         map[string]string `json:"roles"`
}

func (h *adminHandler) withRoles(a store.Account) (account, error) {
	roles, err := h.roles.Roles(authz.User(a.ID))
	if err != nil {
		return account{}, err
	}
	return account{Account: a, InstanceAdmin: roles[authz.AnyDomain] == authz.RoleInstanceAdmin, Roles: roles}, nil
}

func (h *adminHandler) listUsers(w http.ResponseWriter, r *http.Request) {
	accs, err := h.store.ListAccounts(r.Context())
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	out := make([]account, 0, len(accs))
	for _, a := range accs {
		x, err := h.withRoles(a)
		if err != nil {
			h.err.write(w, r, err)
			return
		}
		out = append(out, x)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

var usernameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{1,63}$`)

// ValidUsername reports whether name may be a local account's login name.
// ("discord-<id>" names are taken by Discord accounts, which have no password.)
func ValidUsername(name string) bool {
	return usernameRE.MatchString(name) && !strings.HasPrefix(name, "discord-")
}

func (h *adminHandler) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Username      string `json:"username"`
		Password      string `json:"password"`
		DisplayName   string `json:"display_name"`
		InstanceAdmin bool   `json:"instance_admin"`
	}
	if err := decodeJSON(r, &body); err != nil {
		h.err.write(w, r, err)
		return
	}
	if !ValidUsername(body.Username) {
		h.err.write(w, r, badRequest("username: 2 to 64 letters, digits, dots, dashes or underscores",
			event.FieldError{Field: "username", Message: "2 to 64 letters, digits, . _ -"}))
		return
	}
	hash, err := h.argon2.Hash(body.Password)
	if errors.Is(err, auth.ErrWeakPassword) {
		h.err.write(w, r, badRequest(err.Error(), event.FieldError{Field: "password", Message: "10 to 256 characters"}))
		return
	}
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	a, err := CreateUser(r.Context(), h.store, h.roles, store.Account{ID: auth.NewAccountID(), Username: body.Username,
		DisplayName: truncate(body.DisplayName, 100), PasswordHash: hash}, body.InstanceAdmin)
	if errors.Is(err, store.ErrConflict) {
		h.err.write(w, r, &Error{Status: http.StatusConflict, Code: "conflict", Message: "username " + body.Username + " is taken"})
		return
	}
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "user.create", authz.User(a.ID), "", "ok", "username="+a.Username+" instance_admin="+boolStr(body.InstanceAdmin))
	x, err := h.withRoles(a)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, x)
}

// CreateUser stores an account and, if asked, makes it an instance admin.
// The CLI's user create uses it too.
func CreateUser(ctx context.Context, st interface {
	CreateAccount(ctx context.Context, a store.Account) (store.Account, error)
}, roles interface {
	SetRole(ctx context.Context, sub, dom, role string) error
}, a store.Account, instanceAdmin bool) (store.Account, error) {
	a, err := st.CreateAccount(ctx, a)
	if err != nil {
		return a, err
	}
	if instanceAdmin {
		if err := roles.SetRole(ctx, authz.User(a.ID), authz.AnyDomain, authz.RoleInstanceAdmin); err != nil {
			return a, err
		}
	}
	return a, nil
}

func (h *adminHandler) account(r *http.Request) (store.Account, error) {
	id := chi.URLParam(r, "account")
	a, err := h.store.GetAccount(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound("user " + truncate(id, 40) + " not found")
	}
	return a, err
}

func (h *adminHandler) getUser(w http.ResponseWriter, r *http.Request) {
	a, err := h.account(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	x, err := h.withRoles(a)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, x)
}

func (h *adminHandler) updateUser(w http.ResponseWriter, r *http.Request) {
	a, err := h.account(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	var body struct {
		DisplayName   *string `json:"display_name"`
		Password      *string `json:"password"`
		Disabled      *bool   `json:"disabled"`
		InstanceAdmin *bool   `json:"instance_admin"`
	}
	if err := decodeJSON(r, &body); err != nil {
		h.err.write(w, r, err)
		return
	}
	u := store.AccountUpdate{DisplayName: body.DisplayName, Disabled: body.Disabled}
	if body.Password != nil {
		hash, err := h.argon2.Hash(*body.Password)
		if err != nil {
			h.err.write(w, r, badRequest(err.Error(), event.FieldError{Field: "password", Message: "10 to 256 characters"}))
			return
		}
		u.PasswordHash = &hash
	}
	if err := h.store.UpdateAccount(r.Context(), a.ID, u); err != nil {
		h.err.write(w, r, storeErr(err, "user "+a.ID))
		return
	}
	// A new password or a disabled account ends every session.
	if body.Password != nil || (body.Disabled != nil && *body.Disabled) {
		if err := h.store.RevokeAccountSessions(r.Context(), a.ID, "account changed by an admin"); err != nil {
			h.err.write(w, r, err)
			return
		}
	}
	if body.InstanceAdmin != nil {
		role := ""
		if *body.InstanceAdmin {
			role = authz.RoleInstanceAdmin
		}
		if err := h.roles.SetRole(r.Context(), authz.User(a.ID), authz.AnyDomain, role); err != nil {
			h.err.write(w, r, err)
			return
		}
	}
	detail := ""
	if body.Password != nil {
		detail += "password changed; "
	}
	if body.Disabled != nil {
		detail += "disabled=" + boolStr(*body.Disabled) + "; "
	}
	if body.InstanceAdmin != nil {
		detail += "instance_admin=" + boolStr(*body.InstanceAdmin)
	}
	h.g.record(r, "user.update", authz.User(a.ID), "", "ok", detail)
	h.getUser(w, r)
}

func (h *adminHandler) deleteUser(w http.ResponseWriter, r *http.Request) {
	a, err := h.account(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	keys, err := h.store.ListAPIKeys(r.Context(), a.ID)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := h.store.DeleteAccount(r.Context(), a.ID); err != nil {
		h.err.write(w, r, storeErr(err, "user "+a.ID))
		return
	}
	for _, k := range keys {
		if err := h.roles.RemoveSubject(r.Context(), authz.APIKey(k.ID)); err != nil {
			h.err.write(w, r, err)
			return
		}
	}
	if err := h.roles.RemoveSubject(r.Context(), authz.User(a.ID)); err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "user.delete", authz.User(a.ID), "", "ok", "username="+a.Username)
	w.WriteHeader(http.StatusNoContent)
}

func (h *adminHandler) userSessions(w http.ResponseWriter, r *http.Request) {
	a, err := h.account(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	xs, err := h.store.ListSessions(r.Context(), a.ID, true)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": xs})
}

func (h *adminHandler) revokeSession(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "session")
	if err := h.store.RevokeSession(r.Context(), id, "revoked by an admin"); err != nil {
		h.err.write(w, r, storeErr(err, "session "+truncate(id, 40)))
		return
	}
	h.g.record(r, "session.revoke", "session "+id, "", "ok", "by an admin")
	w.WriteHeader(http.StatusNoContent)
}

func (h *adminHandler) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.store.ListAPIKeys(r.Context(), r.URL.Query().Get("user"))
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": keys})
}

func (h *adminHandler) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "key")
	if err := revokeKey(r.Context(), h.store, h.roles, id); err != nil {
		h.err.write(w, r, storeErr(err, "API key "+truncate(id, 40)))
		return
	}
	h.g.record(r, "apikey.revoke", "apikey:"+id, "", "ok", "by an admin")
	w.WriteHeader(http.StatusNoContent)
}

func (h *adminHandler) audit(w http.ResponseWriter, r *http.Request) {
	writeAudit(w, r, h.store, h.err, "")
}

type auditReader interface {
	ListAudit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error)
}

// writeAudit answers a page of the audit log, of one guild or ("") all.
func writeAudit(w http.ResponseWriter, r *http.Request, st auditReader, e errWriter, guild string) {
	p := query(r)
	q := store.AuditQuery{
		GuildID: guild,
		Actor:   p.str("actor", 128),
		Action:  p.str("action", 64),
		Result:  p.oneOf("result", "", "ok", "denied", "failed"),
		Limit:   p.limit(50, 500),
		Cursor:  p.str("cursor", 512),
	}
	if guild == "" {
		q.GuildID = p.snowflake("guild")
	}
	if err := p.err(); err != nil {
		e.write(w, r, err)
		return
	}
	page, err := st.ListAudit(r.Context(), q)
	if err != nil {
		e.write(w, r, storeErr(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, page)
}
