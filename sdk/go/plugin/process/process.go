// Package process serves a Spywatcher plugin as a native process over
// hashicorp/go-plugin with gRPC (PLUGINS.md, "Process plugins").
//
// Plugin authors do not import it: the Go SDK (package
// github.com/spywatcher/spywatcher/sdk/go/plugin) selects it when the plugin
// is built with the build tag spywatcher_process, so the same plugin source
// builds to WebAssembly or to a process. It lives in its own module because
// it needs go-plugin and gRPC, and the SDK itself has no dependencies. It
// does not import the SDK (which imports it); the SDK adapts its registered
// plugin to Handler.
package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/spywatcher/spywatcher/sdk/go/plugin/process/pluginv1"
)

// Handshake is what the host and a plugin process must agree on before
// anything else: go-plugin refuses a binary that does not present this
// cookie (it is not a Spywatcher plugin, or was started by hand).
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "SPYWATCHER_PLUGIN",
	MagicCookieValue: "d2c1f7c9a43e4b1a9d3f6a8e5b0c7e21",
}

// PluginName is the name of the one plugin a Spywatcher process serves.
const PluginName = "spywatcher"

// ProtocolVersion is the version of the process protocol (the gRPC service
// in pluginv1), negotiated by go-plugin's VersionedPlugins: a host and a
// plugin that share no version refuse each other at start.
const ProtocolVersion = 1

// protocolVersion is the version this binary serves. It is a string so that
// tests can build a plugin from the future with
// -ldflags "-X github.com/spywatcher/spywatcher/sdk/go/plugin/process.protocolVersion=2".
var protocolVersion = "1" // ProtocolVersion; a constant, so that -X can replace it

// Host is the host as a handler sees it: the same interface as the SDK's
// plugin.Host.
type Host interface {
	Call(fn string, request []byte) ([]byte, error)
	Config(key string) (string, bool)
}

// Handler is a plugin: the hooks it has handlers for, and how to run one.
type Handler interface {
	Hooks() []string
	Serve(h Host, hook string, input []byte) ([]byte, error)
}

// Serve serves h to the host that started this process and exits when the
// host is done with it. It does not return.
func Serve(h Handler) {
	v, err := strconv.Atoi(protocolVersion)
	if err != nil {
		fmt.Fprintln(os.Stderr, "spywatcher plugin: bad protocol version", protocolVersion)
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{v: {PluginName: &GRPCPlugin{Impl: h}}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "plugin", Level: hclog.Debug, Output: os.Stderr, JSONFormat: true,
		}),
	})
	os.Exit(0)
}

// GRPCPlugin is the plugin side of the go-plugin GRPCPlugin contract.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Handler
}

// GRPCServer registers the Plugin service.
func (p *GRPCPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServer(s, &server{h: p.Impl, broker: broker})
	return nil
}

// GRPCClient is the host's side; a plugin never dials.
func (p *GRPCPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("spywatcher plugin: the plugin side has no client")
}

type server struct {
	pluginv1.UnimplementedPluginServer
	h      Handler
	broker *plugin.GRPCBroker

	mu     sync.Mutex // one call at a time, as in a WebAssembly instance
	config map[string]string
	host   pluginv1.HostFunctionsClient
	callID atomic.Uint64
}

func (s *server) Start(_ context.Context, req *pluginv1.StartRequest) (*pluginv1.StartResponse, error) {
	conn, err := s.broker.Dial(req.GetHostFunctionsBrokerId())
	if err != nil {
		return nil, fmt.Errorf("dial host functions: %w", err)
	}
	s.mu.Lock()
	s.config = req.GetConfig()
	s.host = pluginv1.NewHostFunctionsClient(conn)
	s.mu.Unlock()
	return &pluginv1.StartResponse{Hooks: s.h.Hooks()}, nil
}

func (s *server) Call(ctx context.Context, req *pluginv1.CallRequest) (res *pluginv1.CallResponse, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host == nil {
		return nil, errors.New("spywatcher plugin: Call before Start")
	}
	s.callID.Store(req.GetCallId())
	defer func() {
		// A panicking handler is the plugin's error; the process lives on,
		// as a WebAssembly instance does.
		if v := recover(); v != nil {
			res, err = &pluginv1.CallResponse{Failed: true, Error: fmt.Sprintf("panic in %s: %v", req.GetHook(), v)}, nil
		}
	}()
	out, herr := s.h.Serve(&host{s: s, ctx: ctx, id: req.GetCallId()}, req.GetHook(), req.GetInput())
	if herr != nil {
		return &pluginv1.CallResponse{Failed: true, Error: herr.Error()}, nil
	}
	return &pluginv1.CallResponse{Output: out}, nil
}

// host serves one call's host function calls through the broker.
type host struct {
	s   *server
	ctx context.Context
	id  uint64
}

func (h *host) Call(fn string, request []byte) ([]byte, error) {
	res, err := h.s.host.Call(h.ctx, &pluginv1.HostCallRequest{CallId: h.id, Function: fn, Request: request})
	if err != nil {
		return nil, err
	}
	return res.GetResponse(), nil
}

func (h *host) Config(key string) (string, bool) {
	v, ok := h.s.config[key]
	return v, ok
}
