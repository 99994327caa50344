package simulate

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Archetype is the behaviour a simulated member was given; analytics are
// tested on how well they recover it.
type Archetype string

// The archetypes. Their behaviour is described in archetypeProfiles.
const (
	// Chatty members are online often, post a lot, type first, edit, reply and mention.
	Chatty Archetype = "chatty"
	// Regular members have normal sessions and post moderately.
	Regular Archetype = "regular"
	// Lurkers are online for normal sessions but never type or post.
	Lurker Archetype = "lurker"
	// Ghosts stay online for many hours at a time and almost never post.
	Ghost Archetype = "ghost"
	// MultiClient members are usually connected with two or three clients at once.
	MultiClient Archetype = "multi_client"
	// Suspicious members are bot-like: young accounts, metronomic messages at
	// any hour, bursts with mentions, role churn, no typing, no activities.
	Suspicious Archetype = "suspicious"
	// Newcomers joined recently or join during the simulation; some greet
	// the guild soon, some leave again.
	Newcomer Archetype = "newcomer"
)

// archetype indices, the order of Archetypes.
const (
	aChatty = iota
	aRegular
	aLurker
	aGhost
	aMulti
	aSuspicious
	aNewcomer
	numArch
)

// Archetypes lists every archetype in a stable order.
func Archetypes() []Archetype {
	return []Archetype{Chatty, Regular, Lurker, Ghost, MultiClient, Suspicious, Newcomer}
}

func archIndex(a Archetype) (int, bool) {
	for i, x := range Archetypes() {
		if x == a {
			return i, true
		}
	}
	return 0, false
}

// DefaultMix returns the default share of each archetype in the initial roster.
func DefaultMix() map[Archetype]float64 {
	return map[Archetype]float64{
		Chatty: 0.15, Regular: 0.35, Lurker: 0.25, Ghost: 0.10,
		MultiClient: 0.08, Suspicious: 0.04, Newcomer: 0.03,
	}
}

// Limits of Config.
const (
	MaxMembers       = 1_000_000
	MaxChannels      = 100
	MaxVoiceChannels = 20
	maxGuildName     = 100 // Discord's limit
	// Beyond these the simulated clock would barely advance between events.
	maxRate         = 100000 // per hour
	maxMessageScale = 1000
)

// Config describes the simulated guild. The zero value of every field means
// its default, so Config{Seed: 1} is a complete configuration.
type Config struct {
	// Seed selects the guild: the same seed and config give a byte-identical
	// event stream for the same window.
	Seed int64
	// GuildID is the guild's snowflake; empty derives one from Seed.
	GuildID string
	// GuildName defaults to "Spywatcher Demo".
	GuildName string
	// Members is the initial member count, default 200, at most MaxMembers.
	Members int
	// Channels is the number of text channels, default 8, at most MaxChannels.
	Channels int
	// VoiceChannels is the number of voice channels, default 2.
	VoiceChannels int
	// Timezone is the community's home timezone for the day/night rhythm,
	// default UTC.
	Timezone *time.Location
	// Epoch is the moment account ages are measured back from; it fixes the
	// roster's user IDs. Zero means the start of each Generate or Run, so a
	// host that restarts with a new start gets new members unless it pins
	// Epoch.
	Epoch time.Time
	// Mix is the relative share of each archetype in the initial roster;
	// nil means DefaultMix. Missing archetypes get no members.
	Mix map[Archetype]float64
	// JoinsPerHour is the rate of newcomers joining at the busiest hour of
	// the day (the rhythm scales it down at night). Zero means Members/2000
	// (at least 0.1); negative turns joins off.
	JoinsPerHour float64
	// LeavesPerHour is the rate at which established members leave. Zero
	// means Members/20000; negative turns it off.
	LeavesPerHour float64
	// BansPerHour is the rate of bans of suspicious members. Zero means
	// Members/10000 (at least 0.01); negative turns bans off.
	BansPerHour float64
	// MessageScale multiplies every member's message rate; zero means 1.
	MessageScale float64
}

