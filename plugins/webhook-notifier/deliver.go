package main

import (
	"encoding/json"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// Key layout (fixed-width numbers, so key order is time order):
//
//	l/<inv created ms>/<id>   the delivery record (JSON); the log, newest first
//	q/<next attempt ms>/<id>  the retry queue, soonest first; value: the record's key
//	x/<id>                    deduplication: this delivery exists; value: the record's key
//	g/<created ms>/<id>       log expiry, oldest first; value: JSON list of the keys to delete
//	cd/<rule>/<user>          when the rule last fired for the member (unix ms), for cooldowns
//
// <id> is 16 hex digits of FNV-1a over rule, webhook and event ID, so the
// same event never notifies the same webhook twice under the same rule.
const maxMS = 9999999999999

func pad13(v int64) string {
	if v < 0 {
		v = 0
	}
	if v > maxMS {
		v = maxMS
	}
	s := strconv.FormatInt(v, 10)
	return strings.Repeat("0", 13-len(s)) + s
}

func logKey(created time.Time, id string) string {
	return "l/" + pad13(maxMS-created.UnixMilli()) + "/" + id
}
func queueKey(next time.Time, id string) string { return "q/" + pad13(next.UnixMilli()) + "/" + id }
func expiryKey(created time.Time, id string) string {
	return "g/" + pad13(created.UnixMilli()) + "/" + id
}
func dedupKey(id string) string            { return "x/" + id }
func cooldownKey(rule, user string) string { return "cd/" + rule + "/" + user }

func keyTime(k string) (time.Time, bool) {
	if len(k) < 15 {
		return time.Time{}, false
	}
	v, err := strconv.ParseInt(k[2:15], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(v).UTC(), true
}

func deliveryID(rule, webhook, eventID string) string {
	h := fnv.New64a()
	h.Write([]byte(rule + "\x00" + webhook + "\x00" + eventID))
	s := strconv.FormatUint(h.Sum64(), 16)
	return strings.Repeat("0", 16-len(s)) + s
}

// Delivery statuses.
const (
	StatusPending   = "pending"   // waiting for its first or next attempt
	StatusDelivered = "delivered" // the webhook answered 2xx
	StatusFailed    = "failed"    // a permanent error, or max_attempts used up
	StatusDenied    = "denied"    // the host refused the request (host not granted, private address)
	StatusExpired   = "expired"   // older than max_age_minutes before it could be delivered
)

// Delivery is one notice for one webhook, with every attempt.
type Delivery struct {
	ID        string     `json:"id"`
	Rule      string     `json:"rule"`
	On        string     `json:"on"`
	Webhook   string     `json:"webhook"`
	Format    string     `json:"format"`
	Host      string     `json:"host"`
	EventID   string     `json:"event_id"`
	UserID    string     `json:"user_id,omitempty"`
	Summary   string     `json:"summary"`
	CreatedAt time.Time  `json:"created_at"`
	Status    string     `json:"status"`
	Attempts  []Attempt  `json:"attempts"`
	NextAt    *time.Time `json:"next_attempt_at,omitempty"`
	// Body is what is POSTed.
	Body json.RawMessage `json:"body"`
}

// Attempt is one POST.
type Attempt struct {
	At         time.Time `json:"at"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// enqueue records a delivery of n to wh unless it exists already; it
// reports whether it was new.
func enqueue(ctx *plugin.Context, n *Notice, wh *Webhook) (bool, error) {
	id := deliveryID(n.Rule, wh.ID, n.EventID)
	if _, found, err := ctx.KVGet(dedupKey(id)); err != nil || found {
		return false, err
	}
	body, err := render(wh.Format, n, ctx.GuildID())
	if err != nil {
		return false, err
	}
	format := wh.Format
	if format != FormatSlack {
		format = FormatDiscord
	}
	next := n.At
	d := &Delivery{ID: id, Rule: n.Rule, On: n.On, Webhook: wh.ID, Format: format, Host: hostOf(wh.URL), EventID: n.EventID,
		UserID: n.UserID, Summary: n.Summary(), CreatedAt: n.At, Status: StatusPending, Attempts: []Attempt{}, NextAt: &next, Body: body}
	lk := logKey(d.CreatedAt, id)
	if err := saveDelivery(ctx, lk, d); err != nil {
		return false, err
	}
	if err := setFor(ctx, queueKey(next, id), []byte(lk), d.UserID); err != nil {
		return false, err
	}
	if err := setFor(ctx, dedupKey(id), []byte(lk), d.UserID); err != nil {
		return false, err
	}
	keys, _ := json.Marshal([]string{lk, dedupKey(id)})
	return true, setFor(ctx, expiryKey(d.CreatedAt, id), keys, d.UserID)
}

func setFor(ctx *plugin.Context, key string, v []byte, user string) error {
	if user != "" {
		return ctx.KVSetUser(key, v, user)
	}
	return ctx.KVSet(key, v)
}

func saveDelivery(ctx *plugin.Context, key string, d *Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return setFor(ctx, key, b, d.UserID)
}

func loadDelivery(ctx *plugin.Context, key string) (*Delivery, error) {
	v, found, err := ctx.KVGet(key)
	if err != nil || !found {
		return nil, err
	}
	var d Delivery
	if json.Unmarshal(v, &d) != nil {
		return nil, nil
	}
	return &d, nil
}

// Per-tick bounds: how many POSTs, and how much of the call's time they may
// use (each POST may take up to the host's 10 s fetch timeout; the manifest
// gives the call 30 s).
const (
	sendsPerTick  = 20
	sendBudget    = 15 * time.Second
	expirePerTick = 200
)

// deliverDue attempts the deliveries whose time has come, soonest first.
func deliverDue(ctx *plugin.Context, cfg settings, now time.Time) (sent int, err error) {
	start := time.Now()
	for sent < sendsPerTick && time.Since(start) < sendBudget {
		entries, _, err := ctx.KVList("q/", "", 1)
		if err != nil || len(entries) == 0 {
			return sent, err
		}
		qk := entries[0].Key
		if at, ok := keyTime(qk); ok && at.After(now) {
			return sent, nil
		}
		lk := string(entries[0].Value)
		d, err := loadDelivery(ctx, lk)
		if err != nil {
			return sent, err
		}
		keep := false
		if d != nil && d.Status == StatusPending {
			if attempt(ctx, cfg, d, now) {
				sent++
			}
			// The new state is saved before the queue entry goes: a call
			// cut short here sends again rather than never.
			if d.Status == StatusPending {
				nk := queueKey(*d.NextAt, d.ID)
				keep = nk == qk
				if err := setFor(ctx, nk, []byte(lk), d.UserID); err != nil {
					return sent, err
				}
			} else {
				d.NextAt = nil
			}
			if err := saveDelivery(ctx, lk, d); err != nil {
				return sent, err
			}
		}
		if !keep {
			if err := ctx.KVDelete(qk); err != nil {
				return sent, err
			}
		}
	}
	return sent, nil
}

// attempt POSTs d once (unless it expired or its webhook is gone) and sets
// its status and next attempt. It reports whether a request was made.
func attempt(ctx *plugin.Context, cfg settings, d *Delivery, now time.Time) bool {
	if cfg.MaxAgeMinutes > 0 && now.Sub(d.CreatedAt) > time.Duration(cfg.MaxAgeMinutes*float64(time.Minute)) {
		d.Status = StatusExpired
		count(ctx, "deliveries_expired", 1)
		return false
	}
	wh := cfg.webhook(d.Webhook)
	if wh == nil {
		d.Status = StatusFailed
		d.Attempts = append(d.Attempts, Attempt{At: now, Error: "webhook " + d.Webhook + " is no longer configured"})
		count(ctx, "deliveries_failed", 1)
		return false
	}
	res, err := ctx.Fetch(plugin.FetchRequest{Method: "POST", URL: wh.URL, Body: d.Body,
		Headers: map[string]string{"Content-Type": "application/json", "User-Agent": "Spywatcher-webhook-notifier/1"}})
	a := Attempt{At: now, HTTPStatus: res.Status}
	retryAfter := time.Duration(0)
	var he *plugin.HostError
	switch {
	case errors.As(err, &he) && he.Code == "denied":
		a.Error = he.Message
		d.Status = StatusDenied
	case err != nil:
		a.Error = err.Error()
	case res.Status >= 200 && res.Status < 300:
		d.Status = StatusDelivered
	case res.Status == 429 || res.Status == 408 || res.Status >= 500:
		a.Error = "HTTP " + strconv.Itoa(res.Status)
		if s, err := strconv.Atoi(header(res.Headers, "Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
	default:
		a.Error = "HTTP " + strconv.Itoa(res.Status) + ": " + clip(string(res.Body), 200)
		d.Status = StatusFailed // the webhook refused the request: retrying will not help
	}
	d.Attempts = append(d.Attempts, a)
	switch d.Status {
	case StatusDelivered:
		count(ctx, "deliveries_ok", 1)
	case StatusPending:
		if len(d.Attempts) >= cfg.MaxAttempts {
			d.Status = StatusFailed
			count(ctx, "deliveries_failed", 1)
			break
		}
		next := now.Add(max(cfg.backoff(len(d.Attempts)), retryAfter))
		d.NextAt = &next
		count(ctx, "deliveries_retried", 1)
	default:
		count(ctx, "deliveries_failed", 1)
	}
	return true
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// expire removes log entries older than the log retention, oldest first,
// at most limit of them.
func expire(ctx *plugin.Context, cutoff time.Time, limit int) (int, error) {
	entries, _, err := ctx.KVList("g/", "", limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if at, ok := keyTime(e.Key); ok && !at.Before(cutoff) {
			break
		}
		var keys []string
		json.Unmarshal(e.Value, &keys) //nolint:errcheck // a bad value still lets the index entry go
		for _, k := range append(keys, e.Key) {
			if err := ctx.KVDelete(k); err != nil {
				return n, err
			}
		}
		n++
	}
	return n, nil
}

func count(ctx *plugin.Context, name string, n int) {
	if n > 0 {
		ctx.Count(name, float64(n)) //nolint:errcheck // optional: denied without metrics.write
	}
}
