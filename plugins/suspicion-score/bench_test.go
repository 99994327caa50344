package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
	"github.com/spywatcher/spywatcher/sdk/go/plugin/plugintest"
)

func BenchmarkServeScore(b *testing.B) {
	req := plugin.ScoreRequest{GuildID: "41771983423143937", From: time.Now().Add(-time.Hour), To: time.Now()}
	for i := range 500 {
		cv := 0.3
		s := int64(100)
		req.Members = append(req.Members, plugin.MemberStats{UserID: "80351110224678912", AccountAgeDays: float64(i), OnlineSeconds: 40000,
			ByClient: map[string]int64{"desktop": 30000, "mobile": 10000}, MultiClientSeconds: 3000, Messages: 12, MessagesTotal: 100,
			SecondsSinceLastMessage: &s, FirstMessageAfterJoinSeconds: &s, Channels: 3, MessageIntervalCV: &cv, MaxMessagesPerMinute: 4, RoleChanges: 2})
	}
	in, _ := json.Marshal(req)
	h := plugintest.New("41771983423143937", nil)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := plugin.Serve(h, plugin.HookScore, in); err != nil {
			b.Fatal(err)
		}
	}
}
