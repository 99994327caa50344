package auth

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// APIKeyPrefix starts every API key, so that a leaked one is recognisable
// (and secret scanners can find it).
const APIKeyPrefix = "swk_"

// Tier is an API key's allowance.
type Tier struct {
	Name      string `json:"name"`
	PerMinute int    `json:"per_minute"`
	PerDay    int    `json:"per_day"`
}

// ParseTiers reads "name=perMinute/perDay,..." (for example
// "free=60/10000,standard=600/200000").
func ParseTiers(s string) (map[string]Tier, error) {
	out := map[string]Tier{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, lim, ok := strings.Cut(part, "=")
		pm, pd, ok2 := strings.Cut(lim, "/")
		m, err1 := strconv.Atoi(pm)
		d, err2 := strconv.Atoi(pd)
		if !ok || !ok2 || name == "" || err1 != nil || err2 != nil || m < 1 || d < 1 {
			return nil, fmt.Errorf("auth: tier %q: want name=perMinute/perDay", part)
		}
		out[name] = Tier{Name: name, PerMinute: m, PerDay: d}
	}
	if len(out) == 0 {
		return nil, errors.New("auth: no tiers")
	}
	return out, nil
}

// TierNames lists tiers by name.
func TierNames(t map[string]Tier) []string {
	var out []string
	for n := range t {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewAPIKey returns a fresh key ID and secret. The secret embeds the ID
// only for the owner's convenience; lookups go by the secret's hash.
func NewAPIKey() (id, secret string) {
	id = randomID()
	return id, APIKeyPrefix + id + "_" + randomString(32)
}

// UsageStore records API key usage.
type UsageStore interface {
	AddAPIKeyUsage(ctx context.Context, usage []store.KeyUsage, lastUsed map[string]time.Time) error
}

// UsageRecorder counts API key requests in memory and writes them in
// batches, so that a busy key costs no database write per request.
type UsageRecorder struct {
	st  UsageStore
	now func() time.Time

	mu    sync.Mutex
	count map[[2]string]int64 // key ID, day
	last  map[string]time.Time
}

// NewUsageRecorder returns a recorder writing to st.
func NewUsageRecorder(st UsageStore, now func() time.Time) *UsageRecorder {
	if now == nil {
		now = time.Now
	}
	return &UsageRecorder{st: st, now: now, count: map[[2]string]int64{}, last: map[string]time.Time{}}
}

// Record counts one request of a key.
func (u *UsageRecorder) Record(keyID string) {
	now := u.now().UTC()
	u.mu.Lock()
	u.count[[2]string{keyID, now.Format(time.DateOnly)}]++
	u.last[keyID] = now
	u.mu.Unlock()
}

// Flush writes what was counted since the last flush.
func (u *UsageRecorder) Flush(ctx context.Context) error {
	u.mu.Lock()
	count, last := u.count, u.last
	u.count, u.last = map[[2]string]int64{}, map[string]time.Time{}
	u.mu.Unlock()
	var usage []store.KeyUsage
	for k, n := range count {
		day, _ := time.Parse(time.DateOnly, k[1])
		usage = append(usage, store.KeyUsage{KeyID: k[0], Day: day, Requests: n})
	}
	if err := u.st.AddAPIKeyUsage(ctx, usage, last); err != nil {
		// Put the counts back so that the next flush retries them.
		u.mu.Lock()
		for k, n := range count {
			u.count[k] += n
		}
		for k, t := range last {
			if t.After(u.last[k]) {
				u.last[k] = t
			}
		}
		u.mu.Unlock()
		return fmt.Errorf("auth: flush api key usage: %w", err)
	}
	return nil
}

// Run flushes every interval until ctx ends, then once more.
func (u *UsageRecorder) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return u.Flush(fctx)
		case <-t.C:
			u.Flush(ctx) //nolint:errcheck // retried at the next tick
		}
	}
}
