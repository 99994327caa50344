// Package lease provides named, expiring locks for host instances that must
// not do the same work twice, such as ingesting one Discord shard: Local for
// a single process and Redis for several instances sharing a Redis server.
// The SQL store offers the same two methods over its leases table, so a
// consumer declares a two-method interface and takes any of them.
//
// A lease is taken with AcquireLease(name, holder, ttl) and kept by calling
// it again before ttl passes; a holder that dies simply stops renewing and
// the lease becomes free when it expires.
//
// Every backend also hands out fencing tokens (AcquireFenced, CheckLease):
// a number per lease name that grows whenever the lease changes hands, so
// that a holder which paused past its expiry can tell, before a write that
// matters, that someone else has taken over since (Fenced).
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

// Fenced is a lease backend with fencing tokens; Local, Redis and
// *store.Store implement it.
type Fenced interface {
	// AcquireFenced takes or renews name for holder and returns its token,
	// or 0 while another holder's lease is unexpired.
	AcquireFenced(ctx context.Context, name, holder string, ttl time.Duration) (int64, error)
	// ReleaseLease frees holder's lease on name.
	ReleaseLease(ctx context.Context, name, holder string) error
	// CheckLease reports whether holder still holds name with token.
	CheckLease(ctx context.Context, name, holder string, token int64) (bool, error)
}

var (
	_ Fenced = (*Local)(nil)
	_ Fenced = (*Redis)(nil)
)

type entry struct {
	holder  string
	expires time.Time
	token   int64
}

func (l *Local) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// AcquireLease takes name for holder until now+ttl or extends holder's
// lease; it reports false while another holder's lease is unexpired.
func (l *Local) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	tok, err := l.AcquireFenced(ctx, name, holder, ttl)
	return tok > 0, err
}

// AcquireFenced is AcquireLease returning the fencing token (0: not taken).
func (l *Local) AcquireFenced(_ context.Context, name, holder string, ttl time.Duration) (int64, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return 0, fmt.Errorf("lease: acquire %q: empty name or holder, or ttl %s", name, ttl)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leases == nil {
		l.leases = map[string]entry{}
	}
	e := l.leases[name]
	live := now.Before(e.expires)
	if live && e.holder != holder {
		return 0, nil
	}
	if !live || e.holder != holder {
		e.token++
	}
	e.holder, e.expires = holder, now.Add(ttl)
	l.leases[name] = e
	return e.token, nil
}

// ReleaseLease frees holder's lease on name; it does nothing when holder
// does not hold it.
func (l *Local) ReleaseLease(_ context.Context, name, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.leases[name]; ok && e.holder == holder {
		e.expires = time.Time{} // kept: the token must keep growing
		l.leases[name] = e
	}
	return nil
}

// CheckLease reports whether holder still holds name with token.
func (l *Local) CheckLease(_ context.Context, name, holder string, token int64) (bool, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.leases[name]
	return ok && e.holder == holder && e.token == token && now.Before(e.expires), nil
}
