package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/safehttp"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

const pluginTestUsage = `Usage: spywatcher plugin test DIR --events FILE [flags]

Runs the plugin whose plugin.json is in DIR in a throwaway in-memory host:
installs it, enables it in the events' guild, grants what it asks for (or
what --grant names), sets --config, delivers the events of FILE (one JSON
event per line, the format of sdk/go/event.Event) in batches, optionally
runs tick and HTTP requests, then prints what the plugin did: its hook
calls, host function calls, permission denials, emitted events, logs and
key-value data. A stale artifact.sha256 is corrected for the run (with a
warning). Process plugins are trusted without asking: it is your own code.

Exit status: 0 when every hook call succeeded and every --expect
expectation held, 1 otherwise, 2 for a usage error.

Flags:
`

// TestReport is what spywatcher plugin test found; --json prints it.
type TestReport struct {
	Plugin    string              `json:"plugin"`
	Version   string              `json:"version"`
	Runtime   string              `json:"runtime"`
	Guild     string              `json:"guild"`
	Granted   []string            `json:"granted"`
	Events    int                 `json:"events"`    // read from the file for the guild
	Delivered int                 `json:"delivered"` // after filtering by kind and permission
	Calls     []TestCall          `json:"calls"`
	HostCalls []plugin.HostCall   `json:"host_calls"`
	Denials   []plugin.HostCall   `json:"denials"`
	Emitted   []TestEmitted       `json:"emitted"`
	Logs      []map[string]any    `json:"logs"`
	KV        map[string]string   `json:"kv"`
	HTTP      []TestHTTP          `json:"http,omitempty"`
	Warnings  []string            `json:"warnings,omitempty"`
	Failures  []string            `json:"failures,omitempty"`
	Config    json.RawMessage     `json:"config,omitempty"`
	Expected  map[string][]string `json:"-"`
}

// TestCall is one hook call and its outcome.
type TestCall struct {
	Hook  string `json:"hook"`
	Error string `json:"error,omitempty"`
}

// TestEmitted is an event the plugin published for dashboards.
type TestEmitted struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// TestHTTP is a request to one of the plugin's routes and its answer.
type TestHTTP struct {
	Request string `json:"request"`
	Status  int    `json:"status"`
	Body    string `json:"body"`
	Error   string `json:"error,omitempty"`
}

// testExpect is what --expect checks.
type testExpect struct {
	Emitted   []string          `json:"emitted"`    // types that must have been emitted
	KV        map[string]string `json:"kv"`         // keys that must hold these values
	NoDenials bool              `json:"no_denials"` // no host call refused
	Denied    []string          `json:"denied"`     // host functions that must have been refused
	HTTP      []struct {
		Request      string `json:"request"`
		Status       int    `json:"status"`
		BodyContains string `json:"body_contains"`
	} `json:"http"`
	LogContains []string `json:"log_contains"` // messages that must have been logged
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func pluginTestCmd(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("plugin test", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var eventsFile, configArg, guild, expectFile, artifact, runtime string
	var grants, requests stringList
	var asJSON, tick bool
	fs.StringVar(&eventsFile, "events", "", "events to deliver, one JSON event per line (- for stdin)")
	fs.StringVar(&configArg, "config", "", "the guild's configuration: a JSON object or a file holding one")
	fs.Var(&grants, "grant", "grant only these permissions (repeat, or comma-separate; \"none\" grants nothing); default: all it asks for")
	fs.StringVar(&guild, "guild", "", "guild to run in (default: the first event's)")
	fs.Var(&requests, "http", `after the events, request a route: "GET /path?x=1" (repeatable)`)
	fs.BoolVar(&tick, "tick", false, "after the events, run the tick hook once")
	fs.StringVar(&expectFile, "expect", "", "a JSON file of expectations (emitted, kv, no_denials, denied, http, log_contains); unmet ones fail the run")
	fs.StringVar(&artifact, "artifact", "", "run this artifact instead of the manifest's (the same source built for another runtime)")
	fs.StringVar(&runtime, "runtime", "", "override the manifest's runtime (wasm or process), with --artifact")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, pluginTestUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}
	var dir string
	if len(pos) > 0 {
		dir = pos[0]
	}
	usage := func(msg string) error {
		return &exitError{code: 2, err: errors.New(msg + " (see spywatcher plugin test --help)")}
	}
	if dir == "" {
		return usage("name the plugin's directory")
	}
	if eventsFile == "" && len(requests) == 0 && !tick {
		return usage("give --events, --http or --tick")
	}
	rep, err := runPluginTest(ctx, pluginTestOptions{
		dir: dir, events: eventsFile, config: configArg, guild: guild, grants: grants, requests: requests,
		tick: tick, expect: expectFile, artifact: artifact, runtime: runtime, stdin: env.Stdin,
	})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printTestReport(env.Stdout, rep)
	}
	if len(rep.Failures) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("plugin test: %d failure(s)", len(rep.Failures))}
	}
	return nil
}

