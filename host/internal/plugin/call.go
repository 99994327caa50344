package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/plugin/process"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// ErrNotRunnable is returned when a plugin does not run in a guild: it is not
// installed, not enabled, quarantined, or waiting for a grant.
var ErrNotRunnable = errors.New("plugin: not running in this guild")

// callScope is what host functions know about the call they serve.
type callScope struct {
	h      *Host
	snap   *snapshot
	l      *loaded
	guild  string
	hook   string
	denied int // host calls refused during this call
}

type scopeKey struct{}

func scopeFrom(ctx context.Context) *callScope {
	s, _ := ctx.Value(scopeKey{}).(*callScope)
	return s
}

// call runs hook of a plugin in a guild with input and returns its output.
// Every failure is counted; enough consecutive failures quarantine the
// plugin in that guild.
func (h *Host) call(ctx context.Context, pluginID, guildID, hook string, input []byte) ([]byte, error) {
	snap := h.snap.Load()
	l := snap.plugins[pluginID]
	st := snap.state(pluginID, guildID)
	if l == nil || l.m == nil || st == nil || !st.runnable {
		return nil, ErrNotRunnable
	}
	if !l.m.Has(hook) {
		return nil, fmt.Errorf("plugin: %s does not implement %s", pluginID, hook)
	}
	key := poolKey{plugin: pluginID, version: l.m.Version, guild: guildID, config: st.pg.ConfigVersion, grants: st.grantList}
	start := h.cfg.Now()
	x, err := h.pool.acquire(ctx, key, l.m.Limits.Instances, func() (instance, error) {
		return l.mod.instantiate(ctx, instanceOptions{
			config: instanceConfig(pluginID, guildID, string(st.pg.Config), st.grantList),
			log:    h.pluginLogger(l.m, guildID), output: &wasiOutput{h: h, m: l.m, guild: guildID},
			onCrash: func(err error) {
				h.failed(context.WithoutCancel(ctx), pluginID, guildID, "process", "crash", err)
			},
		})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		h.failed(ctx, pluginID, guildID, hook, "error", err)
		return nil, err
	}
	scope := &callScope{h: h, snap: snap, l: l, guild: guildID, hook: hook}
	out, err := x.inst.Call(context.WithValue(ctx, scopeKey{}, scope), hook, input)
	h.pool.release(x, reusable(x.inst, err))
	h.m.callSeconds.WithLabelValues(pluginID, hook).Observe(h.cfg.Now().Sub(start).Seconds())
	if err == nil && len(out) > l.m.Limits.MaxOutputKB<<10 {
		err = fmt.Errorf("plugin: output of %d bytes exceeds the plugin's limit of %d KiB", len(out), l.m.Limits.MaxOutputKB)
	}
	if err != nil {
		h.failed(ctx, pluginID, guildID, hook, resultOf(err), err)
		return nil, err
	}
	h.m.calls.WithLabelValues(pluginID, hook, "ok").Inc()
	h.resetFailures(pluginID, guildID)
	return out, nil
}

func resultOf(err error) string {
	var crash *process.CrashError
	switch {
	case isGuestError(err):
		return "error"
	case errors.As(err, &crash) && !strings.Contains(err.Error(), "timed out"):
		return "crash"
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(err.Error(), "timed out"):
		return "timeout"
	}
	return "trap"
}

// instanceConfig is the Extism config of an instance: who it is, where it
// runs, the guild's configuration and the permissions granted there (comma
// separated, sorted).
func instanceConfig(pluginID, guildID, config, grants string) map[string]string {
	return map[string]string{
		sdk.ConfigGuildID:  guildID,
		sdk.ConfigPluginID: pluginID,
		sdk.ConfigJSON:     config,
		sdk.ConfigGrants:   grants,
	}
}

// failed records a failed call and quarantines the plugin in the guild after
// QuarantineAfter consecutive failures.
func (h *Host) failed(ctx context.Context, pluginID, guildID, hook, result string, err error) {
	h.m.calls.WithLabelValues(pluginID, hook, result).Inc()
	k := [2]string{pluginID, guildID}
	h.failMu.Lock()
	h.failures[k]++
	n := h.failures[k]
	h.failMu.Unlock()
	msg := fmt.Sprintf("%s: %v", hook, err)
	h.log.Warn("plugin call failed", "plugin", pluginID, "guild", guildID, "hook", hook, "result", result,
		"consecutive_failures", n, "err", err)
	bg := context.WithoutCancel(ctx)
	if err := h.st.RecordPluginError(bg, pluginID, guildID, msg); err != nil {
		h.log.Error("record plugin error", "err", err)
	}
	if n < h.cfg.QuarantineAfter {
		return
	}
	reason := fmt.Sprintf("%d consecutive failures; last: %s", n, msg)
	if err := h.st.QuarantinePlugin(bg, pluginID, guildID, reason); err != nil {
		h.log.Error("quarantine plugin", "plugin", pluginID, "guild", guildID, "err", err)
		return
	}
	h.m.quarantines.WithLabelValues(pluginID).Inc()
	h.log.Error("plugin quarantined in guild; an admin must enable it again", "plugin", pluginID, "guild", guildID, "reason", reason)
	h.resetFailures(pluginID, guildID)
	if err := h.rebuild(bg); err != nil {
		h.log.Error("plugin state", "err", err)
	}
}

func (h *Host) resetFailures(pluginID, guildID string) {
	h.failMu.Lock()
	delete(h.failures, [2]string{pluginID, guildID})
	h.failMu.Unlock()
}

func (h *Host) quarantinedCount() int {
	n := 0
	for _, st := range h.snap.Load().states {
		if st.pg.QuarantinedAt != nil {
			n++
		}
	}
	return n
}

// pluginLogger is the logger an instance's Extism log calls write to:
// tagged with plugin and guild, rate limited.
func (h *Host) pluginLogger(m *Manifest, guildID string) *slog.Logger {
	return slog.New(&limitedHandler{next: h.log.Handler(), allow: h.logLimiter(m, guildID), dropped: func() {
		h.m.logsDropped.WithLabelValues(m.ID).Inc()
	}}).With("plugin", m.ID, "guild", guildID)
}

func (h *Host) logLimiter(m *Manifest, guildID string) *rateLimiter {
	k := [2]string{m.ID, guildID}
	if v, ok := h.logLimits.Load(k); ok {
		return v.(*rateLimiter)
	}
	v, _ := h.logLimits.LoadOrStore(k, newRateLimiter(float64(m.Limits.LogsPerMinute)/60, m.Limits.LogsPerMinute/10+1, h.cfg.Now))
	return v.(*rateLimiter)
}

// limitedHandler drops records beyond the rate limit.
type limitedHandler struct {
	next    slog.Handler
	allow   *rateLimiter
	dropped func()
}

func (l *limitedHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return l.next.Enabled(ctx, lv)
}
func (l *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	if !l.allow.allow() {
		l.dropped()
		return nil
	}
	return l.next.Handle(ctx, r)
}
func (l *limitedHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &limitedHandler{next: l.next.WithAttrs(a), allow: l.allow, dropped: l.dropped}
}
func (l *limitedHandler) WithGroup(n string) slog.Handler {
	return &limitedHandler{next: l.next.WithGroup(n), allow: l.allow, dropped: l.dropped}
}

// wasiOutput sends what a guest writes to stdout or stderr to the log, one
// record per write, through the same rate limit.
type wasiOutput struct {
	h     *Host
	m     *Manifest
	guild string
}

var _ io.Writer = (*wasiOutput)(nil)

func (w *wasiOutput) Write(p []byte) (int, error) {
	msg := string(p)
	if len(msg) > 2000 {
		msg = msg[:2000] + "… (" + strconv.Itoa(len(p)) + " bytes)"
	}
	w.h.pluginLogger(w.m, w.guild).Info("plugin output", "text", msg)
	return len(p), nil
}

// rateLimiter is a token bucket.
type rateLimiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

func (r *rateLimiter) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.now()
	r.tokens = min(r.burst, r.tokens+t.Sub(r.last).Seconds()*r.rate)
	r.last = t
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}
