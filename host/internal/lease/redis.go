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
// with another instance's.
var acquire = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)

var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// AcquireLease takes name for holder for ttl or extends holder's lease; it
// reports false while another holder's lease is unexpired.
func (r *Redis) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("lease: acquire %q: empty name or holder, or ttl %s", name, ttl)
	}
	n, err := acquire.Run(ctx, r.c, []string{r.prefix + name}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lease: acquire %q in redis: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease frees holder's lease on name; it does nothing when holder
// does not hold it.
func (r *Redis) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := release.Run(ctx, r.c, []string{r.prefix + name}, holder).Err(); err != nil {
		return fmt.Errorf("lease: release %q in redis: %w", name, err)
	}
	return nil
}
