package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

type guildAccessStore interface {
	GetAccount(ctx context.Context, id string) (store.Account, error)
	GetGuildAccess(ctx context.Context, guildID string) (store.GuildAccess, error)
	SetGuildAccess(ctx context.Context, ga store.GuildAccess) error
	ListAudit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error)
}

// GrantManager lists, gives and takes role assignments; *authz.Enforcer
// implements it. (Plugin grants go through the plugin host, which checks
// them against what each plugin asks for; see plugins.go.)
type GrantManager interface {
	RoleManager
	RoleAssignments(dom string) ([]authz.Assignment, error)
}

// guildAdminHandler serves a guild's roles, access settings and audit log:
// what a guild admin manages besides plugins.
type guildAdminHandler struct {
	store guildAccessStore
	enf   GrantManager
	g     *guard
	err   errWriter
}

func (h *guildAdminHandler) listRoles(w http.ResponseWriter, r *http.Request) {
	gid := chi.URLParam(r, "guild")
	as, err := h.enf.RoleAssignments(gid)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"guild_id": gid, "roles": as})
}

// roleObject is the permission needed to give or take role.
func roleObject(role string) string {
	switch role {
	case authz.RoleOwner:
		return "roles.owner"
	case authz.RoleAdmin:
		return "roles.admin"
	}
	return "roles"
}

// target returns the account of the path and its current role in the
// guild, after checking the caller may change that role.
func (h *guildAdminHandler) target(r *http.Request, gid string) (store.Account, error) {
	id := chi.URLParam(r, "account")
	a, err := h.store.GetAccount(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound("user " + truncate(id, 40) + " not found")
	}
	if err != nil {
		return a, err
	}
	roles, err := h.enf.Roles(authz.User(a.ID))
	if err != nil {
		return a, err
	}
	// Taking a role away needs the same right as giving it.
	if err := h.g.allow(r, gid, roleObject(roles[gid]), authz.Write); err != nil {
		return a, err
	}
	return a, nil
}

func (h *guildAdminHandler) setRole(w http.ResponseWriter, r *http.Request) {
	gid := chi.URLParam(r, "guild")
	var body struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(r, &body); err != nil {
		h.err.write(w, r, err)
		return
	}
	if authz.RoleRank(body.Role) == 0 || body.Role == authz.RoleInstanceAdmin {
		h.err.write(w, r, badRequest("role must be one of "+strings.Join(authz.GuildRoles, ", "),
			event.FieldError{Field: "role", Message: "must be one of " + strings.Join(authz.GuildRoles, ", ")}))
		return
	}
	if err := h.g.allow(r, gid, roleObject(body.Role), authz.Write); err != nil {
		h.err.write(w, r, err)
		return
	}
	a, err := h.target(r, gid)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := h.enf.SetRole(r.Context(), authz.User(a.ID), gid, body.Role); err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "role.assign", authz.User(a.ID), gid, "ok", "role="+body.Role)
	writeJSON(w, http.StatusOK, authz.Assignment{Subject: authz.User(a.ID), Domain: gid, Role: body.Role})
}

func (h *guildAdminHandler) removeRole(w http.ResponseWriter, r *http.Request) {
	gid := chi.URLParam(r, "guild")
	a, err := h.target(r, gid)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := h.enf.SetRole(r.Context(), authz.User(a.ID), gid, ""); err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "role.remove", authz.User(a.ID), gid, "ok", "")
	w.WriteHeader(http.StatusNoContent)
}

func (h *guildAdminHandler) getAccess(w http.ResponseWriter, r *http.Request) {
	ga, err := h.store.GetGuildAccess(r.Context(), chi.URLParam(r, "guild"))
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ga)
}

func (h *guildAdminHandler) setAccess(w http.ResponseWriter, r *http.Request) {
	gid := chi.URLParam(r, "guild")
	var body struct {
		MemberAccess   bool     `json:"member_access"`
		ModeratorRoles []string `json:"moderator_roles"`
	}
	if err := decodeJSON(r, &body); err != nil {
		h.err.write(w, r, err)
		return
	}
	if len(body.ModeratorRoles) > 50 {
		h.err.write(w, r, badRequest("at most 50 moderator roles", event.FieldError{Field: "moderator_roles", Message: "at most 50"}))
		return
	}
	for _, id := range body.ModeratorRoles {
		if !event.IsSnowflake(id) {
			h.err.write(w, r, badRequest("moderator_roles must be Discord role IDs", event.FieldError{Field: "moderator_roles", Message: "must be Discord IDs"}))
			return
		}
	}
	if body.ModeratorRoles == nil {
		body.ModeratorRoles = []string{}
	}
	ga := store.GuildAccess{GuildID: gid, MemberAccess: body.MemberAccess, ModeratorRoles: body.ModeratorRoles}
	if err := h.store.SetGuildAccess(r.Context(), ga); err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "guild.access", "guild "+gid, gid, "ok", "member_access="+boolStr(body.MemberAccess)+" moderator_roles="+strings.Join(body.ModeratorRoles, ","))
	h.getAccess(w, r)
}

func (h *guildAdminHandler) audit(w http.ResponseWriter, r *http.Request) {
	writeAudit(w, r, h.store, h.err, chi.URLParam(r, "guild"))
}
