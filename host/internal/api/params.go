package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// params reads query parameters, collecting every problem so that one
// response names them all.
type params struct {
	r    *http.Request
	errs []event.FieldError
}

func query(r *http.Request) *params { return &params{r: r} }

func (p *params) fail(name, format string, args ...any) {
	p.errs = append(p.errs, event.FieldError{Field: name, Message: fmt.Sprintf(format, args...)})
}

// err returns a 400 naming every bad parameter, or nil.
func (p *params) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	msgs := make([]string, len(p.errs))
	for i, f := range p.errs {
		msgs[i] = f.Field + ": " + f.Message
	}
	return badRequest("invalid query parameters: "+strings.Join(msgs, "; "), p.errs...)
}

func (p *params) str(name string, max int) string {
	v := p.r.URL.Query().Get(name)
	if len(v) > max {
		p.fail(name, "longer than %d characters", max)
		return ""
	}
	return v
}

func (p *params) snowflake(name string) string {
	v := p.r.URL.Query().Get(name)
	if v != "" && !event.IsSnowflake(v) {
		p.fail(name, "must be a Discord ID")
		return ""
	}
	return v
}

func (p *params) oneOf(name, def string, allowed ...string) string {
	v := p.r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "must be one of %s", strings.Join(allowed, ", "))
	return def
}

func (p *params) boolean(name string) bool {
	v := p.r.URL.Query().Get(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "must be true or false")
	}
	return b
}

func (p *params) limit(def, max int) int {
	v := p.r.URL.Query().Get("limit")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		p.fail("limit", "must be an integer between 1 and %d", max)
		return def
	}
	return n
}

// time reads an RFC 3339 time or a unix time in seconds.
func (p *params) time(name string) time.Time {
	v := p.r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && n < 1e11 {
		return time.Unix(n, 0).UTC()
	}
	p.fail(name, "must be an RFC 3339 time (2026-01-02T15:04:05Z) or unix seconds")
	return time.Time{}
}

// window reads a length like 90m, 24h, 7d or 2w.
func (p *params) window(name string, def, max time.Duration) time.Duration {
	v := p.r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	d, err := parseWindow(v)
	if err != nil || d <= 0 || d > max {
		p.fail(name, "must be a length such as 90m, 24h, 7d or 2w, at most %s", formatWindow(max))
		return def
	}
	return d
}

func parseWindow(v string) (time.Duration, error) {
	if n := len(v); n > 1 && (v[n-1] == 'd' || v[n-1] == 'w') {
		k, err := strconv.Atoi(v[:n-1])
		if err != nil {
			return 0, err
		}
		unit := 24 * time.Hour
		if v[n-1] == 'w' {
			unit *= 7
		}
		return time.Duration(k) * unit, nil
	}
	return time.ParseDuration(v)
}

func formatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// span reads from/to, or a window ending now, and checks the span.
func (p *params) span(now time.Time, def, max time.Duration) (from, to time.Time) {
	from, to = p.time("from"), p.time("to")
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-p.window("window", def, max))
	}
	if !from.Before(to) {
		p.fail("from", "must be before to")
	} else if to.Sub(from) > max {
		p.fail("from", "span longer than %s", formatWindow(max))
	}
	return from, to
}

// guildParam reads the {guild} path parameter.
func guildParam(r *http.Request) (string, error) {
	return idParam(r, "guild")
}

func idParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if !event.IsSnowflake(v) {
		return "", badRequest(fmt.Sprintf("%s in the path must be a Discord ID, got %q", name, truncate(v, 40)),
			event.FieldError{Field: name, Message: "must be a Discord ID"})
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

type guildChecker interface {
	GuildExists(ctx context.Context, id string) (bool, error)
}

// requireGuild answers 404 for a guild the host does not know.
func requireGuild(ctx context.Context, s guildChecker, id string) error {
	ok, err := s.GuildExists(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("guild " + id + " not found")
	}
	return nil
}

// storeErr maps store errors onto API errors.
func storeErr(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound(what + " not found")
	case errors.Is(err, store.ErrBadCursor):
		return badRequest("invalid cursor: pass back next_cursor from the previous page of the same query",
			event.FieldError{Field: "cursor", Message: "invalid or made for another query"})
	}
	return err
}
