package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// PasswordLogin checks a username and password; *auth.Passwords implements it.
type PasswordLogin interface {
	Login(ctx context.Context, username, password string) (store.Account, error)
}

// SessionService starts, refreshes and ends sessions; *auth.Sessions implements it.
type SessionService interface {
	Start(ctx context.Context, accountID, method, ip, userAgent string) (auth.Tokens, error)
	Refresh(ctx context.Context, refresh string) (auth.Tokens, store.Session, error)
	End(ctx context.Context, sessionID, reason string) error
}

// DiscordLogin runs the Discord OAuth2 flow; *auth.Discord implements it.
type DiscordLogin interface {
	Begin(ctx context.Context, returnTo string) (authURL, state string, err error)
	Complete(ctx context.Context, state, code string) (auth.DiscordResult, error)
}

// RoleReader tells a subject's roles; *authz.Enforcer implements it.
type RoleReader interface {
	Roles(sub string) (map[string]string, error)
}

type authSessionStore interface {
	ListSessions(ctx context.Context, accountID string, all bool) ([]store.Session, error)
	GetSession(ctx context.Context, id string) (store.Session, error)
}

type authHandler struct {
	passwords PasswordLogin
	sessions  SessionService
	discord   DiscordLogin // nil: not configured
	store     authSessionStore
	roles     RoleReader
	sec       Security
	g         *guard
	err       errWriter
}

// oauthStateCookie binds a Discord login to the browser that started it.
const oauthStateCookie = "sw_oauth_state"

// decodeJSON reads a small JSON request body into v, refusing unknown
// fields. The body must be declared application/json: a cross-site HTML
// form cannot send that, so it cannot log a victim's browser into the
// attacker's account (login CSRF) or change anything with a cookie.
func decodeJSON(r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send a JSON body with Content-Type: application/json"}
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("request body must be a JSON object")
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "request body too large"}
		}
		return badRequest("request body: " + jsonProblem(err))
	}
	return nil
}

func (h *authHandler) login(w http.ResponseWriter, r *http.Request) {
	if !h.g.take(w, r, "login:"+clientIP(r), h.g.limits.Login, time.Minute) {
		return
	}
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &body); err != nil {
		h.err.write(w, r, err)
		return
	}
	acc, err := h.passwords.Login(r.Context(), body.Username, body.Password)
	var locked *auth.LockedError
	switch {
	case errors.As(err, &locked):
		wait := int(time.Until(locked.Until).Seconds()) + 1
		if wait < 1 {
			wait = 1
		}
		h.g.recordAs(r, "username:"+truncate(body.Username, 64), "auth.login", "password", "", "denied", "account locked after repeated failures")
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		h.err.write(w, r, &Error{Status: http.StatusTooManyRequests, Code: "login_locked",
			Message: fmt.Sprintf("too many failed logins for this account; retry in %d s", wait)})
		return
	case errors.Is(err, auth.ErrBadCredentials):
		h.g.recordAs(r, "username:"+truncate(body.Username, 64), "auth.login", "password", "", "denied", "invalid username or password")
		h.err.write(w, r, &Error{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: "invalid username or password"})
		return
	case errors.Is(err, auth.ErrAccountDisabled):
		h.g.recordAs(r, authz.User(acc.ID), "auth.login", "password", "", "denied", "account disabled")
		h.err.write(w, r, forbidden("this account is disabled"))
		return
	case err != nil:
		h.err.write(w, r, err)
		return
	}
	h.startSession(w, r, acc, "password")
}

func (h *authHandler) startSession(w http.ResponseWriter, r *http.Request, acc store.Account, method string) {
	t, err := h.sessions.Start(r.Context(), acc.ID, method, clientIP(r), r.UserAgent())
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.recordAs(r, authz.User(acc.ID), "auth.login", method, "", "ok", "session "+t.SessionID)
	h.sec.setSessionCookies(w, r, t)
	writeJSON(w, http.StatusOK, t)
}

func (h *authHandler) refresh(w http.ResponseWriter, r *http.Request) {
	if !h.g.take(w, r, "login:"+clientIP(r), h.g.limits.Login, time.Minute) {
		return
	}
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			h.err.write(w, r, err)
			return
		}
	}
	tok := body.RefreshToken
	if tok == "" {
		c, err := r.Cookie(auth.CookieRefresh)
		if err != nil || c.Value == "" {
			h.err.write(w, r, unauthorized("send refresh_token in the body, or the refresh cookie"))
			return
		}
		// A cookie is sent by the browser on its own: require the CSRF
		// header (double submit of the sw_csrf cookie).
		csrf, cerr := r.Cookie(auth.CookieCSRF)
		hdr := r.Header.Get(auth.HeaderCSRF)
		if cerr != nil || hdr == "" || subtle.ConstantTimeCompare([]byte(hdr), []byte(csrf.Value)) != 1 {
			h.g.recordAs(r, "anonymous", "auth.csrf", "refresh", "", "denied", "missing or wrong "+auth.HeaderCSRF)
			h.err.write(w, r, forbidden("refreshing with the cookie needs the "+auth.HeaderCSRF+" header"))
			return
		}
		tok = c.Value
	}
	t, x, err := h.sessions.Refresh(r.Context(), tok)
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			actor := "anonymous"
			if x.AccountID != "" {
				actor = authz.User(x.AccountID)
			}
			action := "auth.refresh"
			if errors.Is(err, auth.ErrRefreshReused) {
				action = "auth.refresh.reuse"
			}
			h.g.recordAs(r, actor, action, "session "+x.ID, "", "denied", err.Error())
			h.sec.clearSessionCookies(w, r)
			h.err.write(w, r, unauthorized("refresh token invalid, expired or already used; log in again"))
			return
		}
		h.err.write(w, r, err)
		return
	}
	h.sec.setSessionCookies(w, r, t)
	writeJSON(w, http.StatusOK, t)
}

