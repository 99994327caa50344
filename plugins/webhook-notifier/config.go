package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// Rule kinds ("on").
const (
	OnBanAdd      = "ban.add"
	OnBanRemove   = "ban.remove"
	OnRoleGranted = "role.granted"
	OnRoleRemoved = "role.removed"
	OnMultiClient = "multi_client"
	OnScore       = "score"
	OnMemberJoin  = "member.join"
	OnMemberLeave = "member.leave"
)

// Webhook is a destination.
type Webhook struct {
	ID string `json:"id"`
	// URL is secret-bearing (Discord and Slack webhook URLs carry a token):
	// it is never logged or served; the delivery log shows only its host.
	URL string `json:"url"`
	// Format is "discord" ({"content","embeds"}) or "slack" ({"text","blocks"}).
	Format string `json:"format"`
}

// Rule says when to notify.
type Rule struct {
	ID       string   `json:"id"`
	On       string   `json:"on"`
	Webhooks []string `json:"webhooks,omitempty"` // empty: every webhook
	Users    []string `json:"users,omitempty"`    // empty: every member
	// RoleID limits role.granted and role.removed to one role.
	RoleID string `json:"role_id,omitempty"`
	// MinClients is the number of clients online at once for multi_client
	// (default 2).
	MinClients int `json:"min_clients,omitempty"`
	// Scorer and Threshold: score fires when a member's score from Scorer
	// (any scorer if empty) rises to Threshold or above.
	Scorer    string  `json:"scorer,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// MaxAccountAgeDays: member.join fires only for accounts younger than
	// this (0: every join).
	MaxAccountAgeDays float64 `json:"max_account_age_days,omitempty"`
	// CooldownMinutes suppresses the rule for the same member for this
	// long after it fired (default 60 for multi_client, else 0).
	CooldownMinutes *float64 `json:"cooldown_minutes,omitempty"`
}

func (r *Rule) cooldown() time.Duration {
	if r.CooldownMinutes != nil {
		return time.Duration(*r.CooldownMinutes * float64(time.Minute))
	}
	if r.On == OnMultiClient {
		return time.Hour
	}
	return 0
}

func (r *Rule) minClients() int {
	if r.MinClients < 2 {
		return 2
	}
	return r.MinClients
}

// settings is a guild's configuration (the manifest's config_schema) with
// defaults applied.
type settings struct {
	Webhooks      []Webhook `json:"webhooks"`
	Rules         []Rule    `json:"rules"`
	MaxAttempts   int       `json:"max_attempts"`
	BackoffSecs   float64   `json:"backoff_seconds"`
	MaxAgeMinutes float64   `json:"max_age_minutes"`
	LogDays       float64   `json:"log_days"`
}

func (s *settings) webhook(id string) *Webhook {
	for i := range s.Webhooks {
		if s.Webhooks[i].ID == id {
			return &s.Webhooks[i]
		}
	}
	return nil
}

func (s *settings) backoff(attempt int) time.Duration {
	d := time.Duration(s.BackoffSecs * float64(time.Second))
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

const maxBackoff = time.Hour

// cached is the last configuration decoded. A WebAssembly instance serves
// one call at a time, but a process plugin may serve several at once.
var cached struct {
	sync.Mutex
	raw string
	s   settings
}

// loadSettings decodes the configuration, reusing the last decode when it
// has not changed.
func loadSettings(ctx *plugin.Context) settings {
	b, _ := json.Marshal(ctx.Config())
	cached.Lock()
	defer cached.Unlock()
	if cached.raw == string(b) {
		return cached.s
	}
	s := settings{MaxAttempts: 6, BackoffSecs: 30, MaxAgeMinutes: 60, LogDays: 7}
	json.Unmarshal(b, &s) //nolint:errcheck // the host validated it against the schema
	if s.MaxAttempts < 1 {
		s.MaxAttempts = 1
	}
	cached.raw, cached.s = string(b), s
	return s
}

// hostOf returns a URL's host for the log (never the URL itself).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return strings.ToLower(u.Host)
}
