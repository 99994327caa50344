package process

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hcLogger passes go-plugin's log lines, and the plugin's own (go-plugin
// parses its stderr), into the host's slog logger.
type hcLogger struct {
	l    *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLogger(l *slog.Logger, name string) *hcLogger { return &hcLogger{l: l, name: name} }

func slogLevel(lv hclog.Level) slog.Level {
	switch lv {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *hcLogger) Log(lv hclog.Level, msg string, args ...any) {
	if lv == hclog.Off || lv == hclog.NoLevel && msg == "" {
		return
	}
	all := append(append([]any{"source", h.name}, h.args...), args...)
	h.l.Log(context.Background(), slogLevel(lv), msg, all...)
}
func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hcLogger) enabled(lv slog.Level) bool {
	return h.l.Enabled(context.Background(), lv)
}
func (h *hcLogger) IsTrace() bool        { return h.enabled(slog.LevelDebug) }
func (h *hcLogger) IsDebug() bool        { return h.enabled(slog.LevelDebug) }
func (h *hcLogger) IsInfo() bool         { return h.enabled(slog.LevelInfo) }
func (h *hcLogger) IsWarn() bool         { return h.enabled(slog.LevelWarn) }
func (h *hcLogger) IsError() bool        { return h.enabled(slog.LevelError) }
func (h *hcLogger) ImpliedArgs() []any   { return h.args }
func (h *hcLogger) Name() string         { return h.name }
func (h *hcLogger) SetLevel(hclog.Level) {}
func (h *hcLogger) GetLevel() hclog.Level {
	switch {
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	}
	return hclog.Error
}
func (h *hcLogger) With(args ...any) hclog.Logger {
	return &hcLogger{l: h.l, name: h.name, args: append(append([]any(nil), h.args...), args...)}
}
func (h *hcLogger) Named(name string) hclog.Logger {
	return &hcLogger{l: h.l, name: h.name + "." + name, args: h.args}
}
func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	return &hcLogger{l: h.l, name: name, args: h.args}
}
func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}
func (h *hcLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) { h.Info(string(p)); return len(p), nil })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
