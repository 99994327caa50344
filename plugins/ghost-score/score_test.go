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

// TestFormula checks README.md's formula on worked examples:
// r = hours / (messages + 1), score = 100 r / (r + 4), rounded to 0.1.
func TestFormula(t *testing.T) {
	cases := []struct {
		online, messages int64
		want             float64
		band             string
	}{
		{0, 0, 0, ""},                       // under an hour online: not scored
		{3599, 0, 0, ""},                    // still under
		{4 * 3600, 0, 50, "mostly silent"},  // r = 4
		{40 * 3600, 9, 50, "mostly silent"}, // r = 4
		{36 * 3600, 0, 90, "ghost"},         // r = 36: 3600/40
		{12 * 3600, 0, 75, "ghost"},         // r = 12: band edge
		{10 * 3600, 19, 11.1, "active"},     // r = 0.5: 50/4.5
		{8 * 3600, 1, 50, "mostly silent"},  // r = 4
		{2 * 3600, 0, 33.3, "quiet"},        // r = 2
	}
	for _, c := range cases {
		s := score(t, plugin.MemberStats{UserID: "1", OnlineSeconds: c.online, Messages: c.messages})[0]
		if math.Abs(s.Score-c.want) > 1e-9 {
			t.Errorf("online %d s, %d messages: score %v, want %v", c.online, c.messages, s.Score, c.want)
		}
		if c.band != "" && !strings.HasSuffix(s.Explanation, ": "+c.band) {
			t.Errorf("online %d s, %d messages: %q, want band %q", c.online, c.messages, s.Explanation, c.band)
		}
		if len(s.Factors) != 1 || s.Factors[0].Contribution != s.Score {
			t.Errorf("factors %+v do not add up to %v", s.Factors, s.Score)
		}
	}
	// More messages for the same time online never raises the score.
	prev := 101.0
	for m := int64(0); m < 50; m++ {
		s := score(t, plugin.MemberStats{UserID: "1", OnlineSeconds: 30 * 3600, Messages: m})[0]
		if s.Score > prev {
			t.Fatalf("%d messages score %v, more than with fewer (%v)", m, s.Score, prev)
		}
		prev = s.Score
	}
}

// TestExplanationsGolden pins the sentences moderators read.
func TestExplanationsGolden(t *testing.T) {
	golden(t, score(t,
		plugin.MemberStats{UserID: "a", OnlineSeconds: 1800, Messages: 3},
		plugin.MemberStats{UserID: "b", OnlineSeconds: 64 * 3600},
		plugin.MemberStats{UserID: "c", OnlineSeconds: 26 * 3600, Messages: 12},
		plugin.MemberStats{UserID: "d", OnlineSeconds: 5 * 3600, Messages: 1},
		plugin.MemberStats{UserID: "e", OnlineSeconds: 20 * 3600, Messages: 140},
	))
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
