package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/wire"
)

// Hook names, as the guest exports them.
const (
	HookEvents     = sdk.HookEvents
	HookScore      = sdk.HookScore
	HookHTTP       = sdk.HookHTTP
	HookTick       = sdk.HookTick
	HookDeleteUser = sdk.HookDeleteUser
)

// ABIVersion is the plugin ABI this host speaks.
const ABIVersion = 1

// Manifest describes a plugin: what it is, what it runs, what it wants.
// sdk/schema/plugin.schema.json is its language-neutral schema.
type Manifest struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Description string   `json:"description,omitempty"`
	Authors     []string `json:"authors,omitempty"`
	Homepage    string   `json:"homepage,omitempty"`
	// Runtime is "wasm" (sandboxed WebAssembly) or "process" (a native
	// executable over go-plugin; not sandboxed).
	Runtime    string   `json:"runtime"`
	Artifact   Artifact `json:"artifact"`
	ABIVersion int      `json:"abi_version"`
	// Hooks the plugin implements.
	Hooks []string `json:"hooks"`
	// Events are the kinds on_events receives.
	Events []event.Kind `json:"events,omitempty"`
	// EventEncoding is "json" (default) or "binary" (see sdk/go/wire).
	EventEncoding string `json:"event_encoding,omitempty"`
	// ScoreEncoding is how score inputs are sent: "json" (default) or
	// "binary" (sdk/go/plugin.AppendScoreRequestBinary).
	ScoreEncoding string              `json:"score_encoding,omitempty"`
	Routes        []Route             `json:"routes,omitempty"`
	Permissions   []PermissionRequest `json:"permissions,omitempty"`
	// ConfigSchema is a JSON Schema that a guild's configuration must satisfy.
	ConfigSchema json.RawMessage `json:"config_schema,omitempty"`
	Limits       Limits          `json:"limits,omitempty"`
	// TickSeconds is how often tick runs per guild (default 60).
	TickSeconds int `json:"tick_seconds,omitempty"`

	config *jsonschema.Schema
}

// Artifact names the plugin's code and its checksum.
type Artifact struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Route is an HTTP route the plugin serves, relative to its base path. A
// trailing "/*" matches any rest of the path.
type Route struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Description string `json:"description,omitempty"`
}

// PermissionRequest is a permission the plugin asks for and why.
type PermissionRequest struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Optional permissions may be withheld; the plugin then runs and its
	// calls needing them are denied. A required one must be granted first.
	Optional bool `json:"optional,omitempty"`
	// Hosts are the hosts an http.fetch request wants to reach.
	Hosts []string `json:"hosts,omitempty"`
}

// Limits are the resources a plugin asks for; the host caps each.
type Limits struct {
	MemoryMB      int `json:"memory_mb,omitempty"`       // linear memory; default 64, at most 512
	TimeoutMS     int `json:"timeout_ms,omitempty"`      // per call; default 2000, at most 30000
	KVBytes       int `json:"kv_bytes,omitempty"`        // per guild; default 1 MiB, at most 64 MiB
	Instances     int `json:"instances,omitempty"`       // concurrent calls per guild; default 2, at most 8
	QueueEvents   int `json:"queue_events,omitempty"`    // events waiting per guild; default 65536, at most 100000
	BatchEvents   int `json:"batch_events,omitempty"`    // events per on_events call; default 256, at most 4096
	MaxOutputKB   int `json:"max_output_kb,omitempty"`   // per call; default 1024, at most 16384
	LogsPerMinute int `json:"logs_per_minute,omitempty"` // default 600, at most 6000
}

var (
	idPattern      = regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)
	versionPattern = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$`)
	shaPattern     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hostPattern    = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$`)
)

// ManifestError lists every problem of a manifest, by field.
type ManifestError struct {
	Fields []event.FieldError
}

func (e *ManifestError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Field + ": " + f.Message
	}
	return "plugin: invalid manifest: " + strings.Join(msgs, "; ")
}

