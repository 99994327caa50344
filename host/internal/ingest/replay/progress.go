package replay

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// progressInterval is how often the progress line is redrawn.
const progressInterval = 500 * time.Millisecond

// progress draws one overwriting status line:
//
//	replay: 1,234,567 events  45,678/s  62% ETA 0:12
//
// The percentage and ETA come from bytes read against the total size and
// are left out when the size is unknown.
type progress struct {
	w     io.Writer
	total int64
	start time.Time
	last  time.Time
	width int // length of the longest line drawn, to blank its leftovers
	dead  bool
}

func newProgress(w io.Writer, total int64, start time.Time) *progress {
	return &progress{w: w, total: total, start: start, last: start}
}

// tick redraws the line if progressInterval has passed since the last draw.
func (p *progress) tick(st *Stats, now time.Time) {
	if now.Sub(p.last) < progressInterval {
		return
	}
	p.last = now
	p.draw(st, now, "")
}

// finish draws the final line and ends it.
func (p *progress) finish(st *Stats, now time.Time) {
	p.draw(st, now, "\n")
}

func (p *progress) draw(st *Stats, now time.Time, end string) {
	if p.dead {
		return
	}
	s := progressLine(st.Submitted, st.Bytes, p.total, now.Sub(p.start))
	pad := 0
	if len(s) < p.width {
		pad = p.width - len(s)
	} else {
		p.width = len(s)
	}
	if _, err := io.WriteString(p.w, "\r"+s+strings.Repeat(" ", pad)+end); err != nil {
		// Progress is a courtesy: a closed terminal must not stop a replay,
		// but there is no point in writing to it again.
		p.dead = true
	}
}

// progressLine formats the status line without the leading "\r".
func progressLine(events, done, total int64, elapsed time.Duration) string {
	var rate int64
	if elapsed > 0 {
		rate = int64(float64(events) / elapsed.Seconds())
	}
	s := "replay: " + formatCount(events) + " events  " + formatCount(rate) + "/s"
	if total <= 0 {
		return s
	}
	pct := done * 100 / total
	eta := "-:--"
	switch {
	case done >= total:
		pct, eta = 100, formatETA(0)
	case done > 0:
		eta = formatETA(time.Duration(float64(elapsed) * float64(total-done) / float64(done)))
	}
	return s + "  " + strconv.FormatInt(pct, 10) + "% ETA " + eta
}

// formatCount writes n with thousands separators: 1234567 → "1,234,567".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatETA writes d rounded to seconds as m:ss, or h:mm:ss from an hour.
func formatETA(d time.Duration) string {
	secs := int64(d.Round(time.Second) / time.Second)
	h, m, s := secs/3600, secs/60%60, secs%60
	two := func(n int64) string {
		if n < 10 {
			return "0" + strconv.FormatInt(n, 10)
		}
		return strconv.FormatInt(n, 10)
	}
	if h > 0 {
		return strconv.FormatInt(h, 10) + ":" + two(m) + ":" + two(s)
	}
	return strconv.FormatInt(m, 10) + ":" + two(s)
}
