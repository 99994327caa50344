package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// ErrNoRoute is returned for a request to a route the plugin does not declare.
var ErrNoRoute = errors.New("plugin: no such route")

// ErrDenied is returned when a plugin lacks the permission a call needs.
var ErrDenied = errors.New("plugin: permission not granted")

// ServeRoute forwards a request to a plugin's http hook in a guild. The
// route must be declared in the manifest and routes.serve granted.
func (h *Host) ServeRoute(ctx context.Context, pluginID, guildID string, req sdk.Request) (sdk.Response, error) {
	snap := h.snap.Load()
	l := snap.plugins[pluginID]
	if l == nil || l.m == nil {
		return sdk.Response{}, ErrUnknownPlugin
	}
	st := snap.state(pluginID, guildID)
	if st == nil || !st.runnable {
		return sdk.Response{}, ErrNotRunnable
	}
	if !l.m.MatchRoute(req.Method, req.Path) {
		return sdk.Response{}, ErrNoRoute
	}
	if !h.permitted(pluginID, guildID, PermRoutesServe) {
		return sdk.Response{}, ErrDenied
	}
	in, err := json.Marshal(req)
	if err != nil {
		return sdk.Response{}, err
	}
	out, err := h.call(ctx, pluginID, guildID, HookHTTP, in)
	if err != nil {
		return sdk.Response{}, err
	}
	var res sdk.Response
	if err := json.Unmarshal(out, &res); err != nil {
		err = fmt.Errorf("plugin: http hook returned malformed output: %w", err)
		h.failed(ctx, pluginID, guildID, HookHTTP, "error", err)
		return sdk.Response{}, err
	}
	if res.Status == 0 {
		res.Status = http.StatusOK
	}
	if res.Status < 100 || res.Status > 599 {
		return sdk.Response{}, fmt.Errorf("plugin: http hook returned status %d", res.Status)
	}
	return res, nil
}

// Info describes an installed plugin for the API: its manifest and the
// catalogue entries of what it asks for.
type Info struct {
	ID           string                `json:"id"`
	Name         string                `json:"name"`
	Version      string                `json:"version"`
	Description  string                `json:"description,omitempty"`
	Authors      []string              `json:"authors,omitempty"`
	Hooks        []string              `json:"hooks"`
	Events       []string              `json:"events,omitempty"`
	Routes       []Route               `json:"routes,omitempty"`
	Permissions  []RequestedPermission `json:"permissions"`
	Limits       Limits                `json:"limits"`
	Runtime      string                `json:"runtime"`
	LoadError    string                `json:"load_error,omitempty"`
	ConfigSchema json.RawMessage       `json:"config_schema,omitempty"`
}

// RequestedPermission is a permission request with its catalogue entry.
type RequestedPermission struct {
	PermissionRequest
	Grants string `json:"grants"`
	Risk   Risk   `json:"risk"`
}

func infoOf(l *loaded, id string) Info {
	in := Info{ID: id}
	if l.err != nil {
		in.LoadError = l.err.Error()
	}
	m := l.m
	if m == nil {
		return in
	}
	in.Name, in.Version, in.Description, in.Authors = m.Name, m.Version, m.Description, m.Authors
	in.Hooks, in.Routes, in.Limits, in.Runtime, in.ConfigSchema = m.Hooks, m.Routes, m.Limits, m.Runtime, m.ConfigSchema
	for _, k := range m.Events {
		in.Events = append(in.Events, string(k))
	}
	in.Permissions = []RequestedPermission{}
	for _, p := range m.Permissions {
		c, _ := LookupPermission(p.Name)
		in.Permissions = append(in.Permissions, RequestedPermission{PermissionRequest: p, Grants: c.Grants, Risk: c.Risk})
	}
	return in
}

// List returns every installed plugin.
func (h *Host) List() []Info {
	snap := h.snap.Load()
	out := make([]Info, 0, len(snap.plugins))
	for id, l := range snap.plugins {
		out = append(out, infoOf(l, id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns one installed plugin.
func (h *Host) Get(id string) (Info, error) {
	l := h.snap.Load().plugins[id]
	if l == nil {
		return Info{}, ErrUnknownPlugin
	}
	return infoOf(l, id), nil
}

// GuildStatus is a plugin's standing in a guild.
type GuildStatus struct {
	PluginID string `json:"plugin_id"`
	GuildID  string `json:"guild_id"`
	Enabled  bool   `json:"enabled"`
	// Running is true when the plugin receives events and calls here.
	Running bool `json:"running"`
	// State is one of running, disabled, needs_grant, quarantined, broken.
	State            string              `json:"state"`
	Missing          []string            `json:"missing_permissions,omitempty"`
	Grants           []store.PluginGrant `json:"grants"`
	Config           json.RawMessage     `json:"config"`
	QuarantineReason string              `json:"quarantine_reason,omitempty"`
	LastError        string              `json:"last_error,omitempty"`
	LastErrorAt      any                 `json:"last_error_at,omitempty"`
}

// Status returns a plugin's standing in a guild.
func (h *Host) Status(ctx context.Context, pluginID, guildID string) (GuildStatus, error) {
	snap := h.snap.Load()
	l := snap.plugins[pluginID]
	if l == nil {
		return GuildStatus{}, ErrUnknownPlugin
	}
	gs := GuildStatus{PluginID: pluginID, GuildID: guildID, Grants: []store.PluginGrant{}, Config: json.RawMessage("{}"), State: "disabled"}
	st := snap.state(pluginID, guildID)
	if st == nil {
		if l.m != nil {
			for _, p := range l.m.Permissions {
				if !p.Optional {
					gs.Missing = append(gs.Missing, p.Name)
				}
			}
		}
		return gs, nil
	}
	gs.Enabled, gs.Running, gs.Missing, gs.Config = st.pg.Enabled, st.runnable, st.missing, st.pg.Config
	gs.QuarantineReason, gs.LastError = st.pg.QuarantineReason, st.pg.LastError
	if st.pg.LastErrorAt != nil {
		gs.LastErrorAt = st.pg.LastErrorAt
	}
	names := make([]string, 0, len(st.grants))
	for n := range st.grants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		gs.Grants = append(gs.Grants, st.grants[n])
	}
	switch {
	case l.err != nil:
		gs.State = "broken"
	case st.pg.QuarantinedAt != nil:
		gs.State = "quarantined"
	case !st.pg.Enabled:
		gs.State = "disabled"
	case len(st.missing) > 0:
		gs.State = "needs_grant"
	default:
		gs.State = "running"
	}
	return gs, nil
}

// GuildStatuses returns the standing of every installed plugin in a guild.
func (h *Host) GuildStatuses(ctx context.Context, guildID string) ([]GuildStatus, error) {
	var out []GuildStatus
	for _, in := range h.List() {
		gs, err := h.Status(ctx, in.ID, guildID)
		if err != nil {
			return nil, err
		}
		out = append(out, gs)
	}
	return out, nil
}

// NeedsMessageContent reports whether some guild runs a plugin that was
// granted message.content.read and receives message events: only then does
// the gateway ask Discord for the privileged message content intent.
func (h *Host) NeedsMessageContent(ctx context.Context) (bool, error) {
	snap := h.snap.Load()
	for guild, ids := range snap.byGuild {
		for _, id := range ids {
			l := snap.plugins[id]
			if snap.allowed(id, guild, PermContentRead) &&
				(l.m.Subscribes(event.KindMessageCreate) || l.m.Subscribes(event.KindMessageUpdate)) {
				return true, nil
			}
		}
	}
	return false, nil
}