// ParseManifest decodes and validates a manifest. Unknown fields are errors
// (a typo would otherwise silently drop a permission or a hook).
func ParseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, &ManifestError{Fields: []event.FieldError{{Field: "manifest", Message: "not valid JSON for a manifest: " + err.Error()}}}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	var errs []event.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, event.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if !idPattern.MatchString(m.ID) {
		bad("id", "must be 2–63 characters of a-z, 0-9 and -, starting with a letter")
	}
	if strings.TrimSpace(m.Name) == "" || len(m.Name) > 100 {
		bad("name", "required, at most 100 characters")
	}
	if !versionPattern.MatchString(m.Version) {
		bad("version", "must be a semantic version such as 1.2.0")
	}
	if len(m.Description) > 2000 {
		bad("description", "at most 2000 characters")
	}
	if m.Runtime != RuntimeWasm && m.Runtime != RuntimeProcess {
		bad("runtime", `must be "wasm" or "process"`)
	}
	if m.Artifact.Path == "" || strings.Contains(m.Artifact.Path, "..") || strings.HasPrefix(m.Artifact.Path, "/") {
		bad("artifact.path", "required, relative to the manifest, without ..")
	}
	if !shaPattern.MatchString(m.Artifact.SHA256) {
		bad("artifact.sha256", "must be the artifact's SHA-256 as 64 lowercase hex digits")
	}
	if m.ABIVersion != ABIVersion {
		bad("abi_version", "this host speaks ABI version %d", ABIVersion)
	}
	hooks := map[string]bool{}
	for i, h := range m.Hooks {
		switch h {
		case HookEvents, HookScore, HookHTTP, HookTick, HookDeleteUser:
		default:
			bad(fmt.Sprintf("hooks[%d]", i), "unknown hook %q (on_events, score, http, tick, delete_user)", h)
		}
		if hooks[h] {
			bad(fmt.Sprintf("hooks[%d]", i), "listed twice")
		}
		hooks[h] = true
	}
	if len(m.Hooks) == 0 {
		bad("hooks", "a plugin must implement at least one hook")
	}
	perms := map[string]PermissionRequest{}
	for i, p := range m.Permissions {
		f := fmt.Sprintf("permissions[%d]", i)
		if _, ok := LookupPermission(p.Name); !ok {
			bad(f+".name", "unknown permission %q (see the catalogue in PLUGINS.md)", p.Name)
		}
		if _, dup := perms[p.Name]; dup {
			bad(f+".name", "requested twice")
		}
		if strings.TrimSpace(p.Reason) == "" {
			bad(f+".reason", "say why the plugin needs it; admins read this before granting")
		}
		if p.Name == PermHTTPFetch && len(p.Hosts) == 0 {
			bad(f+".hosts", "http.fetch must list the hosts it wants to reach")
		}
		if p.Name != PermHTTPFetch && len(p.Hosts) > 0 {
			bad(f+".hosts", "only http.fetch takes hosts")
		}
		for j, h := range p.Hosts {
			if !hostPattern.MatchString(h) {
				bad(fmt.Sprintf("%s.hosts[%d]", f, j), "must be a host name, optionally *.-prefixed and with :port")
			}
		}
		perms[p.Name] = p
	}
	if hooks[HookEvents] {
		if len(m.Events) == 0 {
			bad("events", "on_events needs the kinds to receive")
		}
	} else if len(m.Events) > 0 {
		bad("events", "only plugins with the on_events hook receive events")
	}
	for i, k := range m.Events {
		if !k.Known() {
			bad(fmt.Sprintf("events[%d]", i), "unknown kind %q", k)
			continue
		}
		if need := ReadPermission(k); perms[need].Name == "" {
			bad(fmt.Sprintf("events[%d]", i), "receiving %s needs the permission %s", k, need)
		}
	}
	switch m.EventEncoding {
	case "", wire.EncodingJSON, wire.EncodingBinary:
	default:
		bad("event_encoding", `must be "json" or "binary"`)
	}
	switch m.ScoreEncoding {
	case "", "json", "binary":
	default:
		bad("score_encoding", `must be "json" or "binary"`)
	}
	for h, need := range hookPermission {
		if hooks[h] && perms[need].Name == "" {
			bad("permissions", "the %s hook needs the permission %s", h, need)
		}
	}
	if len(m.Routes) > 0 && !hooks[HookHTTP] {
		bad("routes", "routes need the http hook")
	}
	for i, r := range m.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		switch r.Method {
		case "GET", "POST", "PUT", "PATCH", "DELETE":
		default:
			bad(f+".method", "must be GET, POST, PUT, PATCH or DELETE")
		}
		if !strings.HasPrefix(r.Path, "/") || strings.Contains(r.Path, "..") || len(r.Path) > 200 {
			bad(f+".path", `must start with "/", without ".."`)
		}
	}
	if len(m.ConfigSchema) > 0 {
		s, err := compileSchema(m.ConfigSchema)
		if err != nil {
			bad("config_schema", "not a valid JSON Schema: %v", err)
		}
		m.config = s
	}
	l := &m.Limits
	limit := func(field string, v *int, def, max int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0 || *v > max:
			bad("limits."+field, "must be between 1 and %d", max)
		}
	}
	limit("memory_mb", &l.MemoryMB, 64, 512)
	limit("timeout_ms", &l.TimeoutMS, 2000, 30000)
	limit("kv_bytes", &l.KVBytes, 1<<20, 64<<20)
	limit("instances", &l.Instances, 2, 8)
	limit("queue_events", &l.QueueEvents, 65536, 100000)
	limit("batch_events", &l.BatchEvents, 256, 4096)
	limit("max_output_kb", &l.MaxOutputKB, 1024, 16384)
	limit("logs_per_minute", &l.LogsPerMinute, 600, 6000)
	if m.TickSeconds == 0 {
		m.TickSeconds = 60
	} else if m.TickSeconds < 10 || m.TickSeconds > 86400 {
		bad("tick_seconds", "must be between 10 and 86400")
	}
	if len(errs) > 0 {
		return &ManifestError{Fields: errs}
	}
	return nil
}

