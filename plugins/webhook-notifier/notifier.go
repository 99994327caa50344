package main

import (
	"strconv"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

type notifier struct{}

// now is the wall clock; events older than max_age_minutes on arrival are
// not notified (a replay or the simulator's history would flood webhooks).
var now = time.Now

func (notifier) OnEvents(ctx *plugin.Context, events []plugin.Event) error {
	cfg := loadSettings(ctx)
	if len(cfg.Rules) == 0 || len(cfg.Webhooks) == 0 {
		return nil
	}
	maxAge := time.Duration(cfg.MaxAgeMinutes * float64(time.Minute))
	arrived := now()
	names := nameCache{}
	var queued, suppressed, stale, dups int
	for i := range events {
		ev := &events[i]
		notices := match(ctx, cfg.Rules, ev, names)
		if len(notices) == 0 {
			continue
		}
		if maxAge > 0 && arrived.Sub(ev.At()) > maxAge {
			stale += len(notices)
			continue
		}
		for j := range notices {
			n := &notices[j]
			r := ruleByID(cfg.Rules, n.Rule)
			if cd := r.cooldown(); cd > 0 && n.UserID != "" {
				ok, err := cooledDown(ctx, r.ID, n.UserID, n.At, cd)
				if err != nil {
					return err
				}
				if !ok {
					suppressed++
					continue
				}
			}
			for _, wh := range targets(&cfg, r) {
				isNew, err := enqueue(ctx, n, wh)
				if err != nil {
					return err
				}
				if isNew {
					queued++
				} else {
					dups++
				}
			}
		}
	}
	count(ctx, "notices_queued", queued)
	count(ctx, "notices_suppressed_cooldown", suppressed)
	count(ctx, "notices_stale", stale)
	count(ctx, "notices_duplicate", dups)
	return nil
}

func ruleByID(rules []Rule, id string) *Rule {
	for i := range rules {
		if rules[i].ID == id {
			return &rules[i]
		}
	}
	return &Rule{}
}

// targets are the webhooks a rule posts to.
func targets(cfg *settings, r *Rule) []*Webhook {
	var out []*Webhook
	if len(r.Webhooks) == 0 {
		for i := range cfg.Webhooks {
			out = append(out, &cfg.Webhooks[i])
		}
		return out
	}
	for _, id := range r.Webhooks {
		if wh := cfg.webhook(id); wh != nil {
			out = append(out, wh)
		}
	}
	return out
}

// cooledDown reports whether the rule may fire for the member at at, and
// if so records that it did.
func cooledDown(ctx *plugin.Context, rule, user string, at time.Time, cd time.Duration) (bool, error) {
	k := cooldownKey(rule, user)
	v, found, err := ctx.KVGet(k)
	if err != nil {
		return false, err
	}
	if found {
		if last, err := strconv.ParseInt(string(v), 10, 64); err == nil && at.Before(time.UnixMilli(last).Add(cd)) {
			return false, nil
		}
	}
	return true, setFor(ctx, k, []byte(strconv.FormatInt(at.UnixMilli(), 10)), user)
}

// Tick sends due deliveries and expires old log entries.
func (notifier) Tick(ctx *plugin.Context, now time.Time) error {
	cfg := loadSettings(ctx)
	if _, err := deliverDue(ctx, cfg, now); err != nil {
		return err
	}
	_, err := expire(ctx, now.Add(-time.Duration(cfg.LogDays*float64(24*time.Hour))), expirePerTick)
	return err
}

// DeleteUser removes the member's cooldowns and deliveries about them.
// Every such key is also tagged with the member (KVSetUser), so the
// host's deletion finds them without this hook.
func (notifier) DeleteUser(ctx *plugin.Context, userID string) error {
	if !event.IsSnowflake(userID) {
		return nil
	}
	for _, p := range []string{"cd/", "g/"} {
		after := ""
		for {
			entries, next, err := ctx.KVList(p, after, 500)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if p == "cd/" {
					if len(e.Key) > len(userID) && e.Key[len(e.Key)-len(userID)-1:] == "/"+userID {
						if err := ctx.KVDelete(e.Key); err != nil {
							return err
						}
					}
					continue
				}
				if err := deleteIfAbout(ctx, e, userID); err != nil {
					return err
				}
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	return nil
}

// deleteIfAbout removes a logged delivery (from its expiry entry) if it is
// about the user.
func deleteIfAbout(ctx *plugin.Context, e plugin.KVEntry, userID string) error {
	var keys []string
	if jsonUnmarshal(e.Value, &keys) != nil || len(keys) == 0 {
		return nil
	}
	d, err := loadDelivery(ctx, keys[0])
	if err != nil || d == nil || d.UserID != userID {
		return err
	}
	if d.NextAt != nil {
		if err := ctx.KVDelete(queueKey(*d.NextAt, d.ID)); err != nil {
			return err
		}
	}
	for _, k := range append(keys, e.Key) {
		if err := ctx.KVDelete(k); err != nil {
			return err
		}
	}
	return nil
}
