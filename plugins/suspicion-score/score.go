package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// signal is one factor of the score: a name, a default weight, a strength
// from 0 to 1 computed from the statistics, and how the explanation names
// it with its value.
type signal struct {
	name     string
	weight   float64
	strength func(m *plugin.MemberStats) (s float64, value any)
	phrase   func(value any) string
}

// num formats v with places decimals, as %.Nf does (fmt is slow inside
// WebAssembly, and phrases are built for every member).
func num(v float64, places int) string { return strconv.FormatFloat(v, 'f', places, 64) }

func clamp01(v float64) float64 { return max(0, min(1, v)) }

var pow10 = [...]float64{1, 10, 100, 1000}

func round(v float64, places int) float64 {
	p := pow10[places]
	return math.Round(v*p) / p
}

// oddHours are the local hours (0–23) counted as odd: 01:00 to 05:59.
var oddHours = []int{1, 2, 3, 4, 5}

// signals are the seven factors, in the order of README.md.
var signals = [...]signal{
	{"multi_client", 15, func(m *plugin.MemberStats) (float64, any) {
		if m.OnlineSeconds < 3600 {
			return 0, 0.0
		}
		r := float64(m.MultiClientSeconds) / float64(m.OnlineSeconds)
		return clamp01(r / 0.5), round(r, 2)
	}, func(v any) string { return num(v.(float64)*100, 0) + "% of online time on several clients" }},
	{"account_age", 15, func(m *plugin.MemberStats) (float64, any) {
		return clamp01((90 - m.AccountAgeDays) / 83), round(m.AccountAgeDays, 1)
	}, func(v any) string { return "account " + num(v.(float64), 0) + " days old" }},
	{"join_to_first_message", 10, func(m *plugin.MemberStats) (float64, any) {
		if m.FirstMessageAfterJoinSeconds == nil {
			return 0, nil
		}
		t := max(1, float64(*m.FirstMessageAfterJoinSeconds))
		return clamp01(1 - math.Log10(t/60)/math.Log10(60)), *m.FirstMessageAfterJoinSeconds
	}, func(v any) string { return "first message " + duration(v.(int64)) + " after joining" }},
	{"timing_regularity", 20, func(m *plugin.MemberStats) (float64, any) {
		if m.MessageIntervalCV == nil {
			return 0, nil
		}
		return clamp01((0.5 - *m.MessageIntervalCV) / 0.4), *m.MessageIntervalCV
	}, func(v any) string {
		return "clockwork message timing (interval variation " + num(v.(float64), 2) + ")"
	}},
	{"odd_hours", 10, func(m *plugin.MemberStats) (float64, any) {
		var odd, all int64
		for h, n := range m.ActiveHours {
			all += n
			for _, o := range oddHours {
				if h == o {
					odd += n
				}
			}
		}
		if all < 5 {
			return 0, 0.0
		}
		share := float64(odd) / float64(all)
		return clamp01((share - 0.05) / 0.2), round(share, 2)
	}, func(v any) string { return num(v.(float64)*100, 0) + "% of messages between 01:00 and 06:00" }},
	{"role_churn", 15, func(m *plugin.MemberStats) (float64, any) {
		return clamp01(float64(m.RoleChanges) / 10), m.RoleChanges
	}, func(v any) string {
		if v.(int64) == 1 {
			return "1 role change"
		}
		return strconv.FormatInt(v.(int64), 10) + " role changes"
	}},
	{"bursts", 15, func(m *plugin.MemberStats) (float64, any) {
		return clamp01(float64(m.MaxMessagesPerMinute-2) / 4), m.MaxMessagesPerMinute
	}, func(v any) string { return "bursts of " + strconv.FormatInt(v.(int64), 10) + " messages a minute" }},
}

// weights is each signal's weight, in the order of signals.
type weights [len(signals)]float64

// weightsFrom reads the weights: the guild's configuration
// ("weight_<signal>", 0–100) or the default.
func weightsFrom(config func(key string, def float64) float64) *weights {
	var w weights
	for i, s := range signals {
		w[i] = max(0, config("weight_"+s.name, s.weight))
	}
	return &w
}

func duration(sec int64) string {
	switch {
	case sec < 120:
		return strconv.FormatInt(sec, 10) + " s"
	case sec < 7200:
		return strconv.FormatInt(sec/60, 10) + " min"
	case sec < 2*86400:
		return strconv.FormatInt(sec/3600, 10) + " h"
	}
	return strconv.FormatInt(sec/86400, 10) + " days"
}

// topFactors is how many factors the explanation names.
const topFactors = 3

// suspicion scores one member: 100 × Σ wᵢ·sᵢ / Σ wᵢ. It allocates little
// (inside WebAssembly every allocation is dear): the factors, their boxed
// values, and the explanation.
func suspicion(m *plugin.MemberStats, ws *weights) plugin.Score {
	total := 0.0
	for _, w := range ws {
		total += w
	}
	factors := make([]plugin.Factor, len(signals))
	score := 0.0
	for i, s := range signals {
		st, v := s.strength(m)
		c := 0.0
		if total > 0 {
			c = round(100*ws[i]*st/total, 1)
		}
		score += c
		factors[i] = plugin.Factor{Name: s.name, Contribution: c, Value: v}
	}
	score = round(min(100, score), 1)
	// The top factors by contribution, ties in signal order (a stable
	// insertion sort of indices).
	var order [len(signals)]int
	for i := range order {
		order[i] = i
		for j := i; j > 0 && factors[order[j]].Contribution > factors[order[j-1]].Contribution; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	why := make([]byte, 0, 128)
	named := 0
	for _, i := range order {
		if factors[i].Contribution <= 0 || named == topFactors {
			break
		}
		phrase := signals[i].phrase(factors[i].Value)
		if named == 0 {
			why = append(why, strings.ToUpper(phrase[:1])...)
			why = append(why, phrase[1:]...)
		} else {
			why = append(why, "; "...)
			why = append(why, phrase...)
		}
		named++
	}
	if named == 0 {
		return plugin.Score{UserID: m.UserID, Score: score, Factors: factors, Explanation: "Nothing unusual"}
	}
	return plugin.Score{UserID: m.UserID, Score: score, Factors: factors, Explanation: string(why)}
}
