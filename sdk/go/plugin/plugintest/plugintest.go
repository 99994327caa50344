// Package plugintest runs a plugin's handlers natively, in go test, against
// an in-memory host: key-value storage, logs, counters, emitted events, a
// fetch function and permissions that can be withheld, all inspectable.
//
//	h := plugintest.New("41771983423143937", map[string]any{"threshold": 3}) // guild, configuration
//	if err := h.Events(evs...); err != nil { ... }
//	v, _ := h.KV["count"]
package plugintest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/wire"
)

// Host is an in-memory host. Its maps may be read and set by tests.
type Host struct {
	mu       sync.Mutex
	GuildID  string
	PluginID string
	Settings map[string]any // the guild admin's configuration of the plugin
	KV       map[string][]byte
	// KVUsers maps a key to the member it is about (KVSetUser).
	KVUsers map[string]string
	// Grants are the permissions the plugin sees as granted (Context.Granted).
	Grants   []string
	Logs     []Log
	Counters map[string]float64
	Emitted  []Emitted
	// Denied holds host function names that answer "denied", as if the
	// permission were not granted.
	Denied map[string]bool
	// Fetch answers http_fetch; nil answers "denied".
	Fetch func(plugin.FetchRequest) (plugin.FetchResponse, error)
	// Members and Activity answer member_get and activity_get.
	Members  map[string]plugin.Member
	Activity []plugin.ActivityHour
}

// Log is one line the plugin logged.
type Log struct {
	Level, Message string
	Attrs          map[string]any
}

// Emitted is one event the plugin emitted.
type Emitted struct {
	Type string
	Data json.RawMessage
}

// New returns a host for guildID with the given plugin configuration.
func New(guildID string, config map[string]any) *Host {
	return &Host{GuildID: guildID, PluginID: "test-plugin", Settings: config, KV: map[string][]byte{}, KVUsers: map[string]string{},
		Counters: map[string]float64{}, Denied: map[string]bool{}, Members: map[string]plugin.Member{}}
}

// Events calls the registered plugin's on_events hook with evs.
func (h *Host) Events(evs ...event.Event) error {
	b := struct {
		GuildID string        `json:"guild_id"`
		Events  []event.Event `json:"events"`
	}{h.GuildID, evs}
	in, err := json.Marshal(b)
	if err != nil {
		return err
	}
	_, err = plugin.Serve(h, plugin.HookEvents, in)
	return err
}

// EventsBinary is Events with the binary batch encoding.
func (h *Host) EventsBinary(evs ...event.Event) error {
	in, err := wire.AppendBinary(nil, h.GuildID, evs, func(ev *event.Event) ([]byte, error) { return json.Marshal(ev.Data) })
	if err != nil {
		return err
	}
	_, err = plugin.Serve(h, plugin.HookEvents, in)
	return err
}

// Score calls the score hook.
func (h *Host) Score(req plugin.ScoreRequest) (plugin.ScoreResponse, error) {
	var res plugin.ScoreResponse
	in, _ := json.Marshal(req)
	out, err := plugin.Serve(h, plugin.HookScore, in)
	if err != nil {
		return res, err
	}
	err = json.Unmarshal(out, &res)
	return res, err
}

// HTTP calls the http hook.
func (h *Host) HTTP(req plugin.Request) (plugin.Response, error) {
	var res plugin.Response
	in, _ := json.Marshal(req)
	out, err := plugin.Serve(h, plugin.HookHTTP, in)
	if err != nil {
		return res, err
	}
	err = json.Unmarshal(out, &res)
	return res, err
}

// Tick calls the tick hook.
func (h *Host) Tick(now time.Time) error {
	in, _ := json.Marshal(map[string]any{"now": now})
	_, err := plugin.Serve(h, plugin.HookTick, in)
	return err
}

