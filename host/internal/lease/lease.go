// Package lease provides named, expiring locks for host instances that must
// not do the same work twice, such as ingesting one Discord shard: Local for
// a single process and Redis for several instances sharing a Redis server.
// The SQL store offers the same two methods over its leases table, so a
// consumer declares a two-method interface and takes any of them.
//
// A lease is taken with AcquireLease(name, holder, ttl) and kept by calling
// it again before ttl passes; a holder that dies simply stops renewing and
// the lease becomes free when it expires.
package lease

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Local keeps leases in memory: enough when only one process competes, as
// with `spywatcher record`. The zero value is ready to use.
type Local struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	leases map[string]entry
}

type entry struct {
	holder  string
	expires time.Time
}

// AcquireLease takes name for holder until now+ttl or extends holder's
// lease; it reports false while another holder's lease is unexpired.
func (l *Local) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("lease: acquire %q: empty name or holder, or ttl %s", name, ttl)
	}
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leases == nil {
		l.leases = map[string]entry{}
	}
	if e, ok := l.leases[name]; ok && e.holder != holder && now.Before(e.expires) {
		return false, nil
	}
	l.leases[name] = entry{holder: holder, expires: now.Add(ttl)}
	return true, nil
}

// ReleaseLease frees holder's lease on name; it does nothing when holder
// does not hold it.
func (l *Local) ReleaseLease(_ context.Context, name, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.leases[name]; ok && e.holder == holder {
		delete(l.leases, name)
	}
	return nil
}
