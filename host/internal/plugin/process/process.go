// Package process runs process plugins: native executables started and
// spoken to through hashicorp/go-plugin with gRPC (the contract is
// sdk/go/plugin/process/pluginv1). It is the second runtime of the plugin
// host beside package wasm, with the same shape — a Module per installed
// version, Instances that serve one call at a time — so that the host's
// pool, dispatch and fault accounting do not care which runtime runs a
// plugin.
//
// What this runtime guarantees: the binary started is the one installed
// (go-plugin's SecureConfig checks its SHA-256 before every start); the host
// and the plugin agree on a protocol version (VersionedPlugins) or refuse
// each other; the connection is mutually authenticated (AutoMTLS) so no
// other local process can talk to either side; the plugin inherits none of
// the host's environment (it would see database URLs and tokens); host
// functions reach the plugin through the go-plugin gRPC broker and are
// served by the same function as for WebAssembly, so the same permission
// checks apply; a dead or unresponsive process is restarted with
// exponential backoff and every crash is reported to the host, which
// quarantines after repeated failures.
//
// The contract is protobuf (pluginv1/plugin.proto, generated code
// committed, `make proto` regenerates it) rather than a JSON codec over
// gRPC: go-plugin's own services are protobuf already, and a .proto file is
// what a plugin author in another language needs to implement the process
// side. The payloads inside stay the WebAssembly ABI's JSON documents.
//
// What it cannot guarantee: a process is not sandboxed. It runs with the
// host's user, can read and write its files, open sockets and use as much
// memory and CPU as the OS allows. PLUGINS.md says so to admins, and the
// host requires an explicit acknowledgement to enable one.
package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdkprocess "github.com/spywatcher/spywatcher/sdk/go/plugin/process"
	"github.com/spywatcher/spywatcher/sdk/go/plugin/process/pluginv1"
)

// HostFunc serves one host function, as in package wasm: a JSON request in,
// a JSON response envelope out. ctx is the context of the hook call being
// served.
type HostFunc func(ctx context.Context, request []byte) []byte

// Options tune the runtime. Zero fields take the defaults noted.
type Options struct {
	HealthInterval time.Duration // how often an idle process is pinged; default 10s
	HealthTimeout  time.Duration // longest wait for the answer to a ping; default 5s
	StartTimeout   time.Duration // spawn and handshake; default 10s
	BackoffMin     time.Duration // first restart delay after a crash; default 200ms
	BackoffMax     time.Duration // longest restart delay; default 30s
	// Env is the whole environment of plugin processes (the host's own is
	// never passed on). Default: PATH=/usr/bin:/bin.
	Env []string
}

// Runtime starts process plugins and serves them host functions.
type Runtime struct {
	funcs map[string]HostFunc
	opts  Options
}

// NewRuntime returns a runtime offering funcs to its plugins.
func NewRuntime(funcs map[string]HostFunc, opts Options) *Runtime {
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 10 * time.Second
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 5 * time.Second
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 200 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.Env == nil {
		opts.Env = []string{"PATH=/usr/bin:/bin"}
	}
	return &Runtime{funcs: funcs, opts: opts}
}

// Module is an installed process plugin: an executable with a known
// checksum.
type Module struct {
	rt          *Runtime
	path        string
	sum         []byte
	callTimeout time.Duration

	mu     sync.Mutex
	live   map[*Instance]struct{}
	closed bool
}

// Load prepares the executable at path, whose SHA-256 must be sha256Hex
// whenever it is started. callTimeout bounds each hook call.
func (r *Runtime) Load(path, sha256Hex string, callTimeout time.Duration) (*Module, error) {
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("process: bad checksum %q", sha256Hex)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 == 0 {
		return nil, fmt.Errorf("process: %s is not an executable file", path)
	}
	return &Module{rt: r, path: path, sum: sum, callTimeout: callTimeout, live: map[*Instance]struct{}{}}, nil
}

// Close stops every process of the module.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	live := make([]*Instance, 0, len(m.live))
	for in := range m.live {
		live = append(live, in)
	}
	m.mu.Unlock()
	for _, in := range live {
		in.Close(ctx)
	}
	return nil
}

