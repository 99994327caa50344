package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Host is the other side of a plugin: the Spywatcher host in production
// (through the Extism ABI), or a fake in tests (package plugintest).
type Host interface {
	// Call invokes a host function with a JSON request and returns the JSON
	// response envelope ({"result":…} or {"error":{…}}).
	Call(fn string, request []byte) ([]byte, error)
	// Config returns a configuration value set by the host for this instance.
	Config(key string) (string, bool)
}

// host is the unexported alias Serve takes, so callers outside the SDK pass
// a Host without naming it twice.
type host = Host

// Configuration keys the host sets for every instance.
const (
	ConfigGuildID  = "spywatcher.guild_id"
	ConfigPluginID = "spywatcher.plugin_id"
	ConfigJSON     = "spywatcher.config"
	// ConfigGrants lists the permissions granted in the guild, sorted and
	// comma separated. A grant or revocation starts new instances, so the
	// list an instance sees is current.
	ConfigGrants = "spywatcher.grants"
)

// Context is what a handler gets for one call: the guild it runs for, its
// configuration there, and the host functions.
type Context struct {
	h      Host
	config map[string]any
}

func newContext(h Host) *Context { return &Context{h: h} }

// GuildID is the guild this call is for. An instance only ever serves one guild.
func (c *Context) GuildID() string { v, _ := c.h.Config(ConfigGuildID); return v }

// PluginID is the plugin's own ID.
func (c *Context) PluginID() string { v, _ := c.h.Config(ConfigPluginID); return v }

// Config returns the guild admin's configuration of the plugin for this
// guild (validated against the manifest's config schema by the host). Do not
// modify the map: it is shared by calls with the same configuration.
func (c *Context) Config() map[string]any {
	if c.config == nil {
		raw, _ := c.h.Config(ConfigJSON)
		c.config = parsedConfig(raw)
	}
	return c.config
}

// The configuration of an instance changes only with the instance, so its
// parse is kept: decoding JSON is costly inside WebAssembly.
var configCache struct {
	sync.Mutex
	raw    string
	parsed map[string]any
}

func parsedConfig(raw string) map[string]any {
	configCache.Lock()
	defer configCache.Unlock()
	if configCache.parsed != nil && configCache.raw == raw {
		return configCache.parsed
	}
	m := map[string]any{}
	if raw != "" {
		json.Unmarshal([]byte(raw), &m) //nolint:errcheck // the host validated it
	}
	configCache.raw, configCache.parsed = raw, m
	return m
}

// Granted reports whether the guild's admins granted the plugin permission
// (a name from the catalogue, such as "message.content.read"). Use it to say
// why something is missing; host functions check grants themselves.
func (c *Context) Granted(permission string) bool {
	list, _ := c.h.Config(ConfigGrants)
	for list != "" {
		var name string
		name, list, _ = strings.Cut(list, ",")
		if name == permission {
			return true
		}
	}
	return false
}

// ConfigString returns a string setting, or def when unset.
func (c *Context) ConfigString(key, def string) string {
	if v, ok := c.Config()[key].(string); ok {
		return v
	}
	return def
}

// ConfigFloat returns a numeric setting, or def when unset.
func (c *Context) ConfigFloat(key string, def float64) float64 {
	if v, ok := c.Config()[key].(float64); ok {
		return v
	}
	return def
}

