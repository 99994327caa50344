package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// PluginHost is what the API asks of the plugin host; *plugin.Host
// implements it.
type PluginHost interface {
	List() []plugin.Info
	Get(id string) (plugin.Info, error)
	Install(ctx context.Context, manifest, code []byte) (plugin.Installed, error)
	Uninstall(ctx context.Context, id string) error
	GuildStatuses(ctx context.Context, guildID string) ([]plugin.GuildStatus, error)
	Status(ctx context.Context, pluginID, guildID string) (plugin.GuildStatus, error)
	SetEnabled(ctx context.Context, pluginID, guildID string, enabled bool, opts ...plugin.EnableOption) error
	Configure(ctx context.Context, pluginID, guildID string, config json.RawMessage) error
	Grant(ctx context.Context, pluginID, guildID string, reqs []plugin.GrantRequest, by string) error
	GrantAll(ctx context.Context, pluginID, guildID, by string) error
	Revoke(ctx context.Context, pluginID, guildID string, perms []string) error
	ServeRoute(ctx context.Context, pluginID, guildID string, req sdk.Request) (sdk.Response, error)
}

type pluginsHandler struct {
	host    PluginHost
	guilds  guildChecker
	maxBody int64
	err     errWriter
	// audit records a security-relevant action (nil: not recorded).
	audit func(r *http.Request, action, target, guild, result, detail string)
}

// record audits an action on a plugin with the outcome err.
func (h *pluginsHandler) record(r *http.Request, action, pluginID, guild string, err error, detail string) {
	if h.audit == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
		detail = strings.TrimSpace(detail + " " + truncate(err.Error(), 300))
	}
	h.audit(r, action, "plugin "+pluginID, guild, result, detail)
}

// maxArtifactBytes bounds an uploaded plugin.
const maxArtifactBytes = 64 << 20

// pluginErr maps plugin host errors onto API errors.
func pluginErr(err error) error {
	var ie *plugin.InstallError
	var me *plugin.ManifestError
	switch {
	case errors.As(err, &me):
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_manifest", Message: me.Error(), Fields: me.Fields}
	case errors.As(err, &ie):
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_plugin", Message: ie.Error()}
	case errors.Is(err, plugin.ErrUnknownPlugin):
		return notFound("plugin not installed")
	case errors.Is(err, plugin.ErrTrustRequired):
		return &Error{Status: http.StatusUnprocessableEntity, Code: "trust_required", Message: err.Error()}
	case errors.Is(err, plugin.ErrNotRunnable):
		return &Error{Status: http.StatusConflict, Code: "plugin_not_running",
			Message: "the plugin does not run in this guild: enable it and grant the permissions it requires (see its status)"}
	case errors.Is(err, plugin.ErrNoRoute):
		return notFound("the plugin declares no such route")
	case errors.Is(err, plugin.ErrDenied):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "the plugin is not granted routes.serve in this guild"}
	}
	return err
}

func pluginParam(r *http.Request) string { return chi.URLParam(r, "plugin") }

func (h *pluginsHandler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"plugins": h.host.List()})
}

func (h *pluginsHandler) permissions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"permissions": plugin.Catalogue()})
}

