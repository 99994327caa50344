package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/plugin/plugintest"
)

var update = flag.Bool("update", false, "rewrite testdata/explanations.golden")

func request(ms ...plugin.MemberStats) plugin.ScoreRequest {
	to := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
	return plugin.ScoreRequest{GuildID: "41771983423143937", From: to.Add(-7 * 24 * time.Hour), To: to, Members: ms}
}

func score(t *testing.T, ms ...plugin.MemberStats) []plugin.Score {
	t.Helper()
	res, err := plugintest.New("41771983423143937", nil).Score(request(ms...))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scores) != len(ms) {
		t.Fatalf("%d scores for %d members", len(res.Scores), len(ms))
	}
	return res.Scores
}

func i64(v int64) *int64     { return &v }
func f64(v float64) *float64 { return &v }

// bot is a member with every signal at full strength.
func bot() plugin.MemberStats {
	return plugin.MemberStats{UserID: "bot", OnlineSeconds: 20 * 3600, MultiClientSeconds: 12 * 3600, AccountAgeDays: 3,
		FirstMessageAfterJoinSeconds: i64(20), MessageIntervalCV: f64(0.05), ActiveHours: [24]int64{1: 10, 3: 10, 14: 10},
		RoleChanges: 14, MaxMessagesPerMinute: 9, Messages: 30}
}

// human is a member with no signal.
func human() plugin.MemberStats {
	return plugin.MemberStats{UserID: "human", OnlineSeconds: 20 * 3600, MultiClientSeconds: 0, AccountAgeDays: 900,
		FirstMessageAfterJoinSeconds: i64(2 * 86400), MessageIntervalCV: f64(1.4), ActiveHours: [24]int64{19: 10, 20: 10},
		RoleChanges: 1, MaxMessagesPerMinute: 2, Messages: 20}
}

func scoreWith(t *testing.T, config map[string]any, ms ...plugin.MemberStats) []plugin.Score {
	t.Helper()
	res, err := plugintest.New("41771983423143937", config).Score(request(ms...))
	if err != nil {
		t.Fatal(err)
	}
	return res.Scores
}

// TestFormula checks README.md's formula: score = 100 Σ wᵢsᵢ / Σ wᵢ.
func TestFormula(t *testing.T) {
	s := score(t, bot(), human())
	// bot: every signal at full strength; human: one role change (15 × 0.1).
	if s[0].Score != 100 || s[1].Score != 1.5 {
		t.Fatalf("bot %v (%s), human %v (%s)", s[0].Score, s[0].Explanation, s[1].Score, s[1].Explanation)
	}
	for _, sc := range s {
		sum := 0.0
		for _, f := range sc.Factors {
			sum += f.Contribution
		}
		if math.Abs(sum-sc.Score) > 0.05 || len(sc.Factors) != 7 {
			t.Fatalf("%s: factors %+v add up to %v, not %v", sc.UserID, sc.Factors, sum, sc.Score)
		}
	}
	// Strengths, one signal at a time (weight 100 on it, 0 elsewhere).
	only := func(name string) map[string]any {
		c := map[string]any{}
		for _, sg := range signals {
			c["weight_"+sg.name] = 0.0
		}
		c["weight_"+name] = 100.0
		return c
	}
	cases := []struct {
		signal string
		m      plugin.MemberStats
		want   float64
	}{
		{"multi_client", plugin.MemberStats{OnlineSeconds: 10 * 3600, MultiClientSeconds: 2 * 3600}, 40}, // ratio 0.2 / 0.5
		{"multi_client", plugin.MemberStats{OnlineSeconds: 1800, MultiClientSeconds: 1800}, 0},           // under an hour online
		{"account_age", plugin.MemberStats{AccountAgeDays: 48.5}, 50},                                    // (90 − 48.5) / 83
		{"join_to_first_message", plugin.MemberStats{FirstMessageAfterJoinSeconds: i64(465)}, 50},        // 1 − log10(7.75)/log10(60)
		{"timing_regularity", plugin.MemberStats{MessageIntervalCV: f64(0.3)}, 50},                       // (0.5 − 0.3) / 0.4
		{"odd_hours", plugin.MemberStats{ActiveHours: [24]int64{2: 3, 12: 17}}, 50},                      // share 0.15: (0.15 − 0.05) / 0.2
		{"odd_hours", plugin.MemberStats{ActiveHours: [24]int64{2: 4}}, 0},                               // fewer than 5 messages
		{"role_churn", plugin.MemberStats{RoleChanges: 5}, 50},                                           // 5 / 10
		{"bursts", plugin.MemberStats{MaxMessagesPerMinute: 4}, 50},                                      // (4 − 2) / 4
	}
	for _, c := range cases {
		c.m.UserID = "1"
		if c.signal != "account_age" {
			c.m.AccountAgeDays = 1000
		}
		got := scoreWith(t, only(c.signal), c.m)[0]
		if math.Abs(got.Score-c.want) > 0.11 {
			t.Errorf("%s alone on %+v: %v, want %v", c.signal, c.m, got.Score, c.want)
		}
	}
	// All weights zero: nothing can be suspicious.
	zero := only("bursts")
	zero["weight_bursts"] = 0.0
	if got := scoreWith(t, zero, bot())[0]; got.Score != 0 || got.Explanation != "Nothing unusual" {
		t.Fatalf("all weights 0: %+v", got)
	}
}

// TestExplanationNamesTopFactors checks the explanation lists the three
// largest contributions, largest first.
func TestExplanationNamesTopFactors(t *testing.T) {
	m := human()
	m.UserID = "x"
	m.RoleChanges = 10              // 15 points
	m.MaxMessagesPerMinute = 4      // 7.5 points
	m.AccountAgeDays = 48.5         // 7.5 points
	m.MessageIntervalCV = f64(0.45) // 2.5 points
	s := score(t, m)[0]
	want := "10 role changes; account 48 days old; bursts of 4 messages a minute"
	if s.Explanation != want {
		t.Fatalf("explanation %q, want %q", s.Explanation, want)
	}
}

// TestExplanationsGolden pins the sentences moderators read.
func TestExplanationsGolden(t *testing.T) {
	b := bot()
	golden(t, score(t, b, human(), plugin.MemberStats{UserID: "new", AccountAgeDays: 10, FirstMessageAfterJoinSeconds: i64(90)}))
}

func golden(t *testing.T, scores []plugin.Score) {
	t.Helper()
	var b strings.Builder
	for _, s := range scores {
		fmt.Fprintf(&b, "%s\t%v\t%s\n", s.UserID, s.Score, s.Explanation)
	}
	const path = "testdata/explanations.golden"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("explanations changed (go test -update to accept):\n got:\n%s\nwant:\n%s", b.String(), want)
	}
}
