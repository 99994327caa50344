package simulate

import (
	"math"
	"strconv"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// never is the time of a timer that is not set.
const never = math.MaxInt64

// guildActor is the heap id of the guild itself (joins, leaves, bans); it
// sorts before every member at equal times.
const guildActor = -1

// minStart is the earliest window start: events before 2015 fail validation.
const minStart = event.DiscordEpoch + msDay

// maxMembersEver bounds member indices to the 22 low bits of a user ID.
const maxMembersEver = 1 << 22

// Member timers, in the order ties between them are resolved.
const (
	tLife     = iota // leave the guild
	tSession         // offline: start a session; online: end it
	tMsg             // typing or posting
	tEdit            // edit or delete the last message
	tStatus          // idle/online/dnd toggle
	tActivity        // game, music, watching
	tClient          // connect or disconnect a client
	tVoice           // join, mute or leave voice
	tBurst           // suspicious: start a burst of messages
	tRole            // role change
	nTimers
)

// onlineTimers are cleared when a session ends.
var onlineTimers = [...]int{tMsg, tEdit, tStatus, tActivity, tClient, tVoice, tBurst}

// Guild timers.
const (
	gJoin = iota
	gLeave
	gBan
	gUnban
	nGuildTimers
)

// Client bits of member.clients and member.idle.
const (
	cDesktop uint8 = 1 << iota
	cMobile
	cWeb
)

// Activities besides the custom status.
const (
	actNone uint8 = iota
	actGame
	actListen
	actWatch
	actCompete
)

const recentSize = 64

type member struct {
	idStr      string
	username   string
	globalName string
	id         uint64

	timers [nTimers]int64

	msgRate  float64 // messages per online hour; 0 never posts
	period   int64   // suspicious: ms between messages
	voiceEnd int64
	actEnd   int64
	replyID  uint64 // reply target of the pending message
	editMsg  uint64
	msgs     int32
	replyTo  int32 // author of replyID, or -1

	roles     uint16
	arch      uint8
	pref      uint8 // the client used when only one is
	clients   uint8
	idle      uint8
	act       uint8
	actIdx    uint8
	custom    int8 // custom status index, -1 none
	voice     int8 // voice channel index, -1 none
	pendChan  uint8
	editChan  uint8
	burstLeft uint8

	present    bool
	online     bool
	dnd        bool
	muted      bool
	pending    bool // typed, message due at timers[tMsg]
	editDelete bool
	posted     bool
	leaves     bool // newcomer fate: leaves again
}

func (m *member) key() int64 {
	k := m.timers[0]
	for _, t := range m.timers[1:] {
		k = min(k, t)
	}
	return k
}

func (m *member) nextTimer() int {
	best := 0
	for i := 1; i < nTimers; i++ {
		if m.timers[i] < m.timers[best] {
			best = i
		}
	}
	return best
}

func (m *member) status() event.Status {
	switch {
	case m.clients == 0:
		return event.StatusOffline
	case m.dnd:
		return event.StatusDND
	case m.clients&^m.idle != 0:
		return event.StatusOnline
	}
	return event.StatusIdle
}

func (m *member) clientStatus(c uint8) event.Status {
	switch {
	case m.clients&c == 0:
		return ""
	case m.dnd:
		return event.StatusDND
	case m.idle&c != 0:
		return event.StatusIdle
	}
	return event.StatusOnline
}

func (m *member) user() *event.User {
	return &event.User{ID: m.idStr, Username: m.username, GlobalName: m.globalName}
}

type recentMsg struct {
	id     uint64
	author int32
	ch     uint8
}

type unban struct {
	at  int64
	idx int32
}

// world is the state of one Generate or Run: the roster, every actor's
// timers and the events produced by the current step.
type world struct {
	s    *Simulator
	cfg  *settings
	prof *[numArch]profile
	rng  rng
	clk  clock

	fromMs  int64
	now     int64
	nowT    time.Time
	nowTms  int64
	guildID string

	members  []member
	heap     schedule
	guild    [nGuildTimers]int64
	unbans   []unban
	suspects []int32
	recent   [recentSize]recentMsg
	recentN  int
	msgSeq   uint64

	seq      uint64
	idPrefix string
	idBuf    []byte
	buf      []byte

	out        []event.Event
	outPos     int
	setupStage int
	setupPos   int

	truth *Truth
}

// next returns the next event before limit (unix ms), or false when there
// is none.
func (w *world) next(limit int64) (event.Event, bool) {
	for w.outPos >= len(w.out) {
		clear(w.out) // drop references to delivered payloads
		w.out = w.out[:0]
		w.outPos = 0
		if w.setupStage < 3 {
			w.setup()
			continue
		}
		if len(w.heap) == 0 || w.heap[0].at >= limit {
			return event.Event{}, false
		}
		w.step()
	}
	ev := w.out[w.outPos]
	w.outPos++
	return ev, true
}

func (w *world) emit(kind event.Kind, user, channel string, d event.Data) {
	w.seq++
	b := append(w.idBuf[:0], w.idPrefix...)
	b = strconv.AppendUint(b, w.seq, 36)
	w.idBuf = b
	w.out = append(w.out, event.Event{
		ID: string(b), Kind: kind, GuildID: w.guildID,
		UserID: user, ChannelID: channel, At: w.at(), Data: d,
	})
}

// at returns w.now as a UTC time, converted once per millisecond.
func (w *world) at() time.Time {
	if w.nowTms != w.now || w.nowT.IsZero() {
		w.nowT = time.UnixMilli(w.now).UTC()
		w.nowTms = w.now
	}
	return w.nowT
}

// setup emits the guild's state at the window start in chunks: guild and
// channels, a backfilled join per member, then the presence of everyone
// online at that moment (what a gateway connection would receive first).
func (w *world) setup() {
	const chunk = 512
	s := w.s
	switch w.setupStage {
	case 0:
		w.emit(event.KindGuildUpdate, "", "", &event.GuildUpdate{
			Name: w.cfg.GuildName, OwnerID: w.members[0].idStr, MemberCount: w.cfg.Members,
		})
		for _, c := range s.channels {
			w.emit(event.KindChannelUpdate, "", c.id, &event.ChannelUpdate{
				Name: c.name, Type: c.typ, ParentID: c.parent, Position: c.position,
			})
		}
		w.setupStage, w.setupPos = 1, 0
	case 1:
		end := min(w.setupPos+chunk, w.cfg.Members)
		for i := w.setupPos; i < end; i++ {
			m := &w.members[i]
			w.emit(event.KindMemberJoin, m.idStr, "", &event.MemberJoin{
				User: m.user(), Roles: w.roleIDs(m.roles), Backfill: true,
			})
		}
		w.setupPos = end
		if end == w.cfg.Members {
			w.setupStage, w.setupPos = 2, 0
		}
	case 2:
		end := min(w.setupPos+chunk, w.cfg.Members)
		for i := w.setupPos; i < end; i++ {
			if m := &w.members[i]; m.online {
				w.presence(m)
			}
		}
		w.setupPos = end
		if end == w.cfg.Members {
			w.setupStage = 3
		}
	}
}

// step lets the earliest actor act.
func (w *world) step() {
	top := w.heap[0]
	w.now = top.at
	if top.id == guildActor {
		w.heap.pop()
		w.guildStep()
		w.heap.push(entry{at: w.guildKey(), id: guildActor})
		return
	}
	idx := top.id
	m := &w.members[idx]
	if !m.present { // removed by the guild while queued
		w.heap.pop()
		return
	}
	i := m.nextTimer()
	m.timers[i] = never
	switch i {
	case tLife:
		w.leave(idx, m, false, "")
	case tSession:
		if m.online {
			w.endSession(m)
		} else {
			w.startSession(m, 0, true)
		}
	case tMsg:
		w.message(idx, m)
	case tEdit:
		w.edit(m)
	case tStatus:
		w.toggleStatus(m)
	case tActivity:
		w.activity(m)
	case tClient:
		w.client(m)
	case tVoice:
		w.voiceAction(m)
	case tBurst:
		w.burst(m)
	case tRole:
		w.roleChange(m)
	}
	if !m.present {
		w.heap.pop()
		return
	}
	w.heap.fixTop(m.key())
}

// after returns now plus ms milliseconds, saturating far in the future so
// tiny rates cannot overflow.
func (w *world) after(ms float64) int64 {
	if !(ms < 1e14) {
		return never
	}
	return w.now + int64(max(ms, 0))
}

func (w *world) profileOf(m *member) *profile { return &w.prof[m.arch] }

// nextSessionStart samples when an offline member next comes online after
// t: a Poisson process thinned by the day/night rhythm, so sessions start
// mostly in the evening of the community's timezone.
func (w *world) nextSessionStart(m *member, t int64) int64 {
	p := w.profileOf(m)
	for range 1000 {
		t += 2*msMin + int64(w.rng.exp(p.gapPeak*float64(msHour)))
		if !p.rhythm || w.rng.float() < w.clk.rhythm(t) {
			break
		}
	}
	return t
}

func (w *world) sessionLength(m *member) int64 {
	p := w.profileOf(m)
	return int64(w.rng.logUniform(p.sessMin, p.sessMax) * float64(msHour))
}

// startSession brings m online until end (0 samples a length).
func (w *world) startSession(m *member, end int64, emit bool) {
	p := w.profileOf(m)
	if end == 0 {
		end = w.now + w.sessionLength(m)
	}
	m.online = true
	m.clients = m.pref
	if p.multi {
		switch r := w.rng.float(); {
		case r < 0.2:
			m.clients = cDesktop | cMobile | cWeb
		case r < 0.9:
			if m.pref == cMobile {
				m.clients = cMobile | cDesktop
			} else {
				m.clients = m.pref | cMobile
			}
		}
	}
	m.idle = 0
	m.dnd = w.rng.chance(p.dndProb)
	m.custom = -1
	if w.rng.chance(p.customProb) {
		m.custom = int8(w.rng.intn(len(customStatuses)))
	}
	m.act = actNone
	m.timers[tSession] = end
	if p.idleMean > 0 {
		m.timers[tStatus] = w.after(w.rng.exp(p.idleMean * float64(msMin)))
	}
	if p.listenProb+p.gameProb > 0 {
		m.timers[tActivity] = w.after(w.rng.exp(10 * float64(msMin)))
	}
	switch {
	case p.multi:
		m.timers[tClient] = w.after(w.rng.exp(40 * float64(msMin)))
	case w.rng.chance(p.extraClientProb):
		m.timers[tClient] = w.after(w.rng.float() * float64(end-w.now))
	}
	m.timers[tMsg] = w.firstMessage(m)
	if p.voicePerHour > 0 {
		m.timers[tVoice] = w.after(w.rng.exp(float64(msHour) / p.voicePerHour))
	}
	if m.arch == aSuspicious {
		m.timers[tBurst] = w.after(w.rng.exp(8 * float64(msHour)))
	}
	if emit {
		w.presence(m)
	}
}

// closeSession takes m offline: out of voice, then an offline presence.
func (w *world) closeSession(m *member) {
	if m.voice >= 0 {
		w.leaveVoice(m)
	}
	m.online = false
	m.clients, m.idle = 0, 0
	m.dnd, m.pending = false, false
	m.act, m.custom, m.burstLeft = actNone, -1, 0
	for _, t := range onlineTimers {
		m.timers[t] = never
	}
	w.presence(m)
}

func (w *world) endSession(m *member) {
	w.closeSession(m)
	m.timers[tSession] = w.nextSessionStart(m, w.now)
}

// initBehaviour sets the timers of a member present at w.now that is not
// yet online.
func (w *world) initBehaviour(m *member) {
	p := w.profileOf(m)
	m.present = true
	m.custom, m.voice, m.replyTo = -1, -1, -1
	for i := range m.timers {
		m.timers[i] = never
	}
	if p.rolesPerDay > 0 {
		m.timers[tRole] = w.after(w.rng.exp(float64(msDay) / p.rolesPerDay))
	}
	if m.arch == aNewcomer {
		if m.roles&(1<<roleMember) == 0 {
			m.timers[tRole] = w.after(w.rng.between(1, 60) * float64(msMin))
		}
		if m.leaves {
			m.timers[tLife] = w.after(w.rng.logUniform(1, 72) * float64(msHour))
		}
	}
}

// warmUp decides whether a roster member is online at the window start by
// replaying their session cycle over the two days before it, so the
// initial presences follow the same statistics as later ones.
func (w *world) warmUp(m *member) {
	t := w.now - 2*msDay
	for {
		start := w.nextSessionStart(m, t)
		if start > w.now {
			m.timers[tSession] = start
			return
		}
		end := start + w.sessionLength(m)
		if end > w.now {
			w.startSession(m, end, false)
			return
		}
		t = end
	}
}
