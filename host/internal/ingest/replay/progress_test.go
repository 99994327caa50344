package replay

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// fakeClock is a clock that moves only when the test says so.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestProgressOutput(t *testing.T) {
	// Ten lines of equal length, so each is 10% of the input.
	var in bytes.Buffer
	for i := range 10 {
		fmt.Fprintf(&in, `{"id":"e-%02d","kind":"typing.start","guild_id":"1","user_id":"2","channel_id":"3","at":"2026-03-01T12:00:00Z"}`+"\n", i)
	}
	total := int64(in.Len())
	tests := []struct {
		name     string
		perEvent time.Duration // how far the clock moves while the sink works
		total    int64
		want     []string // the lines drawn, each after a "\r"
	}{
		{
			name: "one second per event", perEvent: time.Second, total: total,
			want: []string{
				"replay: 1 events  1/s  10% ETA 0:09",
				"replay: 2 events  1/s  20% ETA 0:08",
				"replay: 3 events  1/s  30% ETA 0:07",
				"replay: 4 events  1/s  40% ETA 0:06",
				"replay: 5 events  1/s  50% ETA 0:05",
				"replay: 6 events  1/s  60% ETA 0:04",
				"replay: 7 events  1/s  70% ETA 0:03",
				"replay: 8 events  1/s  80% ETA 0:02",
				"replay: 9 events  1/s  90% ETA 0:01",
				"replay: 10 events  1/s  100% ETA 0:00",
				"replay: 10 events  1/s  100% ETA 0:00\n",
			},
		},
		{
			name: "redrawn every 500ms only", perEvent: 100 * time.Millisecond, total: total,
			want: []string{
				"replay: 5 events  10/s  50% ETA 0:01",
				"replay: 10 events  10/s  100% ETA 0:00",
				"replay: 10 events  10/s  100% ETA 0:00\n",
			},
		},
		{
			name: "unknown size", perEvent: 250 * time.Millisecond,
			want: []string{
				"replay: 2 events  4/s",
				"replay: 4 events  4/s",
				"replay: 6 events  4/s",
				"replay: 8 events  4/s",
				"replay: 10 events  4/s",
				"replay: 10 events  4/s\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			sink := func(context.Context, event.Event) error {
				clock.t = clock.t.Add(tt.perEvent)
				return nil
			}
			var out strings.Builder
			st, err := Run(context.Background(), bytes.NewReader(in.Bytes()), ingest.SinkFunc(sink),
				Options{Progress: &out, Total: tt.total, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if st.Duration != 10*tt.perEvent {
				t.Errorf("duration = %v", st.Duration)
			}
			got := strings.Split(out.String(), "\r")
			if got[0] != "" {
				t.Fatalf("output does not start with \\r: %q", out.String())
			}
			if strings.Join(got[1:], "|") != strings.Join(tt.want, "|") {
				t.Fatalf("progress output:\n%q\nwant:\n%q", got[1:], tt.want)
			}
		})
	}
}

func TestProgressBlanksShorterLine(t *testing.T) {
	var out strings.Builder
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := newProgress(&out, 0, start)
	p.tick(&Stats{Submitted: 123456}, start.Add(time.Second))
	p.finish(&Stats{Submitted: 1}, start.Add(100*time.Second))
	want := "\rreplay: 123,456 events  123,456/s" + "\rreplay: 1 events  0/s" + strings.Repeat(" ", 12) + "\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		events, done, total int64
		elapsed             time.Duration
		want                string
	}{
		{0, 0, 0, 0, "replay: 0 events  0/s"},
		{0, 0, 1000, time.Second, "replay: 0 events  0/s  0% ETA -:--"},
		{1234567, 620, 1000, 27 * time.Second, "replay: 1,234,567 events  45,724/s  62% ETA 0:17"},
		{5, 1, 1000, time.Second, "replay: 5 events  5/s  0% ETA 16:39"},
		{5, 1, 10000, time.Second, "replay: 5 events  5/s  0% ETA 2:46:39"},
		{5, 1200, 1000, time.Second, "replay: 5 events  5/s  100% ETA 0:00"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := progressLine(tt.events, tt.done, tt.total, tt.elapsed); got != tt.want {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 45678: "45,678", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