type pluginTestOptions struct {
	dir, events, config, guild, expect, artifact, runtime string
	grants, requests                                      []string
	tick                                                  bool
	stdin                                                 io.Reader
}

// logCapture keeps the plugin's log records.
type logCapture struct {
	mu      sync.Mutex
	on      bool // off while the tool sets the host up
	records []map[string]any
	attrs   []slog.Attr
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	rec := map[string]any{"level": r.Level.String(), "msg": r.Message}
	add := func(a slog.Attr) bool {
		rec[a.Key] = a.Value.Resolve().Any()
		return true
	}
	for _, a := range l.attrs {
		add(a)
	}
	r.Attrs(add)
	if rec["plugin"] == nil {
		return nil // the host's own bookkeeping, not the plugin's
	}
	if v, ok := rec["source"].(string); ok && strings.HasPrefix(v, "process") && r.Level < slog.LevelInfo {
		return nil // go-plugin's debug chatter
	}
	l.mu.Lock()
	if l.on {
		l.records = append(l.records, rec)
	}
	l.mu.Unlock()
	return nil
}
func (l *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &logView{l: l, attrs: append(slices.Clone(l.attrs), as...)}
}
func (l *logCapture) WithGroup(string) slog.Handler { return l }

// logView is logCapture with attributes attached.
type logView struct {
	l     *logCapture
	attrs []slog.Attr
}

func (v *logView) Enabled(context.Context, slog.Level) bool { return true }
func (v *logView) Handle(ctx context.Context, r slog.Record) error {
	r2 := r.Clone()
	r2.AddAttrs(v.attrs...)
	return v.l.Handle(ctx, r2)
}
func (v *logView) WithAttrs(as []slog.Attr) slog.Handler {
	return &logView{l: v.l, attrs: append(slices.Clone(v.attrs), as...)}
}
func (v *logView) WithGroup(string) slog.Handler { return v }

