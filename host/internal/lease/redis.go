package lease

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps leases as Redis keys with a time to live, so that expiry is
// judged by one clock (the Redis server's) however many hosts compete.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns leases stored under prefix (for example "spywatcher:lease:")
// in the Redis behind c.
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	return &Redis{c: c, prefix: prefix}
}

// acquire sets the key when it is free and extends it when the caller holds
// it, atomically: a GET followed by a SET from the client could interleave
// with another instance's. The fencing token is a counter in a second key
// (KEYS[2]) without expiry, bumped whenever the lease is taken afresh.
var acquire = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.call('INCR', KEYS[2])
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local t = redis.call('GET', KEYS[2])
  if t == false then
    return redis.call('INCR', KEYS[2])
  end
  return tonumber(t)
end
return 0`)

var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

var check = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return 0
end
return 1`)

// AcquireLease takes name for holder for ttl or extends holder's lease; it
// reports false while another holder's lease is unexpired.
func (r *Redis) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	tok, err := r.AcquireFenced(ctx, name, holder, ttl)
	return tok > 0, err
}

// AcquireFenced is AcquireLease returning the fencing token (0: not taken).
func (r *Redis) AcquireFenced(ctx context.Context, name, holder string, ttl time.Duration) (int64, error) {
	if name == "" || holder == "" || ttl < time.Millisecond {
		return 0, fmt.Errorf("lease: acquire %q: empty name or holder, or ttl %s", name, ttl)
	}
	n, err := acquire.Run(ctx, r.c, r.keys(name), holder, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("lease: acquire %q in redis: %w", name, err)
	}
	return n, nil
}

// ReleaseLease frees holder's lease on name; it does nothing when holder
// does not hold it.
func (r *Redis) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := release.Run(ctx, r.c, r.keys(name), holder).Err(); err != nil {
		return fmt.Errorf("lease: release %q in redis: %w", name, err)
	}
	return nil
}

// CheckLease reports whether holder still holds name with token.
func (r *Redis) CheckLease(ctx context.Context, name, holder string, token int64) (bool, error) {
	n, err := check.Run(ctx, r.c, r.keys(name), holder, token).Int()
	if err != nil {
		return false, fmt.Errorf("lease: check %q in redis: %w", name, err)
	}
	return n == 1, nil
}

// keys are the lease's key (unchanged from releases before fencing, so
// that old and new instances still exclude each other during a rolling
// upgrade) and its fencing counter's.
func (r *Redis) keys(name string) []string {
	k := r.prefix + name
	return []string{k, k + ":fence"}
}
