package analytics

import (
	"math"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// MemberStats turns what the store aggregated about a member over [from,
// to) into the statistics scorers receive (PLUGINS.md, "score"; the JSON
// Schema is sdk/schema/score.schema.json). Message hours are folded into
// loc's hours of the day.
func MemberStats(m *store.ScoringMember, to time.Time, loc *time.Location) sdk.MemberStats {
	end := to.UnixMilli()
	days := func(msAgo int64) float64 { return math.Round(float64(msAgo)/864e5*100) / 100 }
	s := sdk.MemberStats{
		UserID:               m.UserID,
		Bot:                  m.Bot,
		OnlineSeconds:        m.OnlineMS / 1000,
		MultiClientSeconds:   m.MultiMS / 1000,
		MessagesTotal:        m.MessagesTotal,
		Channels:             int(m.Channels),
		MaxMessagesPerMinute: m.PeakPerMinute,
		RoleChanges:          m.RoleChanges,
	}
	if !m.AccountCreated.IsZero() && m.AccountCreated.UnixMilli() > 0 {
		s.AccountAgeDays = max(0, days(end-m.AccountCreated.UnixMilli()))
	}
	if m.JoinedAt > 0 {
		j := max(0, days(end-m.JoinedAt))
		s.JoinedDaysAgo = &j
	}
	for client, v := range map[string]int64{"desktop": m.DesktopMS, "mobile": m.MobileMS, "web": m.WebMS} {
		if v >= 1000 {
			if s.ByClient == nil {
				s.ByClient = map[string]int64{}
			}
			s.ByClient[client] = v / 1000
		}
	}
	for h, n := range m.MessageHours {
		s.Messages += n
		s.ActiveHours[time.UnixMilli(h).In(loc).Hour()] += n
	}
	if m.LastMessageAt > 0 {
		v := max(0, (end-m.LastMessageAt)/1000)
		s.SecondsSinceLastMessage = &v
	}
	if m.FirstMessageAt > 0 && m.JoinedAt > 0 && m.FirstMessageAt >= m.JoinedAt {
		v := (m.FirstMessageAt - m.JoinedAt) / 1000
		s.FirstMessageAfterJoinSeconds = &v
	}
	if m.Gaps >= 2 && m.GapSum > 0 {
		n := float64(m.Gaps)
		mean := m.GapSum / n
		cv := math.Sqrt(max(0, m.GapSumSq/n-mean*mean)) / mean
		cv = math.Round(cv*1000) / 1000
		s.MessageIntervalCV = &cv
	}
	return s
}