// Hooks starts the plugin once with an empty configuration and returns the
// hooks it has handlers for; installing uses it to check the manifest.
func (m *Module) Hooks(ctx context.Context, log *slog.Logger) ([]string, error) {
	in, err := m.Instantiate(ctx, InstanceOptions{Log: log})
	if err != nil {
		return nil, err
	}
	defer in.Close(ctx)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cur == nil {
		return nil, errors.New("process: plugin exited at start")
	}
	return in.cur.hooks, nil
}

// InstanceOptions are what one instance is started with.
type InstanceOptions struct {
	Config map[string]string // the Extism config of a WebAssembly instance
	Log    *slog.Logger      // go-plugin's and the plugin's own log lines
	Output io.Writer         // what the plugin writes to stdout and stderr
	// OnCrash hears of a process that died or stopped answering while no
	// call was running (a call that sees it returns the error instead). The
	// instance restarts the process itself.
	OnCrash func(err error)
}

// Instance is a supervised plugin process. It serves one call at a time;
// when its process dies it starts a new one after a backoff.
type Instance struct {
	m    *Module
	opts InstanceOptions

	mu       sync.Mutex
	cur      *proc         // nil while (re)starting
	ready    chan struct{} // closed when cur is set or the instance closed
	lastErr  error         // why there is no process now
	crashes  int           // consecutive, for the backoff
	closed   bool
	stop     chan struct{}
	done     chan struct{}
	rssBytes atomic.Int64

	callID atomic.Uint64
	active atomic.Pointer[activeCall]
}

type activeCall struct {
	id  uint64
	ctx context.Context
}

// proc is one running process.
type proc struct {
	client *plugin.Client
	rpc    pluginv1.PluginClient
	hooks  []string
	pid    int
	gone   atomic.Bool // crash handled
}

// stop ends the process. A graceful stop lets go-plugin ask it to exit; a
// crashed or hung process is killed first, because go-plugin's graceful
// shutdown waits for an answer a stopped process never gives. Either way
// a process that has not gone within killAfter is killed.
func (p *proc) stop(graceful bool) {
	const killAfter = 5 * time.Second
	kill := func() {
		if p.pid > 0 {
			if osp, err := os.FindProcess(p.pid); err == nil {
				osp.Kill() //nolint:errcheck // it may be gone already
			}
		}
	}
	if !graceful {
		kill()
	}
	done := make(chan struct{})
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(killAfter):
		kill()
		<-done
	}
}

// CrashError reports a call that failed because the process died, hung or
// could not be started. The instance restarts the process by itself.
type CrashError struct{ Err error }

func (e *CrashError) Error() string { return "process: " + e.Err.Error() }
func (e *CrashError) Unwrap() error { return e.Err }

// GuestError is an error the plugin reported itself; the process is fine.
type GuestError struct{ Message string }

func (e *GuestError) Error() string { return "plugin error: " + e.Message }

// Instantiate starts a process. An error here (a checksum mismatch, a
// protocol version the plugin does not speak) is returned as is, and no
// instance is left behind.
func (m *Module) Instantiate(ctx context.Context, opts InstanceOptions) (*Instance, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	in := &Instance{m: m, opts: opts, ready: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	p, err := in.spawn(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		p.stop(true)
		return nil, errors.New("process: module closed")
	}
	m.live[in] = struct{}{}
	m.mu.Unlock()
	in.cur = p
	close(in.ready)
	in.sampleRSS()
	go in.supervise()
	return in, nil
}

// spawn starts the executable, completes the handshake and calls Start.
func (in *Instance) spawn(ctx context.Context) (*proc, error) {
	m := in.m
	cmd := exec.Command(m.path)
	cmd.Env = append([]string(nil), m.rt.opts.Env...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdkprocess.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdkprocess.ProtocolVersion: {sdkprocess.PluginName: &clientPlugin{}}},
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: m.sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     m.rt.opts.StartTimeout,
		Logger:           newHCLogger(in.opts.Log, "process"),
		SyncStdout:       in.opts.Output,
		SyncStderr:       in.opts.Output,
		Stderr:           io.Discard, // lines are parsed into Logger already
	})
	fail := func(err error) (*proc, error) {
		(&proc{client: client, pid: pidOf(client)}).stop(false)
		return nil, fmt.Errorf("process: start %s: %w", m.path, explain(err))
	}
	cp, err := client.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := cp.Dispense(sdkprocess.PluginName)
	if err != nil {
		return fail(err)
	}
	c := raw.(*grpcClient)
	// Host functions: one gRPC server per process behind the broker, served
	// by the same functions as WebAssembly guests'.
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pluginv1.RegisterHostFunctionsServer(s, &hostServer{in: in})
		return s
	})
	sctx, cancel := context.WithTimeout(ctx, m.rt.opts.StartTimeout)
	defer cancel()
	res, err := c.rpc.Start(sctx, &pluginv1.StartRequest{Config: in.opts.Config, HostFunctionsBrokerId: id})
	if err != nil {
		return fail(err)
	}
	return &proc{client: client, rpc: c.rpc, hooks: res.GetHooks(), pid: pidOf(client)}, nil
}

