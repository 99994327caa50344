package simulate

// Membership: roles, bursts, joins, leaves, bans and unbans.

import (
	"math/bits"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

func (w *world) burst(m *member) {
	if m.msgRate > 0 {
		m.burstLeft = uint8(5 + w.rng.intn(8))
		m.timers[tMsg] = w.now
	}
	m.timers[tBurst] = w.after(w.rng.exp(8 * float64(msHour)))
}

// roleChange toggles one role: screening passed for newcomers, a
// self-assigned role for most, and churn (including mutes) for suspicious
// accounts.
func (w *world) roleChange(m *member) {
	p := w.profileOf(m)
	var role int
	switch {
	case m.arch == aSuspicious && w.rng.chance(0.1):
		role = roleMuted
	case m.arch == aSuspicious && w.rng.chance(0.3):
		role = roleMember
	case m.roles&(1<<roleMember) == 0:
		role = roleMember
	default:
		role = selfAssignable[w.rng.intn(len(selfAssignable))]
	}
	u := &event.MemberUpdate{User: m.user()}
	bit := uint16(1) << role
	if m.roles&bit != 0 {
		u.RolesRemoved = []string{w.s.roles[role].id}
	} else {
		u.RolesAdded = []string{w.s.roles[role].id}
	}
	m.roles ^= bit
	u.Roles = w.roleIDs(m.roles)
	w.emit(event.KindMemberUpdate, m.idStr, "", u)
	m.timers[tRole] = never
	if p.rolesPerDay > 0 {
		m.timers[tRole] = w.after(w.rng.exp(float64(msDay) / p.rolesPerDay))
	}
}

func (w *world) roleIDs(roles uint16) []string {
	if roles == 0 {
		return nil
	}
	ids := make([]string, 0, bits.OnesCount16(roles))
	for i := range numRoles {
		if roles&(1<<i) != 0 {
			ids = append(ids, w.s.roles[i].id)
		}
	}
	return ids
}

// leave removes m from the guild, after a ban.add when banned.
func (w *world) leave(idx int32, m *member, ban bool, reason string) {
	if m.online {
		w.closeSession(m)
	}
	if ban {
		w.emit(event.KindBanAdd, m.idStr, "", &event.BanAdd{Reason: reason, User: m.user()})
	}
	w.emit(event.KindMemberLeave, m.idStr, "", &event.MemberLeave{User: m.user()})
	m.present = false
	for i := range m.timers {
		m.timers[i] = never
	}
	w.s.mu.Lock()
	if ban {
		w.truth.Banned = append(w.truth.Banned, m.idStr)
	} else {
		w.truth.Left = append(w.truth.Left, m.idStr)
	}
	w.s.mu.Unlock()
}

func (w *world) guildKey() int64 {
	return min(w.guild[gJoin], w.guild[gLeave], w.guild[gBan], w.guild[gUnban])
}

func (w *world) guildStep() {
	i := 0
	for j := 1; j < nGuildTimers; j++ {
		if w.guild[j] < w.guild[i] {
			i = j
		}
	}
	w.guild[i] = never
	switch i {
	case gJoin:
		w.join()
		w.guild[gJoin] = w.nextJoin(w.now)
	case gLeave:
		// Established members drift away now and then; newcomers and
		// suspicious accounts have their own ways out.
		for range 8 {
			j := w.randomMember(0) // never the owner
			if j >= 0 && w.members[j].arch != aSuspicious && w.members[j].arch != aNewcomer {
				w.leave(j, &w.members[j], false, "")
				break
			}
		}
		w.guild[gLeave] = w.after(1 + w.rng.exp(float64(msHour)/w.cfg.leaves))
	case gBan:
		for range 16 {
			if len(w.suspects) == 0 {
				break
			}
			j := w.suspects[w.rng.intn(len(w.suspects))]
			if m := &w.members[j]; m.present && m.msgs > 0 {
				w.leave(j, m, true, banReasons[w.rng.intn(len(banReasons))])
				if w.rng.chance(0.2) {
					w.unbans = append(w.unbans, unban{at: w.after(w.rng.between(1, 5) * float64(msDay)), idx: j})
				}
				break
			}
		}
		w.guild[gBan] = w.after(1 + w.rng.exp(float64(msHour)/w.cfg.bans))
	case gUnban:
		k := 0
		for j := range w.unbans {
			if w.unbans[j].at < w.unbans[k].at {
				k = j
			}
		}
		m := &w.members[w.unbans[k].idx]
		w.unbans = append(w.unbans[:k], w.unbans[k+1:]...)
		w.emit(event.KindBanRemove, m.idStr, "", &event.BanRemove{})
		w.s.mu.Lock()
		w.truth.Unbanned = append(w.truth.Unbanned, m.idStr)
		w.s.mu.Unlock()
	}
	w.guild[gUnban] = never
	for _, u := range w.unbans {
		w.guild[gUnban] = min(w.guild[gUnban], u.at)
	}
}

// nextJoin samples the next join after t, thinned by the rhythm.
func (w *world) nextJoin(t int64) int64 {
	if w.cfg.joins <= 0 || len(w.members) >= maxMembersEver {
		return never
	}
	mean := float64(msHour) / w.cfg.joins
	for range 1000 {
		d := w.rng.exp(mean)
		if d > 1e14 {
			return never
		}
		t += 1 + int64(d)
		if w.rng.float() < w.clk.rhythm(t) {
			break
		}
	}
	return t
}

// join adds a member: mostly newcomers, sometimes a spam account.
func (w *world) join() {
	if len(w.members) >= maxMembersEver {
		return
	}
	idx := int32(len(w.members))
	arch := uint8(aNewcomer)
	if w.cfg.mix[aSuspicious] > 0 && w.rng.chance(0.1) {
		arch = aSuspicious
	}
	w.members = append(w.members, member{})
	m := &w.members[idx]
	w.s.identity(m, int(idx), arch, w.now, &w.rng, true)
	w.initBehaviour(m)
	m.timers[tSession] = w.after(w.rng.between(3e3, 90e3))
	if arch == aNewcomer {
		m.timers[tRole] = w.after(w.rng.between(1, 15) * float64(msMin))
	}
	w.emit(event.KindMemberJoin, m.idStr, "", &event.MemberJoin{User: m.user(), Roles: w.roleIDs(m.roles)})
	w.heap.push(entry{at: m.key(), id: idx})
	if arch == aSuspicious {
		w.suspects = append(w.suspects, idx)
	}
	w.s.mu.Lock()
	w.truth.Members[m.idStr] = Archetypes()[arch]
	w.truth.Joined = append(w.truth.Joined, m.idStr)
	w.s.mu.Unlock()
}