// settings is a validated Config with defaults filled in.
type settings struct {
	Config
	mix    [numArch]float64
	joins  float64
	leaves float64
	bans   float64
}

func (c Config) resolve() (settings, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("simulate: "+format, args...))
	}
	s := settings{Config: c}
	switch {
	case c.Members == 0:
		s.Members = 200
	case c.Members < 0 || c.Members > MaxMembers:
		bad("members %d out of range 1..%d", c.Members, MaxMembers)
	}
	switch {
	case c.Channels == 0:
		s.Channels = 8
	case c.Channels < 0 || c.Channels > MaxChannels:
		bad("channels %d out of range 1..%d", c.Channels, MaxChannels)
	}
	switch {
	case c.VoiceChannels == 0:
		s.VoiceChannels = 2
	case c.VoiceChannels < 0 || c.VoiceChannels > MaxVoiceChannels:
		bad("voice channels %d out of range 1..%d", c.VoiceChannels, MaxVoiceChannels)
	}
	if c.GuildID != "" && !event.IsSnowflake(c.GuildID) {
		bad("guild id %q is not a Discord ID", c.GuildID)
	}
	switch {
	case c.GuildName == "":
		s.GuildName = "Spywatcher Demo"
	case len(c.GuildName) > maxGuildName || !utf8.ValidString(c.GuildName):
		bad("guild name must be valid UTF-8 of at most %d bytes", maxGuildName)
	}
	if c.Timezone == nil {
		s.Timezone = time.UTC
	}
	if !c.Epoch.IsZero() && c.Epoch.UnixMilli() < minStart {
		bad("epoch %s is before Discord existed", c.Epoch.Format(time.RFC3339))
	}
	mix := c.Mix
	if mix == nil {
		mix = DefaultMix()
	}
	keys := make([]string, 0, len(mix))
	for a := range mix {
		keys = append(keys, string(a))
	}
	sort.Strings(keys) // stable error order
	total := 0.0
	for _, k := range keys {
		a := Archetype(k)
		w := mix[a]
		i, ok := archIndex(a)
		switch {
		case !ok:
			bad("mix names unknown archetype %q", a)
		case w < 0 || math.IsNaN(w) || math.IsInf(w, 0):
			bad("mix weight of %s must be a finite number >= 0, got %v", a, w)
		default:
			s.mix[i] = w
			total += w
		}
	}
	if total == 0 && len(errs) == 0 {
		bad("mix gives every archetype weight 0")
	}
	rate := func(name string, v, def float64) float64 {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0) || v > maxRate:
			bad("%s must be a number <= %v, got %v", name, float64(maxRate), v)
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	n := float64(s.Members)
	s.joins = rate("joins per hour", c.JoinsPerHour, math.Max(0.1, n/2000))
	s.leaves = rate("leaves per hour", c.LeavesPerHour, n/20000)
	s.bans = rate("bans per hour", c.BansPerHour, math.Max(0.01, n/10000))
	switch {
	case math.IsNaN(c.MessageScale) || c.MessageScale < 0 || c.MessageScale > maxMessageScale:
		bad("message scale must be between 0 and %v, got %v", float64(maxMessageScale), c.MessageScale)
	case c.MessageScale == 0:
		s.MessageScale = 1
	}
	if len(errs) > 0 {
		return settings{}, errors.Join(errs...)
	}
	return s, nil
}

// profile is the behaviour of one archetype. Durations are in the unit the
// field name says; rates are per hour online unless noted.
type profile struct {
	gapPeak          float64 // mean hours offline between sessions at the busiest hour
	sessMin, sessMax float64 // session length in hours, log-uniform
	rhythm           bool    // follows the day/night rhythm
	msgPerHour       float64
	typeProb         float64 // typing.start before a message
	convProb         float64 // the next message follows within a minute or so
	editProb         float64
	deleteProb       float64
	replyProb        float64
	mentionProb      float64
	attachProb       float64
	multi            bool    // sessions usually use two or three clients
	extraClientProb  float64 // per session: a second client for a while
	idleMean         float64 // minutes between idle toggles; 0 never idles
	dndProb          float64 // per session
	listenProb       float64 // per activity choice
	gameProb         float64
	customProb       float64 // per session: a custom status
	voicePerHour     float64
	rolesPerDay      float64 // role changes, online or not
}