// HostError is an error the host answered a host function call with.
// Code is one of: denied, quota, invalid, not_found, timeout, unavailable,
// internal.
type HostError struct {
	Function string `json:"-"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

func (e *HostError) Error() string { return e.Function + ": " + e.Code + ": " + e.Message }

// IsDenied reports whether err is a host refusal for lack of a permission.
func IsDenied(err error) bool {
	var he *HostError
	return errors.As(err, &he) && he.Code == "denied"
}

// call sends req to host function fn and decodes its result into out.
func (c *Context) call(fn string, req, out any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	resp, err := c.h.Call(fn, b)
	if err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *HostError      `json:"error"`
	}
	if err := json.Unmarshal(resp, &env); err != nil {
		return fmt.Errorf("%s: malformed host response: %w", fn, err)
	}
	if env.Error != nil {
		env.Error.Function = fn
		return env.Error
	}
	if out != nil && len(env.Result) > 0 {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
	}
	return nil
}

// KVGet returns the value stored under key, and whether there was one.
// Keys are private to this plugin in this guild. Needs kv.read.
func (c *Context) KVGet(key string) ([]byte, bool, error) {
	var r struct {
		Found bool   `json:"found"`
		Value []byte `json:"value"`
	}
	err := c.call("kv_get", map[string]string{"key": key}, &r)
	return r.Value, r.Found, err
}

// KVSet stores value under key. Needs kv.write; counts against the quota.
// Use KVSetUser for data about one member.
func (c *Context) KVSet(key string, value []byte) error {
	return c.KVSetUser(key, value, "")
}

// KVSetUser stores value under key and records that it is about the member
// userID (a Discord ID), so that when that person asks to be forgotten the
// host deletes the entry even if the plugin's delete_user hook does not.
// An empty userID is the same as KVSet. Needs kv.write.
func (c *Context) KVSetUser(key string, value []byte, userID string) error {
	return c.call("kv_set", struct {
		Key    string `json:"key"`
		Value  []byte `json:"value"`
		UserID string `json:"user_id,omitempty"`
	}{key, value, userID}, nil)
}

// KVDelete removes key. Needs kv.write.
func (c *Context) KVDelete(key string) error {
	return c.call("kv_delete", map[string]string{"key": key}, nil)
}

// KVEntry is one key and its value.
type KVEntry struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// KVList returns up to limit entries whose keys start with prefix, in key
// order, after the key after (for pagination). next is the after of the next
// page, empty at the end. Needs kv.read.
func (c *Context) KVList(prefix, after string, limit int) (entries []KVEntry, next string, err error) {
	var r struct {
		Entries []KVEntry `json:"entries"`
		Next    string    `json:"next"`
	}
	err = c.call("kv_list", map[string]any{"prefix": prefix, "after": after, "limit": limit}, &r)
	return r.Entries, r.Next, err
}

// Log writes a structured line into the host's log, tagged with the plugin
// and guild. level is debug, info, warn or error. Always allowed, but rate
// limited.
func (c *Context) Log(level, msg string, attrs map[string]any) error {
	return c.call("log", map[string]any{"level": level, "message": msg, "attrs": attrs}, nil)
}

// Count adds delta (zero or more; fractions are allowed) to the plugin's
// counter metric name (exported by the host as
// spywatcher_plugin_counter_total{plugin, guild, name}). Needs metrics.write.
func (c *Context) Count(name string, delta float64) error {
	return c.call("metric", map[string]any{"name": name, "delta": delta}, nil)
}

// Member is a member profile as host functions return it.
type Member struct {
	UserID        string     `json:"user_id"`
	Name          string     `json:"name"`
	Username      string     `json:"username,omitempty"`
	Bot           bool       `json:"bot"`
	Roles         []string   `json:"roles,omitempty"`
	JoinedAt      *time.Time `json:"joined_at,omitempty"`
	LeftAt        *time.Time `json:"left_at,omitempty"`
	FirstSeen     time.Time  `json:"first_seen"`
	LastSeen      time.Time  `json:"last_seen"`
	LastMessageAt *time.Time `json:"last_message_at,omitempty"`
	MessageCount  int64      `json:"message_count"`
	Status        string     `json:"status"`
}

// Member returns a member's profile. Needs members.read.
func (c *Context) Member(userID string) (Member, error) {
	var m Member
	err := c.call("member_get", map[string]string{"user_id": userID}, &m)
	return m, err
}

// ActivityHour is one hour of activity counts.
type ActivityHour struct {
	Hour            time.Time `json:"hour"`
	Messages        int64     `json:"messages"`
	Edits           int64     `json:"edits"`
	Deletes         int64     `json:"deletes"`
	Typing          int64     `json:"typing"`
	PresenceUpdates int64     `json:"presence_updates"`
	VoiceUpdates    int64     `json:"voice_updates"`
	Joins           int64     `json:"joins"`
	Leaves          int64     `json:"leaves"`
}

// Activity returns the hourly series of the guild (userID "") or a member
// over [from, to). Needs activity.read.
func (c *Context) Activity(userID string, from, to time.Time) ([]ActivityHour, error) {
	var r struct {
		Hours []ActivityHour `json:"hours"`
	}
	err := c.call("activity_get", map[string]any{"user_id": userID, "from": from, "to": to}, &r)
	return r.Hours, err
}

// Emit publishes an event of the plugin's own to the guild's dashboards.
// Needs events.emit.
func (c *Context) Emit(typ string, data any) error {
	return c.call("emit", map[string]any{"type": typ, "data": data}, nil)
}

// FetchRequest is an outbound HTTP request.
type FetchRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// FetchResponse is its answer.
type FetchResponse struct {
	Status    int               `json:"status"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      []byte            `json:"body,omitempty"`
	Truncated bool              `json:"truncated,omitempty"`
}

// Fetch sends an HTTP request through the host's guarded client: only to
// hosts the guild admin allowed with http.fetch, never to private addresses.
func (c *Context) Fetch(req FetchRequest) (FetchResponse, error) {
	var r FetchResponse
	err := c.call("http_fetch", req, &r)
	return r, err
}
