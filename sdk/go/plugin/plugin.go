// Package plugin is the Go SDK for Spywatcher plugins.
//
// A plugin registers one handler per capability it offers — events, score,
// http, tick, delete_user — and leaves the rest nil:
//
//	func init() {
//		plugin.Register(plugin.Plugin{Events: counter{}, HTTP: counter{}})
//	}
//
//	func main() {}
//
// Built with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared, the
// package exports the hooks the host calls and implements the guest side of
// the Extism ABI itself (no other SDK is needed). Built natively with
// -tags spywatcher_process, the same plugin becomes a process plugin served
// over go-plugin and gRPC (package process, its own module, so that this one
// keeps no dependencies). Handlers reach the host —
// key-value storage, logging, metrics, reads of guild data, outbound HTTP,
// events for dashboards — through the Context they are given; each of those
// calls is checked against the permissions the guild admin granted.
//
// Handlers can be tested natively (go test) with package plugintest, which
// provides an in-memory host.
package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/wire"
)

// Event is one event as a plugin receives it. Its payload is decoded on
// demand by Data.
type Event = wire.Event

// EventHandler receives the events of the kinds the manifest subscribes to,
// in batches, in the order they were stored. The events are valid only
// during the call; copy what must outlive it.
type EventHandler interface {
	OnEvents(ctx *Context, events []Event) error
}

// ScoreHandler scores members from the statistics the host computed.
type ScoreHandler interface {
	Score(ctx *Context, req ScoreRequest) (ScoreResponse, error)
}

// HTTPHandler serves the plugin's routes under
// /api/v1/guilds/{guild}/plugins/{plugin}/http/.
type HTTPHandler interface {
	ServeHTTP(ctx *Context, req *Request) (*Response, error)
}

// TickHandler runs periodically, once per guild.
type TickHandler interface {
	Tick(ctx *Context, now time.Time) error
}

// DeleteUserHandler removes everything the plugin keeps about a user when
// the user's data is deleted.
type DeleteUserHandler interface {
	DeleteUser(ctx *Context, userID string) error
}

// Plugin lists the handlers of a plugin; a nil handler means the hook is not
// offered (and must not be listed in the manifest).
type Plugin struct {
	Events     EventHandler
	Score      ScoreHandler
	HTTP       HTTPHandler
	Tick       TickHandler
	DeleteUser DeleteUserHandler
}

var registered *Plugin

// Register sets the plugin's handlers. Call it once, from an init function.
//
// In a process build (-tags spywatcher_process) Register starts serving the
// host and does not return: make it the last thing the plugin's init
// functions do.
func Register(p Plugin) {
	if registered != nil {
		panic("plugin: Register called twice")
	}
	registered = &p
	serveProcess()
}

// Hook names, as exported to the host and listed in manifests.
const (
	HookEvents     = "on_events"
	HookScore      = "score"
	HookHTTP       = "http"
	HookTick       = "tick"
	HookDeleteUser = "delete_user"
)

// Offered lists the hooks the registered plugin has handlers for.
func Offered() []string {
	if registered == nil {
		return nil
	}
	var out []string
	for _, h := range []struct {
		name string
		on   bool
	}{
		{HookEvents, registered.Events != nil}, {HookScore, registered.Score != nil}, {HookHTTP, registered.HTTP != nil},
		{HookTick, registered.Tick != nil}, {HookDeleteUser, registered.DeleteUser != nil},
	} {
		if h.on {
			out = append(out, h.name)
		}
	}
	return out
}

// eventBufs recycles the event slices of on_events calls: events are valid
// only during the call that delivered them.
var eventBufs = sync.Pool{New: func() any { b := make([]Event, 0, 256); return &b }}

// ErrNotOffered is returned for a hook whose handler is nil.
var ErrNotOffered = errors.New("plugin: hook not offered by this plugin")

// Serve runs hook with input against the registered plugin and returns its
// output. The wasm adapter calls it from the exported hooks; plugintest
// calls it directly.
func Serve(h host, hook string, input []byte) ([]byte, error) {
	if registered == nil {
		return nil, errors.New("plugin: no plugin registered (call plugin.Register in init)")
	}
	ctx := newContext(h)
	p := registered
	switch hook {
	case HookEvents:
		if p.Events == nil {
			return nil, ErrNotOffered
		}
		bp := eventBufs.Get().(*[]Event)
		defer eventBufs.Put(bp)
		_, evs, err := wire.Decode(input, *bp)
		if err != nil {
			return nil, err
		}
		*bp = evs[:0]
		return nil, p.Events.OnEvents(ctx, evs)
	case HookScore:
		if p.Score == nil {
			return nil, ErrNotOffered
		}
		var req ScoreRequest
		decode := decodeScoreRequest
		if len(input) >= 4 && string(input[:4]) == ScoreMagic {
			decode = decodeScoreRequestBinary
		}
		if err := decode(input, &req); err != nil {
			return nil, err
		}
		res, err := p.Score.Score(ctx, req)
		if err != nil {
			return nil, err
		}
		// Size the output once: growing it copies it again and again.
		n := 16
		for i := range res.Scores {
			n += 80 + len(res.Scores[i].Explanation) + 72*len(res.Scores[i].Factors)
		}
		return appendScoreResponse(make([]byte, 0, n), res)
	case HookHTTP:
		if p.HTTP == nil {
			return nil, ErrNotOffered
		}
		var req Request
		if err := decodeRequest(input, &req); err != nil {
			return nil, fmt.Errorf("plugin: http input: %w", err)
		}
		res, err := p.HTTP.ServeHTTP(ctx, &req)
		if err != nil {
			return nil, err
		}
		if res == nil {
			res = &Response{Status: 204}
		}
		return appendResponse(make([]byte, 0, 64+len(res.Body)*4/3), res), nil
	case HookTick:
		if p.Tick == nil {
			return nil, ErrNotOffered
		}
		var in struct {
			Now time.Time `json:"now"`
		}
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, fmt.Errorf("plugin: tick input: %w", err)
		}
		return nil, p.Tick.Tick(ctx, in.Now)
	case HookDeleteUser:
		if p.DeleteUser == nil {
			return nil, ErrNotOffered
		}
		var in struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, fmt.Errorf("plugin: delete_user input: %w", err)
		}
		return nil, p.DeleteUser.DeleteUser(ctx, in.UserID)
	}
	return nil, fmt.Errorf("plugin: unknown hook %q", hook)
}

// Request is an HTTP request to one of the plugin's routes. Path is the part
// after /http (always starting with "/"). Body is base64 in JSON.
type Request struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query,omitempty"`
	Headers map[string]string   `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
	// Caller is who is calling: "user:<account>", "apikey:<key>" or
	// "admintoken" (the host has authenticated and authorized them).
	Caller string `json:"caller,omitempty"`
}

// Response is the plugin's answer. Status defaults to 200 when zero.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// JSON returns a response with v encoded as JSON.
func JSON(status int, v any) (*Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &Response{Status: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: b}, nil
}