// DeleteUser does what the host does when a member asks to be forgotten:
// it calls the delete_user hook (if the plugin offers it), then removes the
// entries stored with KVSetUser for that member.
func (h *Host) DeleteUser(userID string) error {
	in, _ := json.Marshal(map[string]string{"user_id": userID})
	_, err := plugin.Serve(h, plugin.HookDeleteUser, in)
	if errors.Is(err, plugin.ErrNotOffered) {
		err = nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, u := range h.KVUsers {
		if u == userID {
			delete(h.KV, k)
			delete(h.KVUsers, k)
		}
	}
	return err
}

// Config implements plugin.Host.
func (h *Host) Config(key string) (string, bool) {
	switch key {
	case plugin.ConfigGuildID:
		return h.GuildID, true
	case plugin.ConfigPluginID:
		return h.PluginID, true
	case plugin.ConfigJSON:
		b, _ := json.Marshal(h.Settings)
		return string(b), true
	case plugin.ConfigGrants:
		g := append([]string(nil), h.Grants...)
		sort.Strings(g)
		return strings.Join(g, ","), true
	}
	return "", false
}

func ok(v any) ([]byte, error) { return json.Marshal(map[string]any{"result": v}) }

func fail(code, msg string) ([]byte, error) {
	return json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// Call implements plugin.Host with the same requests and responses as the
// real host.
func (h *Host) Call(fn string, req []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Denied[fn] {
		return fail("denied", fn+" is not granted to this plugin in this guild")
	}
	var r struct {
		Key     string          `json:"key"`
		Value   []byte          `json:"value"`
		Prefix  string          `json:"prefix"`
		After   string          `json:"after"`
		Limit   int             `json:"limit"`
		Level   string          `json:"level"`
		Message string          `json:"message"`
		Attrs   map[string]any  `json:"attrs"`
		Name    string          `json:"name"`
		Delta   float64         `json:"delta"`
		UserID  string          `json:"user_id"`
		Type    string          `json:"type"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(req, &r); err != nil {
		return fail("invalid", err.Error())
	}
	switch fn {
	case "kv_get":
		v, found := h.KV[r.Key]
		return ok(map[string]any{"found": found, "value": v})
	case "kv_set":
		h.KV[r.Key] = append([]byte(nil), r.Value...)
		if r.UserID != "" {
			h.KVUsers[r.Key] = r.UserID
		} else {
			delete(h.KVUsers, r.Key)
		}
		return ok(struct{}{})
	case "kv_delete":
		delete(h.KV, r.Key)
		delete(h.KVUsers, r.Key)
		return ok(struct{}{})
	case "kv_list":
		keys := make([]string, 0, len(h.KV))
		for k := range h.KV {
			if strings.HasPrefix(k, r.Prefix) && k > r.After {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if r.Limit <= 0 || r.Limit > 1000 {
			r.Limit = 100
		}
		next := ""
		if len(keys) > r.Limit {
			keys, next = keys[:r.Limit], keys[r.Limit-1]
		}
		entries := make([]plugin.KVEntry, 0, len(keys))
		for _, k := range keys {
			entries = append(entries, plugin.KVEntry{Key: k, Value: h.KV[k]})
		}
		return ok(map[string]any{"entries": entries, "next": next})
	case "log":
		h.Logs = append(h.Logs, Log{Level: r.Level, Message: r.Message, Attrs: r.Attrs})
		return ok(struct{}{})
	case "metric":
		h.Counters[r.Name] += r.Delta
		return ok(struct{}{})
	case "member_get":
		m, found := h.Members[r.UserID]
		if !found {
			return fail("not_found", "no member "+r.UserID)
		}
		return ok(m)
	case "activity_get":
		return ok(map[string]any{"hours": h.Activity})
	case "emit":
		h.Emitted = append(h.Emitted, Emitted{Type: r.Type, Data: r.Data})
		return ok(struct{}{})
	case "http_fetch":
		if h.Fetch == nil {
			return fail("denied", "http.fetch is not granted")
		}
		var fr plugin.FetchRequest
		json.Unmarshal(req, &fr) //nolint:errcheck // decoded above already
		res, err := h.Fetch(fr)
		if err != nil {
			return fail("unavailable", err.Error())
		}
		return ok(res)
	}
	return nil, fmt.Errorf("plugintest: unknown host function %q", fn)
}
