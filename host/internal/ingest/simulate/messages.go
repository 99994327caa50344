package simulate

// Messages: typing, posting, replies, mentions, edits and deletions.

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// firstMessage schedules the first message of a session.
func (w *world) firstMessage(m *member) int64 {
	switch {
	case m.msgRate <= 0:
		return never
	case m.arch == aSuspicious:
		return w.now + int64(w.rng.intn(int(min(m.period, math.MaxInt32))))
	case m.arch == aNewcomer && !m.posted:
		return w.after(w.rng.between(1, 20) * float64(msMin))
	}
	return w.after(w.rng.exp(w.messageGap(m)))
}

// messageGap is the mean ms between messages at this hour: the few who
// are still up at night chat less than the evening crowd.
func (w *world) messageGap(m *member) float64 {
	return float64(msHour) / (m.msgRate * (0.3 + 0.7*w.clk.rhythm(w.now)))
}

func (w *world) scheduleMessage(m *member) {
	p := w.profileOf(m)
	var t int64
	switch {
	case m.msgRate <= 0:
		t = never
	case m.arch == aSuspicious && m.burstLeft > 0:
		t = w.now + 700 + int64(w.rng.intn(1300))
	case m.arch == aSuspicious:
		// Metronomic: the same period with a few hundred ms of jitter.
		t = w.now + max(m.period+int64(w.rng.intn(501))-250, 1)
	case w.rng.chance(p.convProb):
		t = w.after(5000 + w.rng.exp(50000))
	default:
		t = w.after(w.rng.exp(w.messageGap(m)))
	}
	m.timers[tMsg] = t
}

func (w *world) message(idx int32, m *member) {
	if m.pending {
		m.pending = false
		w.post(idx, m, m.pendChan, m.replyID, m.replyTo)
		w.scheduleMessage(m)
		return
	}
	p := w.profileOf(m)
	ch, replyID, replyTo := w.pickTarget(idx, m)
	if w.rng.chance(p.typeProb) {
		w.emit(event.KindTypingStart, m.idStr, w.s.text[ch].id, &event.TypingStart{})
		m.pending = true
		m.pendChan, m.replyID, m.replyTo = ch, replyID, replyTo
		m.timers[tMsg] = w.after(w.rng.between(1500, 15000))
		return
	}
	w.post(idx, m, ch, replyID, replyTo)
	w.scheduleMessage(m)
}

// pickTarget chooses the channel of the next message and, sometimes, a
// recent message of someone else to reply to.
func (w *world) pickTarget(idx int32, m *member) (ch uint8, replyID uint64, replyTo int32) {
	switch {
	case m.arch == aSuspicious:
		return 0, 0, -1 // spam goes to #general
	case m.arch == aNewcomer && !m.posted:
		return uint8(w.s.intro), 0, -1
	}
	if w.recentN > 0 && w.rng.chance(w.profileOf(m).replyProb) {
		k := w.rng.intn(min(w.recentN, 24))
		r := w.recent[(w.recentN-1-k)%recentSize]
		if r.author != idx {
			return r.ch, r.id, r.author
		}
	}
	return w.pickChannel(), 0, -1
}

func (w *world) pickChannel() uint8 {
	x := w.rng.float() * w.s.textCum[len(w.s.textCum)-1]
	for i, c := range w.s.textCum {
		if x < c {
			return uint8(i)
		}
	}
	return 0
}

// randomMember returns a present member other than not, or -1.
func (w *world) randomMember(not int32) int32 {
	for range 8 {
		j := int32(w.rng.intn(len(w.members)))
		if j != not && w.members[j].present {
			return j
		}
	}
	return -1
}

func (w *world) post(idx int32, m *member, ch uint8, replyID uint64, replyTo int32) {
	p := w.profileOf(m)
	w.msgSeq++
	id := uint64(w.now-event.DiscordEpoch)<<22 | w.msgSeq&0x3fffff
	var mentions []string
	if replyTo >= 0 && w.members[replyTo].present {
		mentions = append(mentions, w.members[replyTo].idStr) // reply ping
	}
	pings := len(mentions)
	n := 0
	switch {
	case m.arch == aSuspicious && m.burstLeft > 0:
		n = 2 + w.rng.intn(3)
	case w.rng.chance(p.mentionProb):
		n = 1
	}
	for range n {
		if j := w.randomMember(idx); j >= 0 {
			mentions = append(mentions, w.members[j].idStr)
		}
	}
	b := w.buf[:0]
	for _, u := range mentions[pings:] {
		b = append(b, "<@"...)
		b = append(b, u...)
		b = append(b, "> "...)
	}
	switch {
	case m.arch == aSuspicious:
		b = append(b, spamLines[w.rng.intn(len(spamLines))]...)
	case m.arch == aNewcomer && !m.posted:
		b = append(b, greetings[w.rng.intn(len(greetings))]...)
	default:
		b = w.sentence(b)
	}
	attachments := 0
	if w.rng.chance(p.attachProb) {
		attachments = 1
		if w.rng.chance(0.2) {
			attachments += 1 + w.rng.intn(3)
		}
		if n == 0 && w.rng.chance(0.3) {
			b = b[:0] // an image on its own
		}
	}
	w.buf = b
	content := string(b)
	d := &event.MessageCreate{
		MessageID:   strconv.FormatUint(id, 10),
		Content:     content,
		Length:      utf8.RuneCountInString(content),
		Attachments: attachments,
		Mentions:    mentions,
		User:        m.user(),
	}
	if replyID != 0 {
		d.ReplyTo = strconv.FormatUint(replyID, 10)
	}
	w.emit(event.KindMessageCreate, m.idStr, w.s.text[ch].id, d)
	w.recent[w.recentN%recentSize] = recentMsg{id: id, author: idx, ch: ch}
	w.recentN++
	m.msgs++
	m.posted = true
	if m.burstLeft > 0 {
		m.burstLeft--
	}
	if m.timers[tEdit] == never {
		switch {
		case w.rng.chance(p.editProb):
			m.editMsg, m.editChan, m.editDelete = id, ch, false
			m.timers[tEdit] = w.after(w.rng.between(15e3, 8*60e3))
		case w.rng.chance(p.deleteProb):
			m.editMsg, m.editChan, m.editDelete = id, ch, true
			m.timers[tEdit] = w.after(w.rng.between(5e3, 20*60e3))
		}
	}
}

// sentence appends a short synthetic sentence to b.
func (w *world) sentence(b []byte) []byte {
	n := 2 + w.rng.intn(6)
	if w.rng.chance(0.3) {
		n += w.rng.intn(10)
	}
	start := len(b)
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, sentenceWords[w.rng.intn(len(sentenceWords))]...)
	}
	if c := b[start]; c >= 'a' && c <= 'z' {
		b[start] = c - 'a' + 'A'
	}
	return append(b, sentenceEnds[w.rng.intn(len(sentenceEnds))]...)
}

// edit edits or deletes the member's message chosen in post. Deletions
// carry no user: Discord does not say who deleted a message.
func (w *world) edit(m *member) {
	msgID := strconv.FormatUint(m.editMsg, 10)
	ch := w.s.text[m.editChan].id
	if m.editDelete {
		w.emit(event.KindMessageDelete, "", ch, &event.MessageDelete{MessageID: msgID})
		return
	}
	w.buf = w.sentence(w.buf[:0])
	content := string(w.buf)
	w.emit(event.KindMessageUpdate, m.idStr, ch, &event.MessageUpdate{
		MessageID: msgID, Content: content, Length: utf8.RuneCountInString(content), EditedAt: w.at(),
	})
}
