// Package analytics answers the host's core analytics — activity heatmaps,
// presence time per client, role drift — and runs the scorer plugins: it
// builds per-member statistics over a window, hands them to every scorer
// enabled in a guild, and stores and publishes the scores.
//
// Everything here reads the aggregate tables ingest maintains (hourly
// activity and presence, daily message rhythm and channel counts, role
// changes), never the raw event log, so answers cost the same on a guild
// with ten thousand events and one with ten million. Aggregates are kept in
// UTC hours; a guild's time zone is applied when reading, by folding each
// UTC hour into the local weekday and hour it starts in (zones with a
// half-hour offset are thus placed at the local hour the UTC hour begins in).
package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// Store is what the analytics read.
type Store interface {
	GetGuild(ctx context.Context, id string) (store.Guild, error)
	HourlySeries(ctx context.Context, guildID, userID, metric string, from, to, now time.Time) ([]store.HourValue, error)
	PresenceHours(ctx context.Context, guildID, userID string, from, to, now time.Time) ([]store.PresenceHour, error)
	RoleDrift(ctx context.Context, guildID, userID string, from, to time.Time, limit int, after string) (store.RoleDrift, error)
}

// Analytics answers analytics queries.
type Analytics struct {
	st  Store
	now func() time.Time
}

// New returns the analytics over st; now defaults to time.Now.
func New(st Store, now func() time.Time) *Analytics {
	if now == nil {
		now = time.Now
	}
	return &Analytics{st: st, now: now}
}

// ErrBadRequest wraps problems with a query's parameters.
var ErrBadRequest = errors.New("analytics: bad request")

// MaxWindow is the longest window a query may cover.
const MaxWindow = 366 * 24 * time.Hour

// Window is a query's time range and the time zone to read it in.
type Window struct {
	From, To time.Time
	Loc      *time.Location
}

// window resolves a query's range (defaulting to def before now) and time
// zone (tz, else the guild's, else UTC).
func (a *Analytics) window(ctx context.Context, guildID string, from, to time.Time, tz string, def time.Duration) (Window, error) {
	now := a.now()
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-def)
	}
	if !from.Before(to) {
		return Window{}, fmt.Errorf("%w: from must be before to", ErrBadRequest)
	}
	if to.Sub(from) > MaxWindow {
		return Window{}, fmt.Errorf("%w: the window is at most %d days", ErrBadRequest, int(MaxWindow.Hours()/24))
	}
	if tz == "" {
		g, err := a.st.GetGuild(ctx, guildID)
		if err != nil {
			return Window{}, err
		}
		tz = g.Timezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		if tz == "" {
			loc = time.UTC
		} else {
			return Window{}, fmt.Errorf("%w: unknown time zone %q", ErrBadRequest, tz)
		}
	}
	return Window{From: from.UTC(), To: to.UTC(), Loc: loc}, nil
}

// weekdayHour places a UTC hour in the local week: Monday is 0.
func weekdayHour(t time.Time, loc *time.Location) (int, int) {
	l := t.In(loc)
	return (int(l.Weekday()) + 6) % 7, l.Hour()
}
