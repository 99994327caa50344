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

func i64(v int64) *int64 { return &v }

// TestFormula checks README.md's formula on worked examples (7-day window):
// since = online hours × min(1, days since the last message / 7), or all
// online hours for a member who never posted; s = since / (since + 3);
// score = 90 s, plus 10 s for never having posted.
func TestFormula(t *testing.T) {
	cases := []struct {
		name string
		m    plugin.MemberStats
		want float64
	}{
		{"never posted, 3 h online", plugin.MemberStats{OnlineSeconds: 3 * 3600}, 50},
		{"never posted, not online", plugin.MemberStats{}, 0},
		{"posted 3.5 days ago, 12 h online", plugin.MemberStats{OnlineSeconds: 12 * 3600, MessagesTotal: 4, Messages: 1,
			SecondsSinceLastMessage: i64(302400)}, 60},
		{"posted just now", plugin.MemberStats{OnlineSeconds: 40 * 3600, MessagesTotal: 9, Messages: 9, SecondsSinceLastMessage: i64(0)}, 0},
		{"posted before the window, 9 h online", plugin.MemberStats{OnlineSeconds: 9 * 3600, MessagesTotal: 2,
			SecondsSinceLastMessage: i64(30 * 86400)}, 67.5},
	}
	for _, c := range cases {
		c.m.UserID = "1"
		s := score(t, c.m)[0]
		if math.Abs(s.Score-c.want) > 1e-9 {
			t.Errorf("%s: score %v, want %v (%s)", c.name, s.Score, c.want, s.Explanation)
		}
		sum := 0.0
		for _, f := range s.Factors {
			sum += f.Contribution
		}
		if math.Abs(sum-s.Score) > 0.05 {
			t.Errorf("%s: factors %+v add up to %v, not %v", c.name, s.Factors, sum, s.Score)
		}
	}
	// Never having posted scores above having posted long ago, at equal time online.
	never := score(t, plugin.MemberStats{UserID: "1", OnlineSeconds: 10 * 3600})[0]
	once := score(t, plugin.MemberStats{UserID: "1", OnlineSeconds: 10 * 3600, MessagesTotal: 1, SecondsSinceLastMessage: i64(8 * 86400)})[0]
	if never.Score <= once.Score {
		t.Fatalf("never posted %v, posted once long ago %v", never.Score, once.Score)
	}
}

// TestExplanationsGolden pins the sentences moderators read.
func TestExplanationsGolden(t *testing.T) {
	golden(t, score(t,
		plugin.MemberStats{UserID: "a", OnlineSeconds: 64 * 3600},
		plugin.MemberStats{UserID: "b", OnlineSeconds: 12 * 3600, MessagesTotal: 4, Messages: 1, SecondsSinceLastMessage: i64(302400)},
		plugin.MemberStats{UserID: "c", OnlineSeconds: 30 * 3600, MessagesTotal: 300, Messages: 80, SecondsSinceLastMessage: i64(600)},
		plugin.MemberStats{UserID: "d"},
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
