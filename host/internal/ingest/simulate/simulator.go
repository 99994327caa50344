package simulate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// maxSleep bounds one wait of Run so a wall-clock jump is noticed soon.
const maxSleep = time.Second

type channel struct {
	id, name, parent string
	typ              event.ChannelType
	position         int
}

type role struct{ id, name string }

// Simulator generates the events of one synthetic guild. Its methods are
// safe for concurrent use; each Generate or Run simulates independently.
type Simulator struct {
	cfg      settings
	prof     [numArch]profile
	guildID  string
	channels []channel // setup order: categories, text, voice
	text     []channel
	voice    []channel
	textCum  []float64 // cumulative popularity of text channels
	intro    int       // where newcomers say hello
	roles    [numRoles]role

	mu    sync.Mutex
	truth *Truth // of the most recent Generate or Run; guarded by mu

	submitted, rejected atomic.Uint64
	lastAt              atomic.Int64
	wakeups             atomic.Uint64 // Run's waits, so tests can catch busy loops
}

// Stats counts what Run has done, over every call.
type Stats struct {
	// Submitted counts events the sink accepted.
	Submitted uint64 `json:"submitted"`
	// Rejected counts events the sink refused as invalid.
	Rejected uint64 `json:"rejected"`
	// Clock is the At of the last accepted event: how far the simulation got.
	Clock time.Time `json:"clock,omitzero"`
}

// Channel is a channel of the simulated guild.
type Channel struct {
	ID   string            `json:"id"`
	Name string            `json:"name"`
	Type event.ChannelType `json:"type"`
}

// Role is a role of the simulated guild.
type Role struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Truth is the ground truth behind a generated stream: who was given which
// behaviour, and what the guild did to whom.
type Truth struct {
	Seed      int64     `json:"seed"`
	GuildID   string    `json:"guild_id"`
	GuildName string    `json:"guild_name"`
	OwnerID   string    `json:"owner_id,omitempty"`
	Timezone  string    `json:"timezone"`
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"` // zero for Run
	// Members maps every user ID that was ever a member to its archetype.
	Members    map[string]Archetype `json:"members"`
	Moderators []string             `json:"moderators,omitempty"`
	// Joined lists members who joined during the simulation, in order.
	Joined []string `json:"joined,omitempty"`
	// Left lists members who left on their own; Banned those banned (who
	// also got a member.leave); Unbanned those whose ban was lifted.
	Left     []string  `json:"left,omitempty"`
	Banned   []string  `json:"banned,omitempty"`
	Unbanned []string  `json:"unbanned,omitempty"`
	Channels []Channel `json:"channels"`
	Roles    []Role    `json:"roles"`
}

// Count returns how many members have archetype a.
func (t Truth) Count(a Archetype) int {
	n := 0
	for _, x := range t.Members {
		if x == a {
			n++
		}
	}
	return n
}

func (t *Truth) clone() Truth {
	c := *t
	c.Members = maps.Clone(t.Members)
	c.Moderators = slices.Clone(t.Moderators)
	c.Joined = slices.Clone(t.Joined)
	c.Left = slices.Clone(t.Left)
	c.Banned = slices.Clone(t.Banned)
	c.Unbanned = slices.Clone(t.Unbanned)
	c.Channels = slices.Clone(t.Channels)
	c.Roles = slices.Clone(t.Roles)
	return c
}

// New validates cfg, fills in defaults and lays out the guild's channels
// and roles. The roster is built per window (see Config.Epoch).
func New(cfg Config) (*Simulator, error) {
	st, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Simulator{cfg: st, prof: archetypeProfiles()}
	seed := uint64(st.Seed)
	// The guild was created some time in 2017..2019; its channels and roles
	// minutes after it, so their IDs sort the way Discord's would.
	created := time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() +
		int64(mix64(seed^0x6775696c64)%uint64(3*365*msDay))
	s.guildID = st.GuildID
	if s.guildID == "" {
		s.guildID = snowflake(created, 0)
	}
	n := uint64(0)
	newID := func() string {
		n++
		return snowflake(created+int64(n)*7919, n)
	}
	textCat := channel{id: newID(), name: "Text Channels", typ: event.ChannelCategory}
	voiceCat := channel{id: newID(), name: "Voice Channels", typ: event.ChannelCategory, position: 1}
	total := 0.0
	for i := range st.Channels {
		name := "channel-" + strconv.Itoa(i+1)
		if i < len(textChannelNames) {
			name = textChannelNames[i]
		}
		if name == "introductions" {
			s.intro = i
		}
		s.text = append(s.text, channel{id: newID(), name: name, parent: textCat.id, typ: event.ChannelText, position: i})
		total += 1 / float64(i+1) // Zipf: #general is by far the busiest
		s.textCum = append(s.textCum, total)
	}
	for i := range st.VoiceChannels {
		name := "Voice " + strconv.Itoa(i+1)
		if i < len(voiceChannelNames) {
			name = voiceChannelNames[i]
		}
		s.voice = append(s.voice, channel{id: newID(), name: name, parent: voiceCat.id, typ: event.ChannelVoice, position: i})
	}
	s.channels = append(s.channels, textCat, voiceCat)
	s.channels = append(s.channels, s.text...)
	s.channels = append(s.channels, s.voice...)
	for i := range s.roles {
		s.roles[i] = role{id: newID(), name: roleNames[i]}
	}
	return s, nil
}

