package simulate

import (
	"math"
	"time"
)

// hourlyActivity is how busy the community is at each local hour, relative
// to the evening peak: quiet from 3 to 6, rising through the day.
var hourlyActivity = [25]float64{
	0.50, 0.34, 0.20, 0.11, 0.07, 0.06, 0.09, 0.16, 0.28, 0.40, 0.50, 0.55,
	0.60, 0.62, 0.62, 0.65, 0.70, 0.78, 0.86, 0.94, 1.00, 1.00, 0.90, 0.70,
	0.50, // = hour 0 of the next day, for interpolation
}

const (
	msHour = int64(time.Hour / time.Millisecond)
	msDay  = 24 * msHour
	msMin  = int64(time.Minute / time.Millisecond)
)

// clock turns unix milliseconds into the community's local time. Asking the
// time package for every sample would dominate the cost, so it caches the
// zone offset and the interval in which it holds.
type clock struct {
	loc        *time.Location
	off        int64 // ms east of UTC
	start, end int64 // the cached offset holds for [start, end)
}

func newClock(loc *time.Location) clock {
	c := clock{loc: loc}
	if loc == time.UTC {
		c.start, c.end = math.MinInt64, math.MaxInt64
	}
	return c
}

func (c *clock) local(t int64) int64 {
	if t < c.start || t >= c.end {
		tm := time.UnixMilli(t).In(c.loc)
		_, off := tm.Zone()
		c.off = int64(off) * 1000
		s, e := tm.ZoneBounds()
		c.start, c.end = math.MinInt64, math.MaxInt64
		if !s.IsZero() {
			c.start = s.UnixMilli()
		}
		if !e.IsZero() {
			c.end = e.UnixMilli()
		}
	}
	return t + c.off
}

// rhythm returns the relative activity in (0, 1] at t: the hourly curve,
// interpolated, with livelier weekend days and Friday/Saturday nights.
func (c *clock) rhythm(t int64) float64 {
	l := c.local(t)
	day := floorDiv(l, msDay)
	inDay := l - day*msDay
	h := int(inDay / msHour)
	frac := float64(inDay-int64(h)*msHour) / float64(msHour)
	r := hourlyActivity[h] + (hourlyActivity[h+1]-hourlyActivity[h])*frac
	switch weekday := (day + 4) % 7; { // 1970-01-01 was a Thursday
	case (weekday == 6 || weekday == 0) && h >= 10 && h < 19:
		r += 0.15
	case (weekday == 6 || weekday == 0) && h < 3:
		r += 0.15
	}
	return math.Min(r, 1)
}

// hour returns the local hour of t, for tests and Truth.
func (c *clock) hour(t int64) int {
	l := c.local(t)
	return int((l - floorDiv(l, msDay)*msDay) / msHour)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
