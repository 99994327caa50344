package gateway

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"
)

// memberRequests schedules Request Guild Members (op 8): a guild is asked
// at most once per `every` (Discord allows one request per guild per 30 s)
// and requests on one connection are at least `gap` apart, which keeps a
// shard that backfills thousands of guilds below Discord's 120 gateway
// commands per minute with room for heartbeats.
type memberRequests struct {
	every, gap time.Duration

	mu       sync.Mutex
	queue    []string // guilds waiting, oldest first
	queued   map[string]bool
	last     map[string]time.Time // when each guild was last asked
	lastSent time.Time
	nonce    int64
	inflight map[string]string // nonce → guild, until the first chunk answers
}

func newMemberRequests(every, gap time.Duration) *memberRequests {
	return &memberRequests{every: every, gap: gap, queued: map[string]bool{}, last: map[string]time.Time{},
		inflight: map[string]string{}}
}

// add queues a request for guild; a guild already waiting is not queued twice.
func (m *memberRequests) add(guild string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.queued[guild] {
		m.queued[guild] = true
		m.queue = append(m.queue, guild)
	}
}

// next returns the guild to ask now, or how long until one may be asked
// (wait > 0), or ok false when nothing is queued.
func (m *memberRequests) next(now time.Time) (guild string, wait time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		return "", 0, false
	}
	var best time.Time
	bi := -1
	for i, g := range m.queue {
		at := m.lastSent.Add(m.gap)
		if l, ok := m.last[g]; ok && l.Add(m.every).After(at) {
			at = l.Add(m.every)
		}
		if bi < 0 || at.Before(best) {
			best, bi = at, i
		}
	}
	if best.After(now) {
		return "", best.Sub(now), true
	}
	return m.queue[bi], 0, true
}

// sent records that guild was asked at now with nonce.
func (m *memberRequests) sent(guild, nonce string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dequeue(guild)
	m.last[guild] = now
	m.lastSent = now
	m.inflight[nonce] = guild
}

func (m *memberRequests) dequeue(guild string) {
	if !m.queued[guild] {
		return
	}
	for i, g := range m.queue {
		if g == guild {
			m.queue = append(m.queue[:i], m.queue[i+1:]...)
			break
		}
	}
	delete(m.queued, guild)
}

// answered records that a chunk answering nonce arrived.
func (m *memberRequests) answered(nonce string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g, ok := m.inflight[nonce]; ok {
		delete(m.inflight, nonce)
		m.dequeue(g) // asked again after a reconnect, but the first was answered
	}
}

// requeueUnanswered queues again the requests no chunk has answered yet: one
// written just before a connection dropped may never have reached Discord.
// They wait for the per-guild interval like any other, so an answer replayed
// by the resume usually arrives first and cancels them.
func (m *memberRequests) requeueUnanswered() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for n, g := range m.inflight {
		if !m.queued[g] {
			m.queued[g] = true
			m.queue = append(m.queue, g)
		}
		delete(m.inflight, n) // a late answer no longer cancels the new request
	}
}

// newNonce returns a nonce for the next request, so that a request and the
// chunks answering it can be matched in a recording.
func (m *memberRequests) newNonce() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nonce++
	return "sw" + strconv.FormatInt(m.nonce, 36)
}

// requestMembersOp is op 8 with guild_id as one ID: discordgo's own helper
// still sends the list form that Discord has deprecated.
type requestMembersOp struct {
	Op int            `json:"op"`
	D  requestMembers `json:"d"`
}

type requestMembers struct {
	GuildID   string `json:"guild_id"`
	Query     string `json:"query"`
	Limit     int    `json:"limit"`
	Presences bool   `json:"presences"`
	Nonce     string `json:"nonce"`
}

// maybeRequestMembers queues a member request when a GUILD_CREATE does not
// list every member: Discord sends only the online ones of a large guild.
func (sh *shard) maybeRequestMembers(data json.RawMessage) {
	var g struct {
		ID          string     `json:"id"`
		Unavailable bool       `json:"unavailable"`
		Large       bool       `json:"large"`
		MemberCount int        `json:"member_count"`
		Members     []struct{} `json:"members"`
	}
	if json.Unmarshal(data, &g) != nil || g.ID == "" || g.Unavailable {
		return
	}
	if !g.Large && g.MemberCount <= len(g.Members) {
		return
	}
	sh.members.add(g.ID)
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// chunkAnswered notes the answer to a member request.
func (sh *shard) chunkAnswered(data json.RawMessage) {
	var c struct {
		Nonce string `json:"nonce"`
	}
	if json.Unmarshal(data, &c) == nil && c.Nonce != "" {
		sh.members.answered(c.Nonce)
	}
}

// requestMembers sends queued member requests as the schedule allows, while
// connected, until ctx ends.
func (sh *shard) requestMembers(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		guild, wait, ok := sh.members.next(time.Now())
		if ok && wait == 0 {
			op := requestMembersOp{Op: 8, D: requestMembers{GuildID: guild, Presences: true, Nonce: sh.members.newNonce()}}
			if err := sh.session().GatewayWriteStruct(op); err != nil {
				// Not connected: the guild stays queued until a connect.
				select {
				case <-ctx.Done():
					return
				case <-sh.connected:
				}
				continue
			}
			sh.members.sent(guild, op.D.Nonce, time.Now())
			sh.src.m.memberRequests.Inc()
			sh.log.Debug("requested guild members", "guild", guild, "nonce", op.D.Nonce)
			continue
		}
		var fire <-chan time.Time
		if ok {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-sh.wake:
		case <-fire:
		}
		timer.Stop()
	}
}
