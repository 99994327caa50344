package simulate

// Presence and voice: status, clients, activities, voice channels.

import (
	"math/bits"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

func (w *world) presence(m *member) {
	p := &event.Presence{Status: m.status()}
	p.ClientStatus.Desktop = m.clientStatus(cDesktop)
	p.ClientStatus.Mobile = m.clientStatus(cMobile)
	p.ClientStatus.Web = m.clientStatus(cWeb)
	n := 0
	if m.custom >= 0 {
		n++
	}
	if m.act != actNone {
		n++
	}
	if n > 0 {
		p.Activities = make([]event.Activity, 0, n)
		if m.custom >= 0 {
			p.Activities = append(p.Activities, event.Activity{
				Type: event.ActivityCustom, Name: "Custom Status", State: customStatuses[m.custom],
			})
		}
		if m.act != actNone {
			p.Activities = append(p.Activities, activityOf(m.act, m.actIdx))
		}
	}
	w.emit(event.KindPresenceUpdate, m.idStr, "", p)
}

// pickClient returns one of the client bits set in mask.
func (w *world) pickClient(mask uint8) uint8 {
	k := w.rng.intn(bits.OnesCount8(mask))
	for c := cDesktop; c <= cWeb; c <<= 1 {
		if mask&c != 0 {
			if k == 0 {
				return c
			}
			k--
		}
	}
	return cDesktop
}

func (w *world) toggleStatus(m *member) {
	p := w.profileOf(m)
	switch {
	case w.rng.chance(0.04):
		m.dnd = !m.dnd
	case m.idle != 0 && w.rng.chance(0.7):
		m.idle &^= w.pickClient(m.idle) // back at the keyboard
	default:
		m.idle ^= w.pickClient(m.clients)
	}
	w.presence(m)
	if m.idle != 0 {
		m.timers[tStatus] = w.after(w.rng.exp(6 * float64(msMin)))
	} else {
		m.timers[tStatus] = w.after(w.rng.exp(p.idleMean * float64(msMin)))
	}
}

// activity starts, changes or ends what the member is playing, listening
// to or watching. Music produces an update per song, which is why presence
// dominates a real guild's event stream.
func (w *world) activity(m *member) {
	p := w.profileOf(m)
	switch m.act {
	case actNone:
		switch r := w.rng.float(); {
		case r < p.listenProb:
			m.act, m.actIdx = actListen, uint8(w.rng.intn(len(songs)))
			m.actEnd = w.after(w.rng.logUniform(15, 120) * float64(msMin))
			m.timers[tActivity] = min(w.after(w.rng.between(150e3, 300e3)), m.actEnd)
		case r < p.listenProb+p.gameProb:
			m.act, m.actIdx = actGame, uint8(w.rng.intn(len(gameNames)))
			m.timers[tActivity] = w.after(w.rng.logUniform(20, 180) * float64(msMin))
		case r < p.listenProb+p.gameProb+0.05:
			m.act, m.actIdx = actWatch, uint8(w.rng.intn(len(watchNames)))
			m.timers[tActivity] = w.after(w.rng.logUniform(20, 90) * float64(msMin))
		case r < p.listenProb+p.gameProb+0.07:
			m.act = actCompete
			m.timers[tActivity] = w.after(w.rng.logUniform(20, 60) * float64(msMin))
		default:
			m.timers[tActivity] = w.after(w.rng.exp(20 * float64(msMin)))
			return
		}
	case actListen:
		if w.now >= m.actEnd {
			m.act = actNone
			m.timers[tActivity] = w.after(w.rng.exp(20 * float64(msMin)))
		} else {
			m.actIdx = uint8((int(m.actIdx) + 1 + w.rng.intn(len(songs)-1)) % len(songs))
			m.timers[tActivity] = min(w.after(w.rng.between(150e3, 300e3)), m.actEnd)
		}
	default:
		m.act = actNone
		m.timers[tActivity] = w.after(w.rng.exp(20 * float64(msMin)))
	}
	w.presence(m)
}

// client connects or disconnects a client: multi-client members juggle two
// or three; others occasionally pick up their phone for a while.
func (w *world) client(m *member) {
	p := w.profileOf(m)
	all := cDesktop | cMobile | cWeb
	n := bits.OnesCount8(m.clients)
	if p.multi {
		connect := n <= 1 || n == 2 && w.rng.chance(0.4)
		if connect {
			m.clients |= w.pickClient(all &^ m.clients)
		} else {
			m.clients &^= w.pickClient(m.clients)
		}
		m.timers[tClient] = w.after(w.rng.exp(40 * float64(msMin)))
	} else if n == 1 {
		other := cMobile
		if m.pref == cMobile {
			other = cDesktop
		}
		m.clients |= other
		m.timers[tClient] = w.after(w.rng.between(3, 25) * float64(msMin))
	} else {
		m.clients = m.pref
	}
	m.idle &= m.clients
	w.presence(m)
}

func (w *world) voiceAction(m *member) {
	p := w.profileOf(m)
	switch {
	case m.voice < 0:
		m.voice = 0
		if len(w.s.voice) > 1 && w.rng.chance(0.35) {
			m.voice = int8(1 + w.rng.intn(len(w.s.voice)-1))
		}
		m.muted = w.rng.chance(0.3)
		m.voiceEnd = w.after(w.rng.logUniform(10, 150) * float64(msMin))
		w.emit(event.KindVoiceState, m.idStr, w.s.voice[m.voice].id, &event.VoiceState{SelfMute: m.muted})
		m.timers[tVoice] = min(w.after(w.rng.exp(15*float64(msMin))), m.voiceEnd)
	case w.now >= m.voiceEnd:
		w.leaveVoice(m)
		m.timers[tVoice] = w.after(w.rng.exp(float64(msHour) / p.voicePerHour))
	default:
		m.muted = !m.muted
		w.emit(event.KindVoiceState, m.idStr, w.s.voice[m.voice].id, &event.VoiceState{SelfMute: m.muted})
		m.timers[tVoice] = min(w.after(w.rng.exp(15*float64(msMin))), m.voiceEnd)
	}
}

func (w *world) leaveVoice(m *member) {
	m.voice, m.muted = -1, false
	w.emit(event.KindVoiceState, m.idStr, "", &event.VoiceState{})
}