func (h *pluginsHandler) get(w http.ResponseWriter, r *http.Request) {
	info, err := h.host.Get(pluginParam(r))
	if err != nil {
		h.err.write(w, r, pluginErr(err))
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// install takes a multipart form with the files "manifest" (plugin.json) and
// "artifact" (the module).
func (h *pluginsHandler) install(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxArtifactBytes+1<<20)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.err.write(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
				Message: fmt.Sprintf("plugin upload over %d MiB", maxArtifactBytes>>20)})
			return
		}
		h.err.write(w, r, badRequest("send multipart/form-data with the files manifest (plugin.json) and artifact"))
		return
	}
	defer r.MultipartForm.RemoveAll() //nolint:errcheck
	read := func(field string) ([]byte, error) {
		f, _, err := r.FormFile(field)
		if err != nil {
			return nil, badRequest("missing file "+field, event.FieldError{Field: field, Message: "required"})
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, maxArtifactBytes))
	}
	manifest, err := read("manifest")
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	code, err := read("artifact")
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	res, err := h.host.Install(r.Context(), manifest, code)
	id := "?"
	if res.Manifest != nil {
		id = res.Manifest.ID + "@" + res.Manifest.Version
	}
	h.record(r, "plugin.install", id, "", err, "")
	if err != nil {
		h.err.write(w, r, pluginErr(err))
		return
	}
	if res.Unchanged {
		writeJSON(w, http.StatusOK, res)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

func (h *pluginsHandler) uninstall(w http.ResponseWriter, r *http.Request) {
	err := h.host.Uninstall(r.Context(), pluginParam(r))
	h.record(r, "plugin.uninstall", pluginParam(r), "", err, "")
	if err != nil {
		h.err.write(w, r, pluginErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// guildPlugin reads and checks the {guild} and {plugin} path parameters.
func (h *pluginsHandler) guildPlugin(w http.ResponseWriter, r *http.Request) (guild, id string, ok bool) {
	guild, err := guildParam(r)
	if err == nil {
		err = requireGuild(r.Context(), h.guilds, guild)
	}
	if err == nil {
		_, err = h.host.Get(pluginParam(r))
		err = pluginErr(err)
	}
	if err != nil {
		h.err.write(w, r, err)
		return "", "", false
	}
	return guild, pluginParam(r), true
}

func (h *pluginsHandler) guildList(w http.ResponseWriter, r *http.Request) {
	guild, err := guildParam(r)
	if err == nil {
		err = requireGuild(r.Context(), h.guilds, guild)
	}
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	sts, err := h.host.GuildStatuses(r.Context(), guild)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	if sts == nil {
		sts = []plugin.GuildStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"plugins": sts})
}

func (h *pluginsHandler) status(w http.ResponseWriter, r *http.Request) {
	guild, id, ok := h.guildPlugin(w, r)
	if !ok {
		return
	}
	h.writeStatus(w, r, id, guild, http.StatusOK)
}

func (h *pluginsHandler) writeStatus(w http.ResponseWriter, r *http.Request, id, guild string, code int) {
	st, err := h.host.Status(r.Context(), id, guild)
	if err != nil {
		h.err.write(w, r, pluginErr(err))
		return
	}
	writeJSON(w, code, st)
}

func (h *pluginsHandler) setEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		guild, id, ok := h.guildPlugin(w, r)
		if !ok {
			return
		}
		// An optional body acknowledges that a process plugin runs unsandboxed.
		var body struct {
			TrustProcess bool `json:"trust_process"`
		}
		if enabled && r.ContentLength != 0 && !h.decodeBody(w, r, &body) {
			return
		}
		err := h.host.SetEnabled(r.Context(), id, guild, enabled, plugin.TrustProcess(body.TrustProcess))
		detail := ""
		if body.TrustProcess {
			detail = "trust_process"
		}
		h.record(r, map[bool]string{true: "plugin.enable", false: "plugin.disable"}[enabled], id, guild, err, detail)
		if err != nil {
			h.err.write(w, r, pluginErr(err))
			return
		}
		h.writeStatus(w, r, id, guild, http.StatusOK)
	}
}

// decodeBody reads a JSON request body into v.
func (h *pluginsHandler) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		h.err.write(w, r, badRequest("body is not the JSON this route expects: "+jsonProblem(err)))
		return false
	}
	return true
}

func (h *pluginsHandler) configure(w http.ResponseWriter, r *http.Request) {
	guild, id, ok := h.guildPlugin(w, r)
	if !ok {
		return
	}
	var config json.RawMessage
	if !h.decodeBody(w, r, &config) {
		return
	}
	err := h.host.Configure(r.Context(), id, guild, config)
	h.record(r, "plugin.configure", id, guild, err, "")
	if err != nil {
		h.err.write(w, r, pluginErr(err))
		return
	}
	h.writeStatus(w, r, id, guild, http.StatusOK)
}

type grantBody struct {
	All         bool                  `json:"all"`
	Permissions []plugin.GrantRequest `json:"permissions"`
}

func principalName(ctx context.Context) string {
	if p, ok := auth.PrincipalFrom(ctx); ok {
		return p.Subject
	}
	return ""
}

