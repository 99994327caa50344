package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// Host functions take a JSON request and answer {"result": …} or
// {"error": {"code", "message"}}; PLUGINS.md documents each. Every call is
// checked against the plugin's grants in the guild of the call.

// hostError is a refusal or failure a host function reports to the plugin.
type hostError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *hostError) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) error {
	return &hostError{Code: "invalid", Message: fmt.Sprintf(format, args...)}
}

const (
	maxKeyBytes   = 512
	maxValueBytes = 1 << 20
	maxEmitBytes  = 64 << 10
	maxMetrics    = 50 // distinct counter names per plugin
)

var (
	metricName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	emitType   = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)
)

func (h *Host) serveHostFunction(ctx context.Context, name string, req []byte) []byte {
	s := scopeFrom(ctx)
	if s == nil {
		return respond(nil, &hostError{Code: "internal", Message: "host function called outside a plugin call"})
	}
	id := s.l.m.ID
	if perm := hostFunctionPermission[name]; perm != "" && !h.permitted(id, s.guild, perm) {
		s.denied++
		h.m.hostCalls.WithLabelValues(id, name, "denied").Inc()
		msg := fmt.Sprintf("%s needs the permission %s, which %s is not granted in guild %s", name, perm, id, s.guild)
		if _, asked := s.l.m.Requested(perm); !asked {
			msg = fmt.Sprintf("%s needs the permission %s, which %s does not request in its manifest", name, perm, id)
		}
		resp := respond(nil, &hostError{Code: "denied", Message: msg})
		h.observe(s, name, req, resp, "denied")
		return resp
	}
	res, err := h.hostFunction(ctx, s, name, req)
	result := "ok"
	var he *hostError
	switch {
	case err == nil:
	case errors.As(err, &he):
		result = he.Code
	default:
		h.log.Error("host function failed", "plugin", id, "guild", s.guild, "function", name, "err", err)
		err = &hostError{Code: "unavailable", Message: "the host could not complete " + name + "; try again later"}
		result = "error"
	}
	h.m.hostCalls.WithLabelValues(id, name, result).Inc()
	resp := respond(res, err)
	h.observe(s, name, req, resp, result)
	return resp
}

func (h *Host) observe(s *callScope, name string, req, resp []byte, result string) {
	if h.cfg.OnHostCall == nil {
		return
	}
	if !json.Valid(req) {
		req, _ = json.Marshal(string(req))
	}
	h.cfg.OnHostCall(HostCall{Plugin: s.l.m.ID, Guild: s.guild, Hook: s.hook, Function: name,
		Request: append(json.RawMessage(nil), req...), Response: append(json.RawMessage(nil), resp...), Result: result})
}

func respond(res any, err error) []byte {
	var b []byte
	if err != nil {
		var he *hostError
		if !errors.As(err, &he) {
			he = &hostError{Code: "internal", Message: err.Error()}
		}
		b, _ = json.Marshal(map[string]any{"error": he})
	} else {
		if res == nil {
			res = struct{}{}
		}
		var merr error
		b, merr = json.Marshal(map[string]any{"result": res})
		if merr != nil {
			b, _ = json.Marshal(map[string]any{"error": &hostError{Code: "internal", Message: merr.Error()}})
		}
	}
	return b
}

// request is the union of every host function's request fields.
type request struct {
	Key     string            `json:"key"`
	Value   []byte            `json:"value"`
	UserID  string            `json:"user_id"`
	Prefix  string            `json:"prefix"`
	After   string            `json:"after"`
	Limit   int               `json:"limit"`
	Level   string            `json:"level"`
	Message string            `json:"message"`
	Attrs   map[string]any    `json:"attrs"`
	Name    string            `json:"name"`
	Delta   float64           `json:"delta"`
	From    time.Time         `json:"from"`
	To      time.Time         `json:"to"`
	Type    string            `json:"type"`
	Data    json.RawMessage   `json:"data"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"`
}

