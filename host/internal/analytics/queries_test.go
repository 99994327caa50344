package analytics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// fakeStore answers with fixed aggregates.
type fakeStore struct {
	tz       string
	hours    []store.HourValue
	presence []store.PresenceHour
	drift    store.RoleDrift
}

func (f *fakeStore) GetGuild(context.Context, string) (store.Guild, error) {
	return store.Guild{Timezone: f.tz}, nil
}
func (f *fakeStore) HourlySeries(context.Context, string, string, string, time.Time, time.Time, time.Time) ([]store.HourValue, error) {
	return f.hours, nil
}
func (f *fakeStore) PresenceHours(context.Context, string, string, time.Time, time.Time, time.Time) ([]store.PresenceHour, error) {
	return f.presence, nil
}
func (f *fakeStore) RoleDrift(context.Context, string, string, time.Time, time.Time, int, string) (store.RoleDrift, error) {
	return f.drift, nil
}

func TestHeatmapFoldsIntoTheGuildsTimeZone(t *testing.T) {
	// Sunday 2026-03-01 23:00 UTC is Monday 00:00 in Paris (UTC+1) and
	// Monday 04:30 in Kolkata (UTC+5:30, placed at the hour it starts in).
	h := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	f := &fakeStore{tz: "Europe/Paris", hours: []store.HourValue{{Hour: h, Value: 3}, {Hour: h.Add(7 * 24 * time.Hour), Value: 2}}}
	a := New(f, func() time.Time { return h.Add(30 * 24 * time.Hour) })
	cases := []struct {
		tz        string
		day, hour int
	}{{"", 0, 0}, {"Asia/Kolkata", 0, 4}, {"UTC", 6, 23}}
	for _, c := range cases {
		hm, err := a.Heatmap(context.Background(), "g", "", "", time.Time{}, time.Time{}, c.tz)
		if err != nil {
			t.Fatal(err)
		}
		if hm.Cells[c.day][c.hour] != 5 || hm.Max != 5 || hm.Metric != "messages" {
			t.Errorf("tz %q: cell [%d][%d] = %v, max %v; grid %v", c.tz, c.day, c.hour, hm.Cells[c.day][c.hour], hm.Max, hm.Cells)
		}
	}
	// New York moves its clocks on March 8: the same UTC hour lands an
	// hour later in the local week.
	if hm, _ := a.Heatmap(context.Background(), "g", "", "", time.Time{}, time.Time{}, "America/New_York"); hm.Cells[6][18] != 3 || hm.Cells[6][19] != 2 {
		t.Errorf("New York across the DST change: %v", hm.Cells[6])
	}
	if hm, _ := a.Heatmap(context.Background(), "g", "", "", time.Time{}, time.Time{}, ""); hm.Timezone != "Europe/Paris" {
		t.Errorf("default time zone %q", hm.Timezone)
	}
	for _, bad := range []struct{ metric, tz string }{{"likes", ""}, {"", "Mars/Olympus"}} {
		if _, err := a.Heatmap(context.Background(), "g", "", bad.metric, time.Time{}, time.Time{}, bad.tz); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want a bad request", bad, err)
		}
	}
	if _, err := a.Heatmap(context.Background(), "g", "", "", h, h.Add(-time.Hour), ""); !errors.Is(err, ErrBadRequest) {
		t.Errorf("from after to: %v", err)
	}
}

func TestPresenceDaysAndRoleDrift(t *testing.T) {
	// 22:00 and 23:00 UTC on March 1 are March 1 and March 2 in Paris.
	d := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	f := &fakeStore{tz: "Europe/Paris", presence: []store.PresenceHour{
		{Hour: d, OnlineMS: 3600000, MultiMS: 600000, DesktopMS: 3600000, MobileMS: 600000},
		{Hour: d.Add(time.Hour), OnlineMS: 1800000, WebMS: 1800000},
	}, drift: store.RoleDrift{Gained: []store.RoleCount{{RoleID: "r1", Count: 3}}, MembersChanged: 2, Members: 8,
		Timeline: []store.RoleChange{{At: d, UserID: "u", RoleID: "r1", Added: true}}}}
	a := New(f, func() time.Time { return d.Add(48 * time.Hour) })
	p, err := a.Presence(context.Background(), "g", "u", d.Add(-time.Hour), d.Add(26*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Days) != 3 || p.Days[0].Date != "2026-03-01" || p.Days[0].OnlineSeconds != 3600 || p.Days[0].MultiClientSeconds != 600 ||
		p.Days[1].Date != "2026-03-02" || p.Days[1].ByClient["web"] != 1800 || p.Days[2].OnlineSeconds != 0 {
		t.Fatalf("days %+v", p.Days)
	}
	r, err := a.RoleDrift(context.Background(), "g", "", time.Time{}, time.Time{}, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.ChurnRate != 0.25 || len(r.Gained) != 1 || r.Gained[0].Name != "r1" || len(r.Lost) != 0 || r.Timeline[0].Change != "gained" {
		t.Fatalf("drift %+v", r)
	}
}
