package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
	"github.com/spywatcher/spywatcher/host/internal/plugin/process"
	"github.com/spywatcher/spywatcher/sdk/go/event"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

const processSDK = "github.com/spywatcher/spywatcher/sdk/go/plugin/process"

// processGuest builds a test guest as a process plugin and returns the
// executable's bytes.
func processGuest(t testing.TB, name string, ldflags ...string) []byte {
	t.Helper()
	path := guesttest.BuildProcess(t, "host/internal/plugin/testdata/guests/"+name, ldflags...)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// asProcess turns a test manifest into a process plugin's.
func asProcess(mutate func(*Manifest)) func(*Manifest) {
	return func(m *Manifest) {
		m.Runtime = RuntimeProcess
		m.Artifact.Path = "plugin"
		if mutate != nil {
			mutate(m)
		}
	}
}

func (f *fixture) installProcess(id, version, guestName string, mutate func(*Manifest)) {
	f.t.Helper()
	code := processGuest(f.t, guestName)
	if _, err := f.h.Install(context.Background(), manifest(f.t, id, version, code, asProcess(mutate)), code); err != nil {
		f.t.Fatal(err)
	}
}

// pids lists the processes the pool holds for a plugin.
func (f *fixture) pids(pluginID string) []int {
	f.h.pool.mu.Lock()
	defer f.h.pool.mu.Unlock()
	var out []int
	for k, s := range f.h.pool.slots {
		if k.plugin != pluginID {
			continue
		}
		for _, x := range s.idle {
			if in, ok := x.inst.(*process.Instance); ok && in.PID() != 0 {
				out = append(out, in.PID())
			}
		}
	}
	return out
}

func alive(pid int) bool {
	// A zombie is dead too: its stat line says Z.
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

// TestSamePluginBothRuntimes runs one plugin source, built to WebAssembly
// and to a process, through the same host test: event delivery in batches,
// configuration, content stripping, host functions with and without
// grants, the score and tick hooks.
func TestSamePluginBothRuntimes(t *testing.T) {
	for _, rt := range []string{RuntimeWasm, RuntimeProcess} {
		t.Run(rt, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			var opts []EnableOption
			if rt == RuntimeProcess {
				f.installProcess("counter", "1.0.0", "good", nil)
				opts = append(opts, TrustProcess(true))
			} else {
				f.install("counter", "1.0.0", "good", nil)
			}
			if err := f.h.SetEnabled(ctx, "counter", guildA, true, opts...); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{PermMessageRead, PermPresenceRead, PermKVRead, PermKVWrite, PermRoutesServe, PermScoresWrite, PermMetricsWrite} {
				if err := f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: p}}, "admin"); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.h.Configure(ctx, "counter", guildA, json.RawMessage(`{"greeting":"salut"}`)); err != nil {
				t.Fatal(err)
			}
			var evs []event.Event
			for i := 0; i < 300; i++ {
				evs = append(evs, messageEvent(guildA), presenceEvent(guildA))
			}
			f.bus.Publish(ctx, evs)
			eventually(t, "600 events delivered", func() bool {
				c := f.counts("counter", guildA)
				return c["message.create"] == 300 && c["presence.update"] == 300
			})
			res, err := f.route("counter", guildA, "/counts")
			if err != nil || !strings.Contains(string(res.Body), `"greeting":"salut"`) || !strings.Contains(string(res.Body), `"guild":"`+guildA) {
				t.Fatalf("config or guild not visible to the plugin: %s %v", res.Body, err)
			}
			res, _ = f.route("counter", guildA, "/last-message")
			if res.Status != 200 || strings.Contains(string(res.Body), "secret") {
				t.Fatalf("content reached a plugin without message.content.read: %d %s", res.Status, res.Body)
			}
			// Host functions without a grant are refused by the same check.
			res, _ = f.route("counter", guildA, "/member?user="+userA)
			if res.Status != 502 || !strings.Contains(string(res.Body), "denied") || !strings.Contains(string(res.Body), PermMembersRead) {
				t.Fatalf("member_get without members.read: %d %s", res.Status, res.Body)
			}
			res, _ = f.route("counter", guildA, "/emit")
			if res.Status != 502 || !strings.Contains(string(res.Body), "denied") {
				t.Fatalf("emit without events.emit: %d %s", res.Status, res.Body)
			}
			// Revocation applies to the next host call.
			f.h.Revoke(ctx, "counter", guildA, []string{PermKVWrite})
			f.h.Grant(ctx, "counter", guildA, []GrantRequest{{Name: PermKVWrite}}, "admin")
			in, _ := json.Marshal(sdk.ScoreRequest{GuildID: guildA, Members: []sdk.MemberStats{{UserID: userA, Messages: 7}}})
			out, err := f.h.call(ctx, "counter", guildA, HookScore, in)
			var sres sdk.ScoreResponse
			if err != nil || json.Unmarshal(out, &sres) != nil || len(sres.Scores) != 1 || sres.Scores[0].Explanation != "7 messages" {
				t.Fatalf("score: %s %v", out, err)
			}
			due := map[[2]string]time.Time{}
			now := time.Now()
			f.h.runTicks(ctx, now, due)
			f.h.runTicks(ctx, now.Add(61*time.Second), due)
			eventually(t, "a tick", func() bool {
				v, _ := f.st.KVGet(ctx, "counter", guildA, "ticks")
				return string(v) == "1"
			})
			// The plugin's log host function reaches the host's log with
			// its plugin and guild.
			if _, err := f.route("counter", guildA, "/log"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the plugin's log line", func() bool {
				return strings.Contains(f.logs.String(), `"msg":"hello from good","plugin":"counter","guild":"`+guildA)
			})
			// What it prints to stdout lands there too.
			if _, err := f.route("counter", guildA, "/print"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the plugin's stdout", func() bool {
				return strings.Contains(f.logs.String(), `"msg":"plugin output","plugin":"counter","guild":"`+guildA+`","text":"printed by good\n"`)
			})
		})
	}
}

func TestProcessLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installProcess("counter", "1.0.0", "good", nil)
	if info, _ := f.h.Get("counter"); info.Runtime != RuntimeProcess {
		t.Fatalf("runtime %q", info.Runtime)
	}
	if err := f.h.GrantAll(ctx, "counter", guildA, "admin"); err != nil {
		t.Fatal(err)
	}
	// Not sandboxed: enabling needs the admin's explicit acknowledgement.
	if err := f.h.SetEnabled(ctx, "counter", guildA, true); !errors.Is(err, ErrTrustRequired) {
		t.Fatalf("enabled a process plugin without trust: %v", err)
	}
	if st, _ := f.h.Status(ctx, "counter", guildA); st.State == "running" {
		t.Fatalf("running without trust: %+v", st)
	}
	if err := f.h.SetEnabled(ctx, "counter", guildA, true, TrustProcess(true)); err != nil {
		t.Fatal(err)
	}
	f.bus.Publish(ctx, []event.Event{messageEvent(guildA), presenceEvent(guildA)})
	eventually(t, "delivery", func() bool { return f.counts("counter", guildA)["message.create"] == 1 })
	pids := f.pids("counter")
	if len(pids) == 0 || !alive(pids[0]) {
		t.Fatalf("no live plugin process: %v", pids)
	}
	// go-plugin's own log lines land in the host's log with the plugin's name.
	if !strings.Contains(f.logs.String(), `"plugin":"counter"`) || !strings.Contains(f.logs.String(), "plugin started") {
		t.Fatalf("go-plugin's log not captured:\n%s", f.logs.String())
	}
	// The plugin's environment is not the host's.
	os.Setenv("SPYWATCHER_TEST_SECRET", "hunter2")
	defer os.Unsetenv("SPYWATCHER_TEST_SECRET")
	env, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pids[0]), "environ"))
	if strings.Contains(string(env), "SPYWATCHER_TEST_SECRET") || !strings.Contains(string(env), "PATH=") {
		t.Fatalf("plugin environment: %q", env)
	}

	// Disabling stops its processes.
	if err := f.h.SetEnabled(ctx, "counter", guildA, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "process stopped after disable", func() bool { return !alive(pids[0]) })
	f.h.SetEnabled(ctx, "counter", guildA, true, TrustProcess(true))

	// A host restart stops the processes and keeps state and data.
	f.counts("counter", guildA)
	pids = f.pids("counter")
	f.stop()
	for _, pid := range pids {
		if alive(pid) {
			t.Fatalf("process %d outlived the host", pid)
		}
	}
	f.start(nil)
	if c := f.counts("counter", guildA); c["message.create"] != 1 {
		t.Fatalf("data after restart: %v", c)
	}
	if err := f.h.Uninstall(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
}

func TestProcessCrashAndRestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installProcess("hostile", "1.0.0", "hostile", func(m *Manifest) {
		m.Hooks = []string{HookHTTP, HookEvents}
		m.Events = []event.Kind{event.KindMessageCreate}
		m.Permissions = []PermissionRequest{{Name: PermRoutesServe, Reason: "r"}, {Name: PermMessageRead, Reason: "r"}}
		m.ConfigSchema = nil
		m.Limits = Limits{TimeoutMS: 1000}
	})
	f.h.GrantAll(ctx, "hostile", guildA, "admin")
	if err := f.h.SetEnabled(ctx, "hostile", guildA, true, TrustProcess(true)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{"/exit", "process"},
		{"/trap", "process"},
		{"/loop", "timed out"},
		{"/panic", "panic"},
	} {
		if _, err := f.route("hostile", guildA, tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%s: %v, want mention of %q", tt.path, err, tt.want)
		}
		// The same instance starts a new process and serves again.
		if res, err := f.route("hostile", guildA, "/ok"); err != nil || string(res.Body) != "fine" {
			t.Fatalf("after %s: %v %s", tt.path, err, res.Body)
		}
	}
	if !strings.Contains(f.logs.String(), "plugin process restarted") {
		t.Fatal("restart not logged")
	}

	// A process that dies between calls is noticed, counted and replaced.
	pids := f.pids("hostile")
	if len(pids) != 1 {
		t.Fatalf("pids %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	eventually(t, "a new process", func() bool {
		p := f.pids("hostile")
		return len(p) == 1 && p[0] != pids[0] && alive(p[0])
	})
	eventually(t, "the idle crash recorded", func() bool {
		pg, _ := f.st.GetPluginGuild(ctx, "hostile", guildA)
		return strings.Contains(pg.LastError, "process: plugin process exited")
	})
	if res, err := f.route("hostile", guildA, "/ok"); err != nil || string(res.Body) != "fine" {
		t.Fatalf("after kill: %v", err)
	}

	// A process that stops answering (here: stopped) fails its health check
	// and is replaced.
	hung := f.pids("hostile")[0]
	syscall.Kill(hung, syscall.SIGSTOP)
	eventually(t, "the hung process replaced", func() bool {
		p := f.pids("hostile")
		return len(p) == 1 && p[0] != hung && alive(p[0])
	})
	eventually(t, "the health check failure recorded", func() bool {
		pg, _ := f.st.GetPluginGuild(ctx, "hostile", guildA)
		return strings.Contains(pg.LastError, "failed its health check")
	})
	if alive(hung) {
		syscall.Kill(hung, syscall.SIGCONT)
		eventually(t, "the hung process killed", func() bool { return !alive(hung) })
	}
	if res, err := f.route("hostile", guildA, "/ok"); err != nil || string(res.Body) != "fine" {
		t.Fatalf("after a hang: %v", err)
	}

	// Repeated deaths between calls quarantine it, and the quarantine stops
	// the process.
	for i := 0; i < 3; i++ {
		var pid int
		eventually(t, "a live process", func() bool {
			p := f.pids("hostile")
			if len(p) == 1 && alive(p[0]) {
				pid = p[0]
				return true
			}
			st, _ := f.h.Status(ctx, "hostile", guildA)
			return st.State == "quarantined"
		})
		if pid != 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			eventually(t, "the death noticed", func() bool { p := f.pids("hostile"); return len(p) == 0 || p[0] != pid })
		}
	}
	eventually(t, "quarantine after three deaths", func() bool {
		st, _ := f.h.Status(ctx, "hostile", guildA)
		return st.State == "quarantined"
	})
	eventually(t, "processes stopped once quarantined", func() bool { return len(f.pids("hostile")) == 0 })
	if err := f.h.SetEnabled(ctx, "hostile", guildA, true, TrustProcess(true)); err != nil {
		t.Fatal(err)
	}

	// Repeated crashes during calls quarantine it too, like any other failure.
	for i := 0; i < 3; i++ {
		f.route("hostile", guildA, "/exit")
	}
	st, _ := f.h.Status(ctx, "hostile", guildA)
	if st.State != "quarantined" {
		t.Fatalf("after 3 crashes: %+v", st)
	}
	eventually(t, "processes stopped once quarantined", func() bool { return len(f.pids("hostile")) == 0 })
}

func TestProcessRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	code := processGuest(t, "good")

	// The manifest's checksum must match the executable.
	bad := manifest(t, "counter", "1.0.0", code, asProcess(func(m *Manifest) { m.Artifact.SHA256 = strings.Repeat("0", 64) }))
	if _, err := f.h.Install(ctx, bad, code); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("checksum mismatch accepted: %v", err)
	}
	// go-plugin's SecureConfig refuses to start an executable whose
	// checksum is not the one given, whatever the file says.
	path := guesttest.BuildProcess(t, "host/internal/plugin/testdata/guests/good")
	mod, err := f.h.procs.Load(path, strings.Repeat("ab", 32), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Instantiate(ctx, process.InstanceOptions{}); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("started with a wrong checksum: %v", err)
	}

	// A plugin speaking another protocol version is refused at install.
	future := processGuest(t, "good", "-X "+processSDK+".protocolVersion=2")
	_, err = f.h.Install(ctx, manifest(t, "future", "1.0.0", future, asProcess(nil)), future)
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("protocol version mismatch accepted: %v", err)
	}

	// An executable changed on disk after install does not run.
	f.installProcess("counter", "1.0.0", "good", nil)
	f.h.GrantAll(ctx, "counter", guildA, "admin")
	if err := f.h.SetEnabled(ctx, "counter", guildA, true, TrustProcess(true)); err != nil {
		t.Fatal(err)
	}
	m, _ := f.h.manifest("counter")
	other := processGuest(t, "hostile")
	if err := os.WriteFile(f.h.artifactPath(m), other, 0o750); err != nil {
		t.Fatal(err)
	}
	f.stop()
	f.start(nil)
	if info, _ := f.h.Get("counter"); !strings.Contains(info.LoadError, "checksum") {
		t.Fatalf("tampered executable loaded: %+v", info.LoadError)
	}
	if _, err := f.route("counter", guildA, "/counts"); err == nil {
		t.Fatal("tampered executable served a route")
	}
}