// pidOf is the process ID of a started client, 0 if unknown.
func pidOf(c *plugin.Client) int {
	if rc := c.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// explain turns go-plugin's start errors into sentences an admin can act on.
func explain(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("the executable's checksum does not match the manifest (changed since install?): %w", err)
	case strings.Contains(strings.ToLower(msg), "incompatible api version"), strings.Contains(msg, "Unsupported plugin protocol"):
		return fmt.Errorf("the plugin speaks a process protocol version this host does not (host speaks %d; rebuild the plugin with a matching SDK): %w", sdkprocess.ProtocolVersion, err)
	}
	return err
}

// Call runs hook with input, waiting for a restarting process if need be.
func (in *Instance) Call(ctx context.Context, hook string, input []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, in.m.callTimeout)
	defer cancel()
	p, err := in.process(ctx)
	if err != nil {
		return nil, err
	}
	id := in.callID.Add(1)
	in.active.Store(&activeCall{id: id, ctx: ctx})
	res, err := p.rpc.Call(ctx, &pluginv1.CallRequest{Hook: hook, Input: input, CallId: id})
	in.active.Store(nil)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
			// The process may be stuck in the hook: replace it. gRPC sends
			// the deadline along, so the process's side can end the call a
			// moment before ctx itself expires here.
			err = fmt.Errorf("%s timed out after %s", hook, in.m.callTimeout)
		case status.Code(err) == codes.Canceled && ctx.Err() != nil:
			return nil, ctx.Err()
		}
		in.crashed(p, err, false)
		return nil, &CrashError{Err: err}
	}
	in.mu.Lock()
	in.crashes = 0
	in.mu.Unlock()
	if res.GetFailed() {
		return nil, &GuestError{Message: res.GetError()}
	}
	return res.GetOutput(), nil
}

// process returns the running process, waiting while one starts.
func (in *Instance) process(ctx context.Context) (*proc, error) {
	for {
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			return nil, errors.New("process: instance closed")
		}
		p, ready, last := in.cur, in.ready, in.lastErr
		in.mu.Unlock()
		if p != nil {
			return p, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return nil, &CrashError{Err: fmt.Errorf("plugin process is restarting after: %w", last)}
		}
	}
}

// crashed retires p once, whoever notices first; report says whether to
// tell OnCrash (a call that noticed returns the error instead).
func (in *Instance) crashed(p *proc, err error, report bool) {
	if !p.gone.CompareAndSwap(false, true) {
		return
	}
	p.stop(false)
	in.mu.Lock()
	if in.cur == p {
		in.cur = nil
		in.ready = make(chan struct{})
	}
	in.lastErr = err
	in.crashes++
	in.mu.Unlock()
	if report {
		in.reportCrash(err)
	}
}

// reportCrash tells OnCrash, off the supervisor's goroutine: the host may
// react by closing this very instance, which waits for the supervisor.
func (in *Instance) reportCrash(err error) {
	if in.opts.OnCrash != nil {
		go in.opts.OnCrash(err)
	}
}