func archetypeProfiles() [numArch]profile {
	var p [numArch]profile
	p[aChatty] = profile{gapPeak: 2, sessMin: 1, sessMax: 5, rhythm: true,
		msgPerHour: 3, typeProb: 0.7, convProb: 0.3, editProb: 0.08, deleteProb: 0.03,
		replyProb: 0.3, mentionProb: 0.15, attachProb: 0.07, extraClientProb: 0.12,
		idleMean: 10, dndProb: 0.05, listenProb: 0.45, gameProb: 0.35, customProb: 0.35,
		voicePerHour: 0.12, rolesPerDay: 0.05}
	p[aRegular] = profile{gapPeak: 4, sessMin: 0.5, sessMax: 3, rhythm: true,
		msgPerHour: 1.2, typeProb: 0.6, convProb: 0.25, editProb: 0.05, deleteProb: 0.02,
		replyProb: 0.2, mentionProb: 0.08, attachProb: 0.05, extraClientProb: 0.08,
		idleMean: 10, dndProb: 0.05, listenProb: 0.35, gameProb: 0.35, customProb: 0.2,
		voicePerHour: 0.06, rolesPerDay: 0.03}
	p[aLurker] = profile{gapPeak: 4, sessMin: 0.5, sessMax: 3, rhythm: true,
		extraClientProb: 0.08, idleMean: 10, dndProb: 0.03, listenProb: 0.4, gameProb: 0.35,
		customProb: 0.15, voicePerHour: 0.02, rolesPerDay: 0.01}
	p[aGhost] = profile{gapPeak: 2, sessMin: 8, sessMax: 20, rhythm: true,
		msgPerHour: 1.0 / (7 * 24 * 0.7), typeProb: 0.5, replyProb: 0.1, attachProb: 0.02,
		extraClientProb: 0.05, idleMean: 45, dndProb: 0.1, listenProb: 0.15, gameProb: 0.2,
		customProb: 0.6, voicePerHour: 0.01, rolesPerDay: 0.01}
	p[aMulti] = profile{gapPeak: 3, sessMin: 1, sessMax: 5, rhythm: true,
		msgPerHour: 1.2, typeProb: 0.6, convProb: 0.25, editProb: 0.05, deleteProb: 0.02,
		replyProb: 0.2, mentionProb: 0.08, attachProb: 0.05, multi: true,
		idleMean: 10, dndProb: 0.05, listenProb: 0.35, gameProb: 0.35, customProb: 0.25,
		voicePerHour: 0.08, rolesPerDay: 0.03}
	// Suspicious accounts post on a fixed period (member.period) rather than
	// at msgPerHour; msgPerHour only marks them as posters.
	p[aSuspicious] = profile{gapPeak: 1, sessMin: 6, sessMax: 24, rhythm: false,
		msgPerHour: 1, deleteProb: 0.15, mentionProb: 0.25, attachProb: 0.03,
		rolesPerDay: 12}
	p[aNewcomer] = profile{gapPeak: 4, sessMin: 0.3, sessMax: 2, rhythm: true,
		msgPerHour: 0.6, typeProb: 0.7, convProb: 0.2, editProb: 0.03, deleteProb: 0.03,
		replyProb: 0.15, mentionProb: 0.05, attachProb: 0.05, extraClientProb: 0.05,
		idleMean: 10, dndProb: 0.02, listenProb: 0.3, gameProb: 0.3, customProb: 0.15,
		voicePerHour: 0.03, rolesPerDay: 0.02}
	return p
}
