package main

import (
	"math"
	"strconv"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// The formula's constants (README.md, "Formula").
const (
	// halfScoreHours is the online hours since the last message at which
	// the saturation s reaches one half.
	halfScoreHours = 3.0
	// postedWeight and neverWeight split the 100 points: a member who once
	// posted can reach 90, one who never did 100.
	postedWeight = 90.0
	neverWeight  = 10.0
)

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// lurker scores one member by the hours they were online since their last
// message, estimated from the window's online time.
func lurker(req *plugin.ScoreRequest, m *plugin.MemberStats) plugin.Score {
	hours := float64(m.OnlineSeconds) / 3600
	window := req.To.Sub(req.From).Hours()
	never := m.MessagesTotal == 0 && m.SecondsSinceLastMessage == nil
	since := hours
	if !never {
		share := 1.0
		if m.SecondsSinceLastMessage != nil && window > 0 {
			share = min(1, float64(*m.SecondsSinceLastMessage)/3600/window)
		}
		since = hours * share
	}
	s := since / (since + halfScoreHours)
	online := round1(postedWeight * s)
	bonus := 0.0
	if never {
		bonus = round1(neverWeight * s)
	}
	score := round1(online + bonus)
	// Built with strconv: fmt is slow inside WebAssembly.
	var why string
	if never {
		why = "Never posted; online " + num(since, 1) + " h in the last " + num(window/24, 0) + " days"
	} else {
		var ago int64
		if m.SecondsSinceLastMessage != nil {
			ago = *m.SecondsSinceLastMessage
		}
		why = "Last message " + span(float64(ago)) + " ago; about " + span(since*3600) + " online since"
	}
	return plugin.Score{UserID: m.UserID, Score: score,
		Factors: []plugin.Factor{
			{Name: "online_since_last_message", Contribution: online, Value: round1(since)},
			{Name: "never_posted", Contribution: bonus, Value: never},
		},
		Explanation: why}
}

// span writes a length of time: minutes under an hour, hours under two
// days, else days.
func span(sec float64) string {
	switch {
	case sec < 3600:
		return num(sec/60, 0) + " min"
	case sec < 2*86400:
		return num(sec/3600, 1) + " h"
	}
	return num(sec/86400, 1) + " days"
}

// num formats v with places decimals, as %.Nf does.
func num(v float64, places int) string { return strconv.FormatFloat(v, 'f', places, 64) }