func runPluginTest(ctx context.Context, o pluginTestOptions) (*TestReport, error) {
	manifest, err := os.ReadFile(filepath.Join(o.dir, "plugin.json"))
	if err != nil {
		return nil, fmt.Errorf("plugin test: %w", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(manifest, &raw); err != nil {
		return nil, fmt.Errorf("plugin test: plugin.json: %w", err)
	}
	art, _ := raw["artifact"].(map[string]any)
	if art == nil {
		return nil, errors.New("plugin test: plugin.json has no artifact")
	}
	path := filepath.Join(o.dir, fmt.Sprint(art["path"]))
	if o.artifact != "" {
		path = o.artifact
		art["path"] = filepath.Base(o.artifact)
	}
	if o.runtime != "" {
		raw["runtime"] = o.runtime
	}
	code, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plugin test: artifact: %w (build the plugin first)", err)
	}
	rep := &TestReport{KV: map[string]string{}, Calls: []TestCall{}, HostCalls: []plugin.HostCall{}, Denials: []plugin.HostCall{}, Emitted: []TestEmitted{}, Logs: []map[string]any{}}
	sum := sha256.Sum256(code)
	if got := hex.EncodeToString(sum[:]); art["sha256"] != got {
		if o.artifact == "" {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("plugin.json's artifact.sha256 is stale; the artifact's is %s (corrected for this run; fix it before installing)", got))
		}
		art["sha256"] = got
	}
	if manifest, err = json.Marshal(raw); err != nil {
		return nil, err
	}

	var evs []event.Event
	if o.events != "" {
		if evs, err = readEvents(o.events, o.stdin); err != nil {
			return nil, err
		}
	}
	if o.guild == "" {
		o.guild = "100000000000000001"
		if len(evs) > 0 {
			o.guild = evs[0].GuildID
		}
	}
	rep.Guild = o.guild

	tmp, err := os.MkdirTemp("", "spywatcher-plugin-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	st, err := store.Open(ctx, filepath.Join(tmp, "db.sqlite"), store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	enf, err := authz.New(ctx, st, authz.Options{})
	if err != nil {
		return nil, err
	}
	defer enf.Close()
	logs := &logCapture{}
	var mu sync.Mutex
	b := bus.NewLocal()
	emitted := b.PluginEvents.Subscribe(4096)
	defer emitted.Cancel()
	h, err := plugin.New(ctx, plugin.Config{
		Dir: filepath.Join(tmp, "plugins"), Logger: slog.New(logs),
		OnHostCall: func(c plugin.HostCall) {
			mu.Lock()
			defer mu.Unlock()
			rep.HostCalls = append(rep.HostCalls, c)
			if c.Result == "denied" {
				rep.Denials = append(rep.Denials, c)
			}
		},
	}, st, enf, safehttp.New(safehttp.Options{}), b, prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	defer h.Close(ctx)
	inst, err := h.Install(ctx, manifest, code)
	if err != nil {
		return nil, err
	}
	m := inst.Manifest
	rep.Plugin, rep.Version, rep.Runtime = m.ID, m.Version, m.Runtime

	var reqs []plugin.GrantRequest
	if len(o.grants) == 0 {
		for _, p := range m.Permissions {
			reqs = append(reqs, plugin.GrantRequest{Name: p.Name})
		}
	} else {
		for _, g := range o.grants {
			for _, name := range strings.Split(g, ",") {
				if name = strings.TrimSpace(name); name != "" && name != "none" {
					reqs = append(reqs, plugin.GrantRequest{Name: name})
				}
			}
		}
	}
	if len(reqs) > 0 {
		if err := h.Grant(ctx, m.ID, o.guild, reqs, "plugin-test"); err != nil {
			return nil, err
		}
	}
	for _, r := range reqs {
		rep.Granted = append(rep.Granted, r.Name)
	}
	if err := h.SetEnabled(ctx, m.ID, o.guild, true, plugin.TrustProcess(true)); err != nil {
		return nil, err
	}
	if o.config != "" {
		cfg := []byte(o.config)
		if !strings.HasPrefix(strings.TrimSpace(o.config), "{") {
			if cfg, err = os.ReadFile(o.config); err != nil {
				return nil, fmt.Errorf("plugin test: config: %w", err)
			}
		}
		if err := h.Configure(ctx, m.ID, o.guild, cfg); err != nil {
			return nil, err
		}
		rep.Config = cfg
	}
	if gs, err := h.Status(ctx, m.ID, o.guild); err == nil && gs.State != "running" {
		rep.Failures = append(rep.Failures, fmt.Sprintf("the plugin does not run: %s (missing permissions: %s)", gs.State, strings.Join(gs.Missing, ", ")))
		return rep, nil
	}

	logs.mu.Lock()
	logs.on = true
	logs.mu.Unlock()
	var mine []event.Event
	for _, ev := range evs {
		if ev.GuildID == o.guild {
			mine = append(mine, ev)
		}
	}
	rep.Events = len(mine)
	if len(mine) > 0 {
		n, err := h.Deliver(ctx, m.ID, o.guild, mine)
		rep.Delivered = n
		rep.Calls = append(rep.Calls, hookCall(plugin.HookEvents, err))
	}
	if o.tick {
		rep.Calls = append(rep.Calls, hookCall(plugin.HookTick, h.Tick(ctx, m.ID, o.guild, time.Now())))
	}
	for _, r := range o.requests {
		method, target, ok := strings.Cut(strings.TrimSpace(r), " ")
		if !ok {
			method, target = "GET", r
		}
		p, q, _ := strings.Cut(target, "?")
		query := map[string][]string{}
		for _, kv := range strings.Split(q, "&") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				query[k] = append(query[k], v)
			}
		}
		res, err := h.ServeRoute(ctx, m.ID, o.guild, sdk.Request{Method: strings.ToUpper(method), Path: p, Query: query, Caller: "plugin-test"})
		t := TestHTTP{Request: method + " " + target, Status: res.Status, Body: string(res.Body)}
		if err != nil {
			t.Error = err.Error()
		}
		rep.HTTP = append(rep.HTTP, t)
		rep.Calls = append(rep.Calls, hookCall(plugin.HookHTTP, err))
	}

	for {
		select {
		case ev := <-emitted.C:
			rep.Emitted = append(rep.Emitted, TestEmitted{Type: ev.Type, Data: ev.Data})
			continue
		default:
		}
		break
	}
	for after := ""; ; {
		entries, err := st.KVList(ctx, m.ID, o.guild, "", after, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			rep.KV[e.Key] = string(e.Value)
		}
		if len(entries) < 1000 {
			break
		}
		after = entries[len(entries)-1].Key
	}
	logs.mu.Lock()
	rep.Logs = append(rep.Logs, logs.records...)
	logs.mu.Unlock()
	for _, c := range rep.Calls {
		if c.Error != "" {
			rep.Failures = append(rep.Failures, c.Hook+": "+c.Error)
		}
	}
	if o.expect != "" {
		if err := checkExpectations(rep, o.expect); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func hookCall(hook string, err error) TestCall {
	c := TestCall{Hook: hook}
	if err != nil {
		c.Error = err.Error()
	}
	return c
}

func readEvents(path string, stdin io.Reader) ([]event.Event, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("plugin test: events: %w", err)
		}
		defer f.Close()
		r = f
	}
	var out []event.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var ev event.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("plugin test: events line %d: %w", line, err)
		}
		if ev.At.IsZero() {
			ev.At = time.Now().UTC()
		}
		if ev.ID == "" {
			ev.ID = fmt.Sprintf("test-%d", line)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

func checkExpectations(rep *TestReport, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("plugin test: expect: %w", err)
	}
	var x testExpect
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return fmt.Errorf("plugin test: expect: %w", err)
	}
	fail := func(format string, a ...any) {
		rep.Failures = append(rep.Failures, "expected "+fmt.Sprintf(format, a...))
	}
	for _, typ := range x.Emitted {
		if !slices.ContainsFunc(rep.Emitted, func(e TestEmitted) bool { return e.Type == typ }) {
			fail("an emitted event of type %q", typ)
		}
	}
	for k, v := range x.KV {
		if got, ok := rep.KV[k]; !ok || got != v {
			fail("kv %q = %q, got %q", k, v, got)
		}
	}
	if x.NoDenials && len(rep.Denials) > 0 {
		fail("no denied host calls, got %d (first: %s)", len(rep.Denials), rep.Denials[0].Function)
	}
	for _, fn := range x.Denied {
		if !slices.ContainsFunc(rep.Denials, func(c plugin.HostCall) bool { return c.Function == fn }) {
			fail("a denied call of %s", fn)
		}
	}
	for _, want := range x.HTTP {
		i := slices.IndexFunc(rep.HTTP, func(h TestHTTP) bool { return h.Request == want.Request })
		if i < 0 {
			fail("a request %q (pass it with --http)", want.Request)
			continue
		}
		got := rep.HTTP[i]
		if want.Status != 0 && got.Status != want.Status {
			fail("%s to answer %d, got %d %s", want.Request, want.Status, got.Status, got.Error)
		}
		if !strings.Contains(got.Body, want.BodyContains) {
			fail("%s to answer a body containing %q, got %q", want.Request, want.BodyContains, got.Body)
		}
	}
	for _, msg := range x.LogContains {
		if !slices.ContainsFunc(rep.Logs, func(l map[string]any) bool { return strings.Contains(fmt.Sprint(l["msg"]), msg) }) {
			fail("a log line containing %q", msg)
		}
	}
	return nil
}

