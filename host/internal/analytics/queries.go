package analytics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// Heatmap metrics.
var HeatmapMetrics = []string{store.MetricMessages, store.MetricPresence, store.MetricTyping}

// Heatmap is activity by local weekday (Monday first) and hour.
type Heatmap struct {
	Timezone string         `json:"timezone"`
	From     time.Time      `json:"from"`
	To       time.Time      `json:"to"`
	Metric   string         `json:"metric"`
	UserID   string         `json:"user_id,omitempty"`
	Cells    [7][24]float64 `json:"cells"`
	Max      float64        `json:"max"`
}

// Heatmap sums a metric of a guild (userID "") or one member into a 7×24
// grid in the guild's time zone (or tz). messages and typing count events;
// presence is hours online (for a guild, member-hours).
func (a *Analytics) Heatmap(ctx context.Context, guildID, userID, metric string, from, to time.Time, tz string) (Heatmap, error) {
	if metric == "" {
		metric = store.MetricMessages
	}
	if !slices.Contains(HeatmapMetrics, metric) {
		return Heatmap{}, fmt.Errorf("%w: metric must be one of %v", ErrBadRequest, HeatmapMetrics)
	}
	w, err := a.window(ctx, guildID, from, to, tz, 28*24*time.Hour)
	if err != nil {
		return Heatmap{}, err
	}
	hours, err := a.st.HourlySeries(ctx, guildID, userID, metric, w.From, w.To, a.now())
	if err != nil {
		return Heatmap{}, err
	}
	h := Heatmap{Timezone: w.Loc.String(), From: w.From, To: w.To, Metric: metric, UserID: userID}
	for _, v := range hours {
		d, hr := weekdayHour(v.Hour, w.Loc)
		h.Cells[d][hr] += v.Value
	}
	for d := range h.Cells {
		for hr := range h.Cells[d] {
			if metric == store.MetricPresence {
				h.Cells[d][hr] = math.Round(h.Cells[d][hr]*100) / 100
			}
			h.Max = max(h.Max, h.Cells[d][hr])
		}
	}
	return h, nil
}

// PresenceDay is time online on one local day.
type PresenceDay struct {
	Date               string           `json:"date"`
	OnlineSeconds      int64            `json:"online_seconds"`
	MultiClientSeconds int64            `json:"multi_client_seconds"`
	ByClient           map[string]int64 `json:"by_client"`
}

// Presence is time online per day.
type Presence struct {
	Timezone string        `json:"timezone"`
	From     time.Time     `json:"from"`
	To       time.Time     `json:"to"`
	UserID   string        `json:"user_id,omitempty"`
	Days     []PresenceDay `json:"days"`
}

// Presence returns time online per local day for a member, or for the
// guild (userID "": the sum over members), every day of the window listed.
func (a *Analytics) Presence(ctx context.Context, guildID, userID string, from, to time.Time, tz string) (Presence, error) {
	w, err := a.window(ctx, guildID, from, to, tz, 14*24*time.Hour)
	if err != nil {
		return Presence{}, err
	}
	hours, err := a.st.PresenceHours(ctx, guildID, userID, w.From, w.To, a.now())
	if err != nil {
		return Presence{}, err
	}
	p := Presence{Timezone: w.Loc.String(), From: w.From, To: w.To, UserID: userID, Days: []PresenceDay{}}
	index := map[string]int{}
	day := func(t time.Time) *PresenceDay {
		key := t.In(w.Loc).Format(time.DateOnly)
		i, ok := index[key]
		if !ok {
			i = len(p.Days)
			index[key] = i
			p.Days = append(p.Days, PresenceDay{Date: key, ByClient: map[string]int64{"desktop": 0, "mobile": 0, "web": 0}})
		}
		return &p.Days[i]
	}
	lf := w.From.In(w.Loc)
	// Every local day the window touches, from its first midnight on.
	for d := time.Date(lf.Year(), lf.Month(), lf.Day(), 0, 0, 0, 0, w.Loc); d.Before(w.To); {
		day(d.Add(12 * time.Hour))
		d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, w.Loc)
	}
	for _, h := range hours {
		d := day(h.Hour)
		d.OnlineSeconds += h.OnlineMS / 1000
		d.MultiClientSeconds += h.MultiMS / 1000
		d.ByClient["desktop"] += h.DesktopMS / 1000
		d.ByClient["mobile"] += h.MobileMS / 1000
		d.ByClient["web"] += h.WebMS / 1000
	}
	slices.SortFunc(p.Days, func(x, y PresenceDay) int {
		if x.Date < y.Date {
			return -1
		}
		if x.Date > y.Date {
			return 1
		}
		return 0
	})
	return p, nil
}

// RoleCount is how often a role was gained or lost in a window.
type RoleCount struct {
	RoleID string `json:"role_id"`
	Name   string `json:"name"`
	Count  int64  `json:"count"`
}

// RoleEvent is one step of a role timeline.
type RoleEvent struct {
	At     time.Time `json:"at"`
	UserID string    `json:"user_id"`
	RoleID string    `json:"role_id"`
	Change string    `json:"change"` // gained | lost
}

// RoleDrift is what happened to roles in a window.
type RoleDrift struct {
	From           time.Time   `json:"from"`
	To             time.Time   `json:"to"`
	UserID         string      `json:"user_id,omitempty"`
	Gained         []RoleCount `json:"gained"`
	Lost           []RoleCount `json:"lost"`
	ChurnRate      float64     `json:"churn_rate"`
	MembersChanged int64       `json:"members_changed"`
	Timeline       []RoleEvent `json:"timeline"`
	NextCursor     string      `json:"next_cursor,omitempty"`
}

// RoleDrift summarises the roles gained and lost in a window by a guild's
// members (or one member): counts per role, how many members changed, the
// churn rate — the share of the guild's present members whose roles
// changed in the window (for one member: 1 or 0) — and a page of the
// timeline, newest first. Role names are not part of the events the host
// receives, so name is the role ID.
func (a *Analytics) RoleDrift(ctx context.Context, guildID, userID string, from, to time.Time, limit int, cursor string) (RoleDrift, error) {
	w, err := a.window(ctx, guildID, from, to, "UTC", 30*24*time.Hour)
	if err != nil {
		return RoleDrift{}, err
	}
	d, err := a.st.RoleDrift(ctx, guildID, userID, w.From, w.To, limit, cursor)
	if err != nil {
		return RoleDrift{}, err
	}
	out := RoleDrift{From: w.From, To: w.To, UserID: userID, MembersChanged: d.MembersChanged, NextCursor: d.Next,
		Gained: roleCounts(d.Gained), Lost: roleCounts(d.Lost), Timeline: make([]RoleEvent, 0, len(d.Timeline))}
	if d.Members > 0 {
		out.ChurnRate = math.Round(float64(d.MembersChanged)/float64(d.Members)*10000) / 10000
	}
	for _, c := range d.Timeline {
		ch := "lost"
		if c.Added {
			ch = "gained"
		}
		out.Timeline = append(out.Timeline, RoleEvent{At: c.At, UserID: c.UserID, RoleID: c.RoleID, Change: ch})
	}
	return out, nil
}

func roleCounts(in []store.RoleCount) []RoleCount {
	out := make([]RoleCount, 0, len(in))
	for _, c := range in {
		out = append(out, RoleCount{RoleID: c.RoleID, Name: c.RoleID, Count: c.Count})
	}
	return out
}