func (h *Host) hostFunction(ctx context.Context, s *callScope, name string, raw []byte) (any, error) {
	var r request
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, invalid("request is not the JSON %s expects: %v", name, err)
	}
	id, guild := s.l.m.ID, s.guild
	switch name {
	case "kv_get":
		if err := checkKey(r.Key); err != nil {
			return nil, err
		}
		v, err := h.st.KVGet(ctx, id, guild, r.Key)
		if errors.Is(err, store.ErrNotFound) {
			return map[string]any{"found": false}, nil
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"found": true, "value": v}, nil
	case "kv_set":
		if err := checkKey(r.Key); err != nil {
			return nil, err
		}
		if len(r.Value) > maxValueBytes {
			return nil, invalid("value of %d bytes; at most %d", len(r.Value), maxValueBytes)
		}
		if r.UserID != "" && !event.IsSnowflake(r.UserID) {
			return nil, invalid("user_id must be a Discord ID")
		}
		err := h.st.KVSet(ctx, id, guild, r.Key, r.UserID, r.Value, int64(s.l.m.Limits.KVBytes))
		if errors.Is(err, store.ErrQuota) {
			return nil, &hostError{Code: "quota", Message: err.Error()}
		}
		return nil, err
	case "kv_delete":
		if err := checkKey(r.Key); err != nil {
			return nil, err
		}
		return nil, h.st.KVDelete(ctx, id, guild, r.Key)
	case "kv_list":
		if r.Limit <= 0 {
			r.Limit = 100
		}
		if r.Limit > 1000 {
			return nil, invalid("limit at most 1000")
		}
		entries, err := h.st.KVList(ctx, id, guild, r.Prefix, r.After, r.Limit+1)
		if err != nil {
			return nil, err
		}
		next := ""
		if len(entries) > r.Limit {
			entries = entries[:r.Limit]
			next = entries[len(entries)-1].Key
		}
		return map[string]any{"entries": entries, "next": next}, nil
	case "log":
		return nil, h.pluginLog(ctx, s, r)
	case "metric":
		if !metricName.MatchString(r.Name) {
			return nil, invalid("metric name must match %s", metricName)
		}
		if r.Delta < 0 || r.Delta > 1e12 {
			return nil, invalid("a counter only goes up: delta must be between 0 and 1e12")
		}
		if !h.metricAllowed(id, r.Name) {
			return nil, &hostError{Code: "quota", Message: fmt.Sprintf("at most %d distinct counter names per plugin", maxMetrics)}
		}
		h.m.counters.WithLabelValues(id, guild, r.Name).Add(r.Delta)
		return nil, nil
	case "member_get":
		if !event.IsSnowflake(r.UserID) {
			return nil, invalid("user_id must be a Discord ID")
		}
		m, err := h.st.GetMember(ctx, guild, r.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, &hostError{Code: "not_found", Message: "no member " + r.UserID + " in this guild"}
		}
		if err != nil {
			return nil, err
		}
		return sdk.Member{UserID: m.UserID, Name: m.Name, Username: m.Username, Bot: m.Bot, Roles: m.Roles,
			JoinedAt: m.JoinedAt, LeftAt: m.LeftAt, FirstSeen: m.FirstSeen, LastSeen: m.LastSeen,
			LastMessageAt: m.LastMessageAt, MessageCount: m.MessageCount, Status: m.Status}, nil
	case "activity_get":
		if r.UserID != "" && !event.IsSnowflake(r.UserID) {
			return nil, invalid("user_id must be a Discord ID or empty for the guild")
		}
		if r.To.IsZero() {
			r.To = h.cfg.Now()
		}
		if r.From.IsZero() {
			r.From = r.To.Add(-24 * time.Hour)
		}
		if !r.From.Before(r.To) || r.To.Sub(r.From) > 92*24*time.Hour {
			return nil, invalid("from must be before to, at most 92 days apart")
		}
		hours, err := h.st.Activity(ctx, guild, r.UserID, r.From, r.To)
		if err != nil {
			return nil, err
		}
		return map[string]any{"hours": hours}, nil
	case "emit":
		if !emitType.MatchString(r.Type) {
			return nil, invalid("type must match %s", emitType)
		}
		if len(r.Data) > maxEmitBytes {
			return nil, invalid("data of %d bytes; at most %d", len(r.Data), maxEmitBytes)
		}
		if h.emit != nil {
			now := h.cfg.Now().UTC()
			h.emit.PublishPluginEvent(ctx, bus.PluginEvent{
				ID: id + ":" + strconv.FormatInt(now.UnixNano(), 36), GuildID: guild, PluginID: id,
				Type: r.Type, At: now, Data: r.Data,
			})
		}
		return nil, nil
	case "http_fetch":
		grant := s.snap.state(id, guild).grants[PermHTTPFetch]
		res, err := h.fetch.Do(ctx, safehttp.Policy{
			AllowedHosts: grant.Hosts, AllowPrivate: h.cfg.FetchAllowPrivate,
			Timeout: min(10*time.Second, s.l.m.Timeout()),
		}, safehttp.Request{Method: r.Method, URL: r.URL, Header: r.Headers, Body: r.Body})
		if err != nil {
			return nil, &hostError{Code: fetchErrorCode(err), Message: err.Error()}
		}
		return sdk.FetchResponse{Status: res.Status, Headers: res.Header, Body: res.Body, Truncated: res.Truncated}, nil
	}
	return nil, invalid("unknown host function %q", name)
}

func fetchErrorCode(err error) string {
	switch {
	case errors.Is(err, safehttp.ErrHostNotAllowed), errors.Is(err, safehttp.ErrAddressNotAllowed), errors.Is(err, safehttp.ErrScheme):
		return "denied"
	case errors.Is(err, safehttp.ErrTimeout):
		return "timeout"
	}
	return "unavailable"
}

func checkKey(k string) error {
	if k == "" || len(k) > maxKeyBytes || !utf8.ValidString(k) {
		return invalid("key must be 1 to %d bytes of UTF-8", maxKeyBytes)
	}
	return nil
}

// metricAllowed bounds the counter names a plugin may create, which bounds
// the metric's cardinality.
func (h *Host) metricAllowed(pluginID, name string) bool {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if h.metricNames == nil {
		h.metricNames = map[string]map[string]bool{}
	}
	names := h.metricNames[pluginID]
	if names == nil {
		names = map[string]bool{}
		h.metricNames[pluginID] = names
	}
	if names[name] {
		return true
	}
	if len(names) >= maxMetrics {
		return false
	}
	names[name] = true
	return true
}

func (h *Host) pluginLog(ctx context.Context, s *callScope, r request) error {
	level, ok := map[string]int{"debug": -4, "info": 0, "warn": 4, "error": 8}[r.Level]
	if !ok {
		return invalid("level must be debug, info, warn or error")
	}
	if len(r.Message) > 4000 || len(r.Attrs) > 32 {
		return invalid("message at most 4000 bytes and at most 32 attributes")
	}
	args := make([]any, 0, len(r.Attrs)*2)
	for k, v := range r.Attrs {
		args = append(args, "attr."+k, v)
	}
	h.pluginLogger(s.l.m, s.guild).Log(ctx, slog.Level(level), r.Message, args...)
	return nil
}
