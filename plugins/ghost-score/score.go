package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// The formula's constants (README.md, "Formula").
const (
	// minOnlineHours: below this a member is not scored (score 0).
	minOnlineHours = 1.0
	// halfScoreRatio is the hours online per message that score 50.
	halfScoreRatio = 4.0
)

// band names the score's range.
func band(score float64) string {
	switch {
	case score >= 75:
		return "ghost"
	case score >= 50:
		return "mostly silent"
	case score >= 25:
		return "quiet"
	}
	return "active"
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// ghost scores one member: online hours per message, smoothed by counting
// one message more than were posted, mapped to 0–100 by r / (r + 4).
func ghost(m *plugin.MemberStats) plugin.Score {
	hours := float64(m.OnlineSeconds) / 3600
	if hours < minOnlineHours {
		return plugin.Score{UserID: m.UserID, Score: 0,
			Factors:     []plugin.Factor{{Name: "online_hours_per_message", Contribution: 0, Value: 0}},
			Explanation: fmt.Sprintf("Online %.1f h, under %.0f h: not scored", hours, minOnlineHours)}
	}
	ratio := hours / float64(m.Messages+1)
	score := round1(100 * ratio / (ratio + halfScoreRatio))
	return plugin.Score{UserID: m.UserID, Score: score,
		Factors:     []plugin.Factor{{Name: "online_hours_per_message", Contribution: score, Value: round1(ratio)}},
		Explanation: explain(hours, m.Messages, ratio, band(score))}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// explain writes "Online {hours:.1f} h for {n} message(s) ({ratio:.1f} h per
// message, smoothed): {band}" with strconv rather than fmt, which is slow
// inside WebAssembly.
func explain(hours float64, n int64, ratio float64, band string) string {
	b := make([]byte, 0, 96)
	b = append(b, "Online "...)
	b = strconv.AppendFloat(b, hours, 'f', 1, 64)
	b = append(b, " h for "...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ' ')
	b = append(b, plural(n, "message", "messages")...)
	b = append(b, " ("...)
	b = strconv.AppendFloat(b, ratio, 'f', 1, 64)
	b = append(b, " h per message, smoothed): "...)
	b = append(b, band...)
	return string(b)
}