// supervise restarts a dead process with backoff and checks the health of
// a live one, until Close.
func (in *Instance) supervise() {
	defer close(in.done)
	poll := time.NewTicker(min(250*time.Millisecond, in.m.rt.opts.HealthInterval))
	defer poll.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-in.stop:
			return
		case <-poll.C:
		}
		in.mu.Lock()
		p, crashes := in.cur, in.crashes
		in.mu.Unlock()
		if p == nil {
			delay := in.m.rt.opts.BackoffMin << min(max(crashes-1, 0), 16)
			delay = min(delay, in.m.rt.opts.BackoffMax)
			select {
			case <-in.stop:
				return
			case <-time.After(delay):
			}
			np, err := in.spawn(context.Background())
			if err != nil {
				in.mu.Lock()
				in.lastErr, in.crashes = err, in.crashes+1
				in.mu.Unlock()
				in.reportCrash(err)
				continue
			}
			in.mu.Lock()
			if in.closed {
				in.mu.Unlock()
				np.stop(true)
				return
			}
			in.cur = np
			close(in.ready)
			in.mu.Unlock()
			in.opts.Log.Info("plugin process restarted", "pid", np.pid, "after_crashes", crashes)
			in.sampleRSS()
			continue
		}
		if p.client.Exited() {
			in.crashed(p, errors.New("plugin process exited"), in.active.Load() == nil)
			continue
		}
		if time.Since(lastPing) < in.m.rt.opts.HealthInterval || in.active.Load() != nil {
			continue
		}
		lastPing = time.Now()
		if err := in.ping(p); err != nil {
			// A process that died just before the ping fails it too: say
			// which it was (go-plugin notices the exit a moment later).
			err = fmt.Errorf("plugin process failed its health check: %w", err)
			if exitedWithin(p, 200*time.Millisecond) {
				err = errors.New("plugin process exited")
			}
			in.crashed(p, err, true)
			continue
		}
		in.sampleRSS()
	}
}

// exitedWithin tells whether p's process is seen to have exited within d.
func exitedWithin(p *proc, d time.Duration) bool {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if p.client.Exited() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

func (in *Instance) ping(p *proc) error {
	cp, err := p.client.Client()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cp.Ping() }()
	select {
	case err := <-done:
		return err
	case <-time.After(in.m.rt.opts.HealthTimeout):
		return fmt.Errorf("no answer within %s", in.m.rt.opts.HealthTimeout)
	}
}

// MemoryBytes is the resident memory of the process, as last sampled.
func (in *Instance) MemoryBytes() int64 { return in.rssBytes.Load() }

func (in *Instance) sampleRSS() {
	in.mu.Lock()
	p := in.cur
	in.mu.Unlock()
	if p == nil || p.pid == 0 {
		return
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/statm")
	if err != nil {
		in.rssBytes.Store(16 << 20) // an estimate where /proc is unavailable
		return
	}
	f := strings.Fields(string(b))
	if len(f) > 1 {
		pages, _ := strconv.ParseInt(f[1], 10, 64)
		in.rssBytes.Store(pages * int64(os.Getpagesize()))
	}
}

// Reusable reports whether the instance can serve again after err: it can
// unless closed, since it replaces a dead process itself.
func (in *Instance) Reusable(error) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return !in.closed
}

// PID is the current process's ID, 0 while restarting.
func (in *Instance) PID() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cur == nil {
		return 0
	}
	return in.cur.pid
}

// Close stops the process (go-plugin asks it to shut down, then kills it)
// and its supervision.
func (in *Instance) Close(context.Context) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	p := in.cur
	in.cur = nil
	select {
	case <-in.ready:
	default:
		close(in.ready)
	}
	in.mu.Unlock()
	close(in.stop)
	<-in.done
	if p != nil && p.gone.CompareAndSwap(false, true) {
		p.stop(true)
	}
	in.m.mu.Lock()
	delete(in.m.live, in)
	in.m.mu.Unlock()
	return nil
}

// hostServer serves host functions to one instance's process.
type hostServer struct {
	pluginv1.UnimplementedHostFunctionsServer
	in *Instance
}

func (s *hostServer) Call(_ context.Context, req *pluginv1.HostCallRequest) (*pluginv1.HostCallResponse, error) {
	a := s.in.active.Load()
	if a == nil || a.id != req.GetCallId() {
		return nil, status.Error(codes.FailedPrecondition, "host functions can only be called during a hook call, with its call_id")
	}
	f := s.in.m.rt.funcs[req.GetFunction()]
	if f == nil {
		return nil, status.Errorf(codes.NotFound, "unknown host function %q", req.GetFunction())
	}
	return &pluginv1.HostCallResponse{Response: f(a.ctx, req.GetRequest())}, nil
}

// clientPlugin is the host's side of the go-plugin GRPCPlugin contract.
type clientPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

type grpcClient struct {
	rpc    pluginv1.PluginClient
	broker *plugin.GRPCBroker
}

func (clientPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("process: the host does not serve plugins")
}

func (clientPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{rpc: pluginv1.NewPluginClient(c), broker: broker}, nil
}