// snowflake makes the Discord ID of something created at unix ms t; low
// fills the 22 bits that keep IDs of the same millisecond apart.
func snowflake(t int64, low uint64) string {
	return event.NewSnowflake(time.UnixMilli(t), low>>12, low)
}

// ceilMs rounds t up to a whole millisecond, so every event at or after
// the rounded value is also at or after t.
func ceilMs(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// Generate produces every event with At in [from, to) in time order,
// without pacing, and passes each to emit. The stream starts with the
// guild's state at from (guild, channels, a backfilled join per member,
// the presence of those online). It stops at the first error of emit or
// when ctx ends, and returns that error wrapped.
func (s *Simulator) Generate(ctx context.Context, from, to time.Time, emit func(event.Event) error) error {
	if emit == nil {
		return errors.New("simulate: generate: nil emit function")
	}
	fromMs, toMs := ceilMs(from), ceilMs(to)
	if toMs <= fromMs {
		return fmt.Errorf("simulate: generate: empty window %s .. %s", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	w, err := s.newWorld(fromMs)
	if err != nil {
		return err
	}
	w.truth.To = time.UnixMilli(toMs).UTC()
	s.publish(w)
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("simulate: generate: %w", err)
			}
		}
		ev, ok := w.next(toMs)
		if !ok {
			return nil
		}
		if err := emit(ev); err != nil {
			return fmt.Errorf("simulate: emit %s: %w", ev.Subject(), err)
		}
	}
}

