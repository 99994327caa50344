// Package privacy is the data lifecycle of the host: what each guild
// collects (the ingest filter), how long it is kept (the retention job),
// removing a guild's data after the bot leaves or an admin asks, and
// exporting and deleting what is held about a person across the core and
// every plugin.
//
// The tables involved are listed once, in the store (store.PersonalTables,
// store.GuildTables, store.RetainedTables); this package decides when and
// for whom, records every request and exposes metrics.
package privacy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Notifier carries "privacy settings changed" between host instances;
// bus.Signals (in-process) and bus.RedisSignals implement it.
type Notifier interface {
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(channel string, fn func(payload []byte)) (cancel func())
}

// Channel is the Notifier channel of settings and opt-out changes.
const Channel = "spywatcher.privacy.changed"

// FilterStore is what the filter reads.
type FilterStore interface {
	ListGuildSettings(ctx context.Context) ([]store.GuildSettings, error)
	ListOptOuts(ctx context.Context, guildID string) ([]store.OptOut, error)
	PrivacyVersion(ctx context.Context) (int64, error)
}

// Reasons an event is not collected (pipeline metrics labels).
const (
	ReasonNotConfigured = "not_configured" // the guild's admin never chose what to collect
	ReasonNotTracked    = "not_tracked"    // the guild does not collect this kind
	ReasonOptedOut      = "opted_out"      // the member asked not to be tracked
	ReasonGuildRemoved  = "guild_removed"  // the guild's data is being deleted
)

type guildRule struct {
	t             store.Tracking
	deleteOnLeave bool
	removing      bool
}

type snapshot struct {
	version  int64
	guilds   map[string]guildRule
	optAll   map[string]bool
	optGuild map[[2]string]bool
}

// Filter decides at ingest what is collected, from an in-memory copy of
// every guild's settings and the opt-out list. The copy is replaced after
// every change made through this process (Changed), when another instance
// signals one, and when a poll of the store's privacy version finds one.
// It implements pipeline.Filter.
type Filter struct {
	st     FilterStore
	notify Notifier
	log    *slog.Logger
	snap   atomic.Pointer[snapshot]
	mu     sync.Mutex // one reload at a time
}

// NewFilter loads the settings and opt-outs.
func NewFilter(ctx context.Context, st FilterStore, notify Notifier, log *slog.Logger) (*Filter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{st: st, notify: notify, log: log}
	if err := f.reload(ctx, true); err != nil {
		return nil, err
	}
	return f, nil
}

// NotCollected implements pipeline.Filter.
func (f *Filter) NotCollected(ev *event.Event) string {
	s := f.snap.Load()
	rule, configured := s.guilds[ev.GuildID]
	if rule.removing {
		return ReasonGuildRemoved
	}
	if ev.UserID != "" && (s.optAll[ev.UserID] || s.optGuild[[2]string{ev.GuildID, ev.UserID}]) {
		return ReasonOptedOut
	}
	var on bool
	switch ev.Kind {
	case event.KindGuildUpdate, event.KindChannelUpdate:
		return "" // the guild's existence: always kept
	case event.KindPresenceUpdate:
		on = rule.t.Presence
	case event.KindMessageCreate, event.KindMessageUpdate, event.KindMessageDelete:
		on = rule.t.Messages
	case event.KindTypingStart:
		on = rule.t.Typing
	case event.KindVoiceState:
		on = rule.t.Voice
	case event.KindMemberJoin, event.KindMemberLeave, event.KindMemberUpdate, event.KindBanAdd, event.KindBanRemove:
		on = rule.t.Members
	}
	switch {
	case !configured:
		return ReasonNotConfigured
	case !on:
		return ReasonNotTracked
	}
	return ""
}

// DeleteOnLeave reports whether the guild deletes a member's data when they
// leave.
func (f *Filter) DeleteOnLeave(guildID string) bool {
	return f.snap.Load().guilds[guildID].deleteOnLeave
}

// reload reads everything again when the stored version moved (or force).
func (f *Filter) reload(ctx context.Context, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.st.PrivacyVersion(ctx)
	if err != nil {
		return err
	}
	if cur := f.snap.Load(); !force && cur != nil && cur.version == v {
		return nil
	}
	settings, err := f.st.ListGuildSettings(ctx)
	if err != nil {
		return err
	}
	opts, err := f.st.ListOptOuts(ctx, "")
	if err != nil {
		return err
	}
	s := &snapshot{version: v, guilds: make(map[string]guildRule, len(settings)), optAll: map[string]bool{}, optGuild: map[[2]string]bool{}}
	for _, g := range settings {
		s.guilds[g.GuildID] = guildRule{t: g.Tracking, deleteOnLeave: g.DeleteOnLeave, removing: g.RemovalRequestedAt != nil}
	}
	for _, o := range opts {
		if o.GuildID == "" {
			s.optAll[o.UserID] = true
		} else {
			s.optGuild[[2]string{o.GuildID, o.UserID}] = true
		}
	}
	f.snap.Store(s)
	return nil
}

// Changed reloads at once after this process changed settings or opt-outs,
// and tells the other instances to do the same. When it returns, events
// offered from then on are filtered by the new settings.
func (f *Filter) Changed(ctx context.Context) error {
	if err := f.reload(ctx, true); err != nil {
		return err
	}
	if f.notify != nil {
		if err := f.notify.Publish(ctx, Channel, []byte("changed")); err != nil {
			f.log.Warn("privacy: could not signal other instances; they see the change at their next poll", "err", err)
		}
	}
	return nil
}

// Run keeps the filter current until ctx ends: on signals from other
// instances, and by polling the store's version every poll (which also
// catches changes made by the CLI without Redis).
func (f *Filter) Run(ctx context.Context, poll time.Duration) {
	if f.notify != nil {
		cancel := f.notify.Subscribe(Channel, func([]byte) {
			if err := f.reload(ctx, false); err != nil && ctx.Err() == nil {
				f.log.Error("privacy: reload settings", "err", err)
			}
		})
		defer cancel()
	}
	// Changes signalled between NewFilter and now were missed (nothing was
	// subscribed yet): a host spends seconds installing plugins in between,
	// and another instance's first settings would be ignored until the
	// first poll — events dropped as "not configured" meanwhile. Look once
	// now that the subscription is live.
	if err := f.reload(ctx, false); err != nil && ctx.Err() == nil {
		f.log.Error("privacy: reload settings", "err", err)
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.reload(ctx, false); err != nil && ctx.Err() == nil {
				f.log.Error("privacy: poll settings", "err", err)
			}
		}
	}
}