func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("config.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("config.json")
}

// ValidateConfig checks a guild's configuration against the config schema.
func (m *Manifest) ValidateConfig(config json.RawMessage) error {
	var v any
	if err := json.Unmarshal(config, &v); err != nil {
		return fmt.Errorf("plugin: configuration is not JSON: %w", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return fmt.Errorf("plugin: configuration must be a JSON object")
	}
	if m.config == nil {
		return nil
	}
	doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(config))
	if err := m.config.Validate(doc); err != nil {
		return fmt.Errorf("plugin: configuration does not match the plugin's schema: %s", schemaProblems(err))
	}
	return nil
}

// schemaProblems lists where a value breaks a schema and how ("at /limit:
// got string, want number"), without the schema's internal URL.
func schemaProblems(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var out []string
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil {
			continue
		}
		msg := u.Error.String()
		if strings.HasPrefix(msg, "validation failed") { // a parent of the causes listed anyway
			continue
		}
		at := u.InstanceLocation
		if at == "" {
			at = "/"
		}
		out = append(out, "at "+at+": "+msg)
	}
	if len(out) == 0 {
		return err.Error()
	}
	return strings.Join(out, "; ")
}

// Has reports whether the plugin implements hook.
func (m *Manifest) Has(hook string) bool {
	for _, h := range m.Hooks {
		if h == hook {
			return true
		}
	}
	return false
}

// Requested returns the permission request with name, if any.
func (m *Manifest) Requested(name string) (PermissionRequest, bool) {
	for _, p := range m.Permissions {
		if p.Name == name {
			return p, true
		}
	}
	return PermissionRequest{}, false
}

// Timeout is the per-call limit.
func (m *Manifest) Timeout() time.Duration {
	return time.Duration(m.Limits.TimeoutMS) * time.Millisecond
}

// Subscribes reports whether on_events receives kind k.
func (m *Manifest) Subscribes(k event.Kind) bool {
	for _, e := range m.Events {
		if e == k {
			return true
		}
	}
	return false
}

// MatchRoute reports whether the plugin declares a route for method and path.
func (m *Manifest) MatchRoute(method, path string) bool {
	for _, r := range m.Routes {
		if r.Method != method {
			continue
		}
		if r.Path == path || (strings.HasSuffix(r.Path, "/*") && strings.HasPrefix(path, strings.TrimSuffix(r.Path, "*"))) {
			return true
		}
	}
	return false
}