// Run simulates from `from` on and submits each event to sink when the
// simulated clock reaches it. The simulated clock is
// min(from + speed×elapsed, wall clock): a from in the past replays the
// history at speed× and then continues live at 1×, and no event is ever
// submitted before its At has passed on the wall clock. The host's
// Run(ctx, sink, now-7days, 2000) therefore fills a week of history in
// about five minutes and then goes live; there is no separate Resume.
//
// Sink errors wrapping *event.ValidationError are counted (Stats.Rejected)
// and skipped; any other sink error ends Run and is returned. Run returns
// nil when ctx ends: cancellation is how it is meant to stop.
func (s *Simulator) Run(ctx context.Context, sink ingest.Sink, from time.Time, speed float64) error {
	if sink == nil {
		return errors.New("simulate: run: nil sink")
	}
	if !(speed > 0) || math.IsInf(speed, 0) {
		return fmt.Errorf("simulate: run: speed must be a finite number > 0, got %v", speed)
	}
	fromMs := ceilMs(from)
	w, err := s.newWorld(fromMs)
	if err != nil {
		return err
	}
	s.publish(w)
	start := time.Now()
	due := func(at int64) time.Time {
		replay := min(float64(at-fromMs)/speed*float64(time.Millisecond), math.MaxInt64/2)
		return start.Add(max(time.Duration(replay), time.UnixMilli(at).Sub(start)))
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ve *event.ValidationError
	for {
		if ctx.Err() != nil {
			return nil
		}
		ev, ok := w.next(never)
		if !ok { // nothing will ever happen: no members and no joins
			<-ctx.Done()
			return nil
		}
		at := ev.At.UnixMilli()
		for {
			wait := time.Until(due(at))
			if wait <= 0 {
				break
			}
			s.wakeups.Add(1)
			timer.Reset(min(wait, maxSleep))
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if err := sink.Submit(ctx, ev); err != nil {
			if errors.As(err, &ve) {
				s.rejected.Add(1)
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("simulate: submit %s: %w", ev.Subject(), err)
		}
		s.submitted.Add(1)
		s.lastAt.Store(at)
	}
}

// Stats returns Run's counters.
func (s *Simulator) Stats() Stats {
	st := Stats{Submitted: s.submitted.Load(), Rejected: s.rejected.Load()}
	if at := s.lastAt.Load(); at != 0 {
		st.Clock = time.UnixMilli(at).UTC()
	}
	return st
}

// Truth returns the ground truth of the most recent Generate or Run,
// including members who joined, left or were banned so far. Before any,
// it describes the roster at Config.Epoch, or only the guild when Epoch is
// zero (the roster then depends on the window).
func (s *Simulator) Truth() Truth {
	s.mu.Lock()
	if s.truth != nil {
		t := s.truth.clone()
		s.mu.Unlock()
		return t
	}
	s.mu.Unlock()
	if !s.cfg.Epoch.IsZero() {
		if w, err := s.newWorld(ceilMs(s.cfg.Epoch)); err == nil {
			return *w.truth
		}
	}
	return s.baseTruth()
}

func (s *Simulator) publish(w *world) {
	s.mu.Lock()
	s.truth = w.truth
	s.mu.Unlock()
}

func (s *Simulator) baseTruth() Truth {
	t := Truth{
		Seed: s.cfg.Seed, GuildID: s.guildID, GuildName: s.cfg.GuildName,
		Timezone: s.cfg.Timezone.String(), Members: map[string]Archetype{},
	}
	for _, c := range s.channels {
		t.Channels = append(t.Channels, Channel{ID: c.id, Name: c.name, Type: c.typ})
	}
	for _, r := range s.roles {
		t.Roles = append(t.Roles, Role{ID: r.id, Name: r.name})
	}
	return t
}

// newWorld builds the roster and everyone's state at fromMs.
func (s *Simulator) newWorld(fromMs int64) (*world, error) {
	if fromMs < minStart {
		return nil, fmt.Errorf("simulate: start %s is before Discord existed", time.UnixMilli(fromMs).UTC().Format(time.RFC3339))
	}
	anchor := fromMs
	if !s.cfg.Epoch.IsZero() {
		anchor = ceilMs(s.cfg.Epoch)
		if fromMs < anchor {
			return nil, fmt.Errorf("simulate: start %s is before Config.Epoch %s",
				time.UnixMilli(fromMs).UTC().Format(time.RFC3339), s.cfg.Epoch.UTC().Format(time.RFC3339))
		}
	}
	seed := uint64(s.cfg.Seed)
	w := &world{
		s: s, cfg: &s.cfg, prof: &s.prof,
		rng:      newRNG(seed ^ mix64(uint64(fromMs))),
		clk:      newClock(s.cfg.Timezone),
		fromMs:   fromMs,
		now:      fromMs,
		guildID:  s.guildID,
		idPrefix: IDPrefix + strconv.FormatUint(seed, 36) + "-" + strconv.FormatInt(fromMs, 36) + "-",
	}
	s.buildRoster(w, anchor)
	w.heap = make(schedule, 0, len(w.members)+len(w.members)/8+16)
	for i := range w.members {
		m := &w.members[i]
		w.initBehaviour(m)
		w.warmUp(m)
		if m.arch == aSuspicious {
			w.suspects = append(w.suspects, int32(i))
		}
		w.heap = append(w.heap, entry{at: m.key(), id: int32(i)})
	}
	w.guild = [nGuildTimers]int64{never, never, never, never}
	w.guild[gJoin] = w.nextJoin(fromMs)
	if s.cfg.leaves > 0 {
		w.guild[gLeave] = w.after(w.rng.exp(float64(msHour) / s.cfg.leaves))
	}
	if s.cfg.bans > 0 {
		w.guild[gBan] = w.after(w.rng.exp(float64(msHour) / s.cfg.bans))
	}
	w.heap = append(w.heap, entry{at: w.guildKey(), id: guildActor})
	w.heap.init()

	t := s.baseTruth()
	t.From = time.UnixMilli(fromMs).UTC()
	t.OwnerID = w.members[0].idStr
	t.Members = make(map[string]Archetype, len(w.members))
	names := Archetypes()
	for i := range w.members {
		m := &w.members[i]
		t.Members[m.idStr] = names[m.arch]
		if m.roles&(1<<roleModerator) != 0 {
			t.Moderators = append(t.Moderators, m.idStr)
		}
	}
	w.truth = &t
	return w, nil
}

// buildRoster creates the initial members. It draws from its own generator
// seeded by Seed alone, so the roster depends only on Seed, the config and
// anchor (the moment account ages are measured from).
func (s *Simulator) buildRoster(w *world, anchor int64) {
	n := s.cfg.Members
	r := newRNG(uint64(s.cfg.Seed) ^ 0x726f73746572)
	archs := make([]uint8, 0, n)
	for a, c := range apportion(n, s.cfg.mix) {
		for range c {
			archs = append(archs, uint8(a))
		}
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		archs[i], archs[j] = archs[j], archs[i]
	}
	// The owner is an established, active member.
	if archs[0] != aChatty && archs[0] != aRegular {
		for j, a := range archs {
			if a == aChatty || a == aRegular {
				archs[0], archs[j] = archs[j], archs[0]
				break
			}
		}
	}
	w.members = make([]member, n, n+n/8+16)
	for i := range w.members {
		s.identity(&w.members[i], i, archs[i], anchor, &r, false)
	}
	w.members[0].roles |= 1<<roleOwner | 1<<roleMember
}

// apportion splits n members by weight (largest remainder), giving every
// archetype with a positive weight at least one member when n allows.
func apportion(n int, weights [numArch]float64) [numArch]int {
	var counts [numArch]int
	total := 0.0
	for _, w := range weights {
		total += w
	}
	var rem [numArch]float64
	given := 0
	for i, w := range weights {
		q := float64(n) * w / total
		counts[i] = int(q)
		rem[i] = q - float64(counts[i])
		given += counts[i]
	}
	for ; given < n; given++ {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		counts[best]++
		rem[best] = -1
	}
	for i, w := range weights {
		if w > 0 && counts[i] == 0 {
			big := 0
			for j := range counts {
				if counts[j] > counts[big] {
					big = j
				}
			}
			if counts[big] > 1 {
				counts[big]--
				counts[i]++
			}
		}
	}
	return counts
}

// identity gives m its user ID, names, roles and personal rates. Joiners
// (joined during the simulation) start without roles.
func (s *Simulator) identity(m *member, idx int, arch uint8, at int64, r *rng, joiner bool) {
	p := &s.prof[arch]
	var days float64
	switch {
	case arch == aSuspicious && joiner:
		days = r.between(0.3, 20)
	case arch == aSuspicious:
		days = r.between(1, 45)
	case arch == aNewcomer && r.chance(0.45):
		days = r.logUniform(3, 365)
	case r.chance(0.08):
		days = r.between(60, 365)
	default:
		days = r.between(365, 8*365)
	}
	created := min(max(at-int64(days*float64(msDay)), event.DiscordEpoch+1000), at)
	*m = member{arch: arch, custom: -1, voice: -1, replyTo: -1}
	m.id = uint64(created-event.DiscordEpoch)<<22 | uint64(idx)&0x3fffff
	m.idStr = strconv.FormatUint(m.id, 10)

	if arch == aSuspicious {
		// Throwaway accounts: generated handles, no display name.
		m.username = "user" + strconv.Itoa(10000000+r.intn(90000000))
	} else {
		adj := nameAdjectives[r.intn(len(nameAdjectives))]
		noun := nameNouns[r.intn(len(nameNouns))]
		sep := [...]string{"", "_", "."}[r.intn(3)]
		m.username = adj + sep + noun + strconv.Itoa(idx)
		if r.chance(0.7) {
			m.globalName = title(adj) + " " + title(noun)
		}
	}
	switch x := r.float(); {
	case arch == aSuspicious || x < 0.55:
		m.pref = cDesktop
	case x < 0.9:
		m.pref = cMobile
	default:
		m.pref = cWeb
	}

	if !joiner {
		switch arch {
		case aSuspicious:
			if r.chance(0.6) {
				m.roles |= 1 << roleMember
			}
		case aNewcomer:
			if r.chance(0.5) {
				m.roles |= 1 << roleMember
			}
		default:
			m.roles |= 1 << roleMember
		}
		if (arch == aChatty || arch == aRegular) && r.chance(0.04) {
			m.roles |= 1 << roleModerator
		}
		if arch == aChatty && r.chance(0.8) || (arch == aRegular || arch == aMulti) && r.chance(0.4) {
			m.roles |= 1 << roleRegular
		}
		if days > 5*365 && r.chance(0.5) {
			m.roles |= 1 << roleVeteran
		}
		if arch != aSuspicious {
			for _, role := range selfAssignable {
				if r.chance(0.2) {
					m.roles |= 1 << role
				}
			}
		}
	}

	scale := s.cfg.MessageScale
	m.msgRate = p.msgPerHour * scale * r.logUniform(0.5, 2)
	if arch == aGhost {
		m.msgRate = p.msgPerHour * scale * r.logUniform(0.7, 1.4)
	}
	if arch == aSuspicious {
		m.period = int64(min(r.between(12, 40)*float64(msMin)/scale, 1e14))
	}
	if arch == aNewcomer {
		if !r.chance(0.6) {
			m.msgRate = 0 // never says a word
		}
		m.leaves = r.chance(0.3)
	}
}

func title(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// IDPrefix starts the ID of every event the simulator makes, which is how
// `spywatcher replay` recognises a simulated guild in a file and configures
// it like `serve --simulate` does (see DemoTracking).
const IDPrefix = "sim-"

// IsSimulated reports whether an event ID was made by the simulator.
func IsSimulated(eventID string) bool { return strings.HasPrefix(eventID, IDPrefix) }