func printTestReport(w io.Writer, rep *TestReport) {
	fmt.Fprintf(w, "plugin %s %s (%s) in guild %s\n", rep.Plugin, rep.Version, rep.Runtime, rep.Guild)
	for _, warn := range rep.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	fmt.Fprintf(w, "granted: %s\n", strings.Join(rep.Granted, ", "))
	fmt.Fprintf(w, "events: %d read, %d delivered\n", rep.Events, rep.Delivered)
	fmt.Fprintln(w, "\nhook calls:")
	for _, c := range rep.Calls {
		res := "ok"
		if c.Error != "" {
			res = "FAILED: " + c.Error
		}
		fmt.Fprintf(w, "  %-10s %s\n", c.Hook, res)
	}
	fmt.Fprintf(w, "\nhost calls (%d):\n", len(rep.HostCalls))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range rep.HostCalls {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Hook, c.Function, c.Result, truncateText(string(c.Request), 100))
	}
	tw.Flush()
	fmt.Fprintf(w, "\npermission denials (%d):\n", len(rep.Denials))
	for _, c := range rep.Denials {
		var env struct {
			Error struct{ Message string } `json:"error"`
		}
		json.Unmarshal(c.Response, &env) //nolint:errcheck // printed as is
		fmt.Fprintf(w, "  %s: %s\n", c.Function, env.Error.Message)
	}
	fmt.Fprintf(w, "\nemitted (%d):\n", len(rep.Emitted))
	for _, e := range rep.Emitted {
		fmt.Fprintf(w, "  %s %s\n", e.Type, truncateText(string(e.Data), 200))
	}
	fmt.Fprintf(w, "\nlogs (%d):\n", len(rep.Logs))
	for _, l := range rep.Logs {
		var extra []string
		for k, v := range l {
			if k != "level" && k != "msg" && k != "plugin" && k != "guild" {
				extra = append(extra, fmt.Sprintf("%s=%v", k, v))
			}
		}
		sort.Strings(extra)
		fmt.Fprintf(w, "  %-5v %v %s\n", l["level"], l["msg"], strings.Join(extra, " "))
	}
	fmt.Fprintf(w, "\nkey-value data (%d keys):\n", len(rep.KV))
	keys := make([]string, 0, len(rep.KV))
	for k := range rep.KV {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, truncateText(rep.KV[k], 200))
	}
	for _, r := range rep.HTTP {
		fmt.Fprintf(w, "\n%s -> %d %s\n", r.Request, r.Status, r.Error)
		if r.Body != "" {
			fmt.Fprintln(w, "  "+truncateText(r.Body, 2000))
		}
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintf(w, "\nFAILURES (%d):\n", len(rep.Failures))
		for _, f := range rep.Failures {
			fmt.Fprintln(w, "  "+f)
		}
	} else {
		fmt.Fprintln(w, "\nPASS")
	}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