func (h *authHandler) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	if p.SessionID != "" {
		if err := h.sessions.End(r.Context(), p.SessionID, "logout"); err != nil {
			h.err.write(w, r, err)
			return
		}
		h.g.record(r, "auth.logout", "session "+p.SessionID, "", "ok", "")
	}
	h.sec.clearSessionCookies(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// me is the caller and its roles, by guild ("*" for every guild).
type me struct {
	auth.Principal
	Roles map[string]string `json:"roles"`
}

func (h *authHandler) me(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	out := me{Principal: p, Roles: map[string]string{}}
	switch {
	case p.Admin:
		out.Roles[authz.AnyDomain] = authz.RoleInstanceAdmin
	case p.AccountID != "":
		roles, err := h.roles.Roles(authz.User(p.AccountID))
		if err != nil {
			h.err.write(w, r, err)
			return
		}
		out.Roles = roles
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *authHandler) listSessions(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	out := []store.Session{}
	if p.AccountID != "" {
		var err error
		if out, err = h.store.ListSessions(r.Context(), p.AccountID, false); err != nil {
			h.err.write(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out, "current": p.SessionID})
}

func (h *authHandler) revokeSession(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	id := chi.URLParam(r, "session")
	x, err := h.store.GetSession(r.Context(), id)
	if err != nil || x.AccountID != p.AccountID || p.AccountID == "" {
		h.err.write(w, r, notFound("session "+truncate(id, 40)+" not found among yours"))
		return
	}
	if err := h.sessions.End(r.Context(), id, "revoked by its owner"); err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.record(r, "session.revoke", "session "+id, "", "ok", "")
	w.WriteHeader(http.StatusNoContent)
}

func (h *authHandler) discordLogin(w http.ResponseWriter, r *http.Request) {
	if h.discord == nil {
		h.err.write(w, r, notFound("Discord login is not configured on this host (see --discord-client-id)"))
		return
	}
	if !h.g.take(w, r, "login:"+clientIP(r), h.g.limits.Login, time.Minute) {
		return
	}
	u, state, err := h.discord.Begin(r.Context(), r.URL.Query().Get("return_to"))
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oauthStateCookie, Value: state, Path: "/api/v1/auth/discord", HttpOnly: true,
		Secure: h.sec.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(auth.StateTTL / time.Second)})
	http.Redirect(w, r, u, http.StatusFound)
}

func (h *authHandler) discordCallback(w http.ResponseWriter, r *http.Request) {
	if h.discord == nil {
		h.err.write(w, r, notFound("Discord login is not configured on this host"))
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	c, cerr := r.Cookie(oauthStateCookie)
	http.SetCookie(w, &http.Cookie{Name: oauthStateCookie, Value: "", Path: "/api/v1/auth/discord", MaxAge: -1, HttpOnly: true, Secure: h.sec.secure(r)})
	stateErr := func(why string) {
		h.g.recordAs(r, "anonymous", "auth.discord", "callback", "", "denied", why)
		h.err.write(w, r, &Error{Status: http.StatusForbidden, Code: "invalid_oauth_state",
			Message: "the login's state is missing, wrong or expired; start the login again"})
	}
	switch {
	case state == "":
		stateErr("missing state")
		return
	case cerr != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1:
		stateErr("state does not match this browser's login")
		return
	}
	if e := q.Get("error"); e != "" {
		h.g.recordAs(r, "anonymous", "auth.discord", "callback", "", "denied", "Discord answered "+truncate(e, 40))
		h.err.write(w, r, &Error{Status: http.StatusUnauthorized, Code: "oauth_failed", Message: "Discord login was refused or cancelled"})
		return
	}
	res, err := h.discord.Complete(r.Context(), state, q.Get("code"))
	switch {
	case errors.Is(err, auth.ErrOAuthState):
		stateErr(err.Error())
		return
	case errors.Is(err, auth.ErrAccountDisabled):
		h.g.recordAs(r, authz.User(res.Account.ID), "auth.discord", "callback", "", "denied", "account disabled")
		h.err.write(w, r, forbidden("this account is disabled"))
		return
	case errors.Is(err, auth.ErrUnauthenticated):
		h.g.recordAs(r, "anonymous", "auth.discord", "callback", "", "failed", err.Error())
		h.err.write(w, r, &Error{Status: http.StatusUnauthorized, Code: "oauth_failed", Message: "Discord login failed; try again"})
		return
	case err != nil:
		h.err.write(w, r, err)
		return
	}
	h.g.recordAs(r, authz.User(res.Account.ID), "auth.discord.roles", "roles", "", "ok", fmt.Sprint(res.Roles))
	t, err := h.sessions.Start(r.Context(), res.Account.ID, "discord", clientIP(r), r.UserAgent())
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	h.g.recordAs(r, authz.User(res.Account.ID), "auth.login", "discord", "", "ok", "session "+t.SessionID)
	h.sec.setSessionCookies(w, r, t)
	http.Redirect(w, r, auth.SafeReturnTo(res.ReturnTo), http.StatusFound)
}
