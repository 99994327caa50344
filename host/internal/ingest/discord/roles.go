package discord

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
)

// cachedMember is what the role cache keeps per member. IDs are stored as
// integers rather than strings: a guild of 100k members with a handful of
// roles each then costs a few megabytes.
type cachedMember struct {
	roles []uint64 // sorted, deduplicated
	ident uint64   // hash of nick and user names, to detect no-op updates
}

// roleCache maps guild → user → member. Entries come from GUILD_CREATE,
// member chunks, member add and member update and go with member remove or
// when the bot leaves the guild, so the cache is bounded by the members of
// the guilds the bot is in.
type roleCache struct {
	mu     sync.Mutex
	guilds map[uint64]map[uint64]cachedMember
}

func (rc *roleCache) get(guild, user uint64) (cachedMember, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	m, ok := rc.guilds[guild][user]
	return m, ok
}

func (rc *roleCache) put(guild, user uint64, m cachedMember) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.guilds == nil {
		rc.guilds = make(map[uint64]map[uint64]cachedMember)
	}
	g := rc.guilds[guild]
	if g == nil {
		g = make(map[uint64]cachedMember)
		rc.guilds[guild] = g
	}
	g[user] = m
}

func (rc *roleCache) remove(guild, user uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.guilds[guild], user)
}

func (rc *roleCache) dropGuild(guild uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.guilds, guild)
}

// len returns the number of cached members; tests use it.
func (rc *roleCache) len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, g := range rc.guilds {
		n += len(g)
	}
	return n
}

// parseID parses a snowflake for use as a cache key.
func parseID(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// parseRoles returns ids as sorted, deduplicated integers.
func parseRoles(ids []string) ([]uint64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]uint64, 0, len(ids))
	for _, s := range ids {
		n, ok := parseID(s)
		if !ok {
			return nil, fmt.Errorf("role id %q is not a Discord ID", s)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// formatIDs turns integers back into the event's string IDs; nil for none.
func formatIDs(ids []uint64) []string {
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, len(ids))
	for i, n := range ids {
		out[i] = strconv.FormatUint(n, 10)
	}
	return out
}

// diffRoles returns the roles in after but not before and those in before
// but not after; both inputs are sorted.
func diffRoles(before, after []uint64) (added, removed []uint64) {
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || (i < len(before) && before[i] < after[j]):
			removed = append(removed, before[i])
			i++
		case i == len(before) || after[j] < before[i]:
			added = append(added, after[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// memberIdent hashes the member fields a member.update reports besides the
// roles, so an update that changed only other fields can be skipped.
func memberIdent(nick string, u *wireUser) uint64 {
	h := fnv.New64a()
	h.Write([]byte(nick))
	if u != nil {
		for _, s := range []string{u.Username, u.GlobalName, u.Avatar} {
			h.Write([]byte{0})
			h.Write([]byte(s))
		}
	}
	return h.Sum64()
}