func (h *pluginsHandler) grant(w http.ResponseWriter, r *http.Request) {
	guild, id, ok := h.guildPlugin(w, r)
	if !ok {
		return
	}
	var body grantBody
	if !h.decodeBody(w, r, &body) {
		return
	}
	var err error
	switch {
	case body.All && len(body.Permissions) > 0:
		err = badRequest(`send either "all": true or a list of permissions`)
	case body.All:
		err = h.host.GrantAll(r.Context(), id, guild, principalName(r.Context()))
	case len(body.Permissions) == 0:
		err = badRequest("no permissions to grant")
	default:
		err = h.host.Grant(r.Context(), id, guild, body.Permissions, principalName(r.Context()))
	}
	detail := "all requested"
	if !body.All {
		var names []string
		for _, p := range body.Permissions {
			names = append(names, p.Name+strings.Join(p.Hosts, ","))
		}
		detail = strings.Join(names, " ")
	}
	h.record(r, "plugin.grant", id, guild, err, detail)
	if err != nil {
		h.err.write(w, r, pluginErr(err))
		return
	}
	h.writeStatus(w, r, id, guild, http.StatusOK)
}

// revoke withdraws the permissions named by ?permission= (repeatable), or
// all of them without the parameter.
func (h *pluginsHandler) revoke(w http.ResponseWriter, r *http.Request) {
	guild, id, ok := h.guildPlugin(w, r)
	if !ok {
		return
	}
	perms := r.URL.Query()["permission"]
	for _, p := range perms {
		if _, known := plugin.LookupPermission(p); !known {
			h.err.write(w, r, badRequest("unknown permission "+truncate(p, 60), event.FieldError{Field: "permission", Message: "unknown"}))
			return
		}
	}
	err := h.host.Revoke(r.Context(), id, guild, perms)
	h.record(r, "plugin.revoke", id, guild, err, strings.Join(perms, " "))
	if err != nil {
		h.err.write(w, r, pluginErr(err))
		return
	}
	h.writeStatus(w, r, id, guild, http.StatusOK)
}

// forwardedRequestHeaders are the request headers a plugin sees.
var forwardedRequestHeaders = []string{"Accept", "Accept-Language", "Content-Type", "If-None-Match", "If-Modified-Since"}

// allowedResponseHeaders are the response headers a plugin may set.
var allowedResponseHeaders = map[string]bool{
	"Content-Type": true, "Cache-Control": true, "Etag": true, "Last-Modified": true,
	"Content-Disposition": true, "Content-Language": true, "Location": true,
}

// serveRoute forwards /api/v1/guilds/{guild}/plugins/{plugin}/http/* to the
// plugin's http hook.
func (h *pluginsHandler) serveRoute(w http.ResponseWriter, r *http.Request) {
	guild, id, ok := h.guildPlugin(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		h.err.write(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "plugin requests are limited to 1 MiB"})
		return
	}
	req := sdk.Request{
		Method:  r.Method,
		Path:    "/" + chi.URLParam(r, "*"),
		Query:   r.URL.Query(),
		Headers: map[string]string{},
		Body:    body,
	}
	for _, name := range forwardedRequestHeaders {
		if v := r.Header.Get(name); v != "" {
			req.Headers[name] = v
		}
	}
	req.Caller = principalName(r.Context())
	res, err := h.host.ServeRoute(r.Context(), id, guild, req)
	if err != nil {
		if e := pluginErr(err); e != err {
			h.err.write(w, r, e)
			return
		}
		h.err.log.WarnContext(r.Context(), "plugin route failed", "plugin", id, "guild", guild, "err", err)
		h.err.write(w, r, &Error{Status: http.StatusBadGateway, Code: "plugin_error", Message: "the plugin failed to answer: " + truncate(err.Error(), 300)})
		return
	}
	for k, v := range res.Headers {
		if allowedResponseHeaders[http.CanonicalHeaderKey(k)] && !strings.ContainsAny(v, "\r\n") {
			w.Header().Set(k, v)
		}
	}
	// Plugin output is untrusted and served from the API's origin: it may
	// not run scripts there or be framed.
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.Status)
	w.Write(res.Body) //nolint:errcheck // client went away
}
