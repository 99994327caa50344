package simulate

import (
	"math"
	"math/bits"
)

// rng is wyrand: one word of state, fast, and (unlike math/rand's helpers)
// guaranteed never to change between Go releases, which determinism needs.
type rng struct{ s uint64 }

func newRNG(seed uint64) rng { return rng{s: mix64(seed)} }

// mix64 is the splitmix64 finaliser, used to derive independent seeds.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (r *rng) u64() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.u64()>>11) / (1 << 53) }

// intn returns a number in [0, n) for 0 < n < 2^32.
func (r *rng) intn(n int) int { return int(((r.u64() >> 32) * uint64(n)) >> 32) }

func (r *rng) chance(p float64) bool { return p > 0 && r.float() < p }

// between returns a number in [a, b).
func (r *rng) between(a, b float64) float64 { return a + (b-a)*r.float() }

// logUniform spreads values evenly over orders of magnitude, which suits
// durations such as session lengths (many short, a few long).
func (r *rng) logUniform(a, b float64) float64 {
	return a * math.Exp(math.Log(b/a)*r.float())
}

// exp returns an exponentially distributed number with the given mean.
func (r *rng) exp(mean float64) float64 { return -mean * math.Log(1-r.float()) }

// schedule is a binary min-heap of actors keyed by their next action time.
// Ties are broken by actor id so the order never depends on heap history.
type schedule []entry

type entry struct {
	at int64 // unix ms
	id int32 // member index, or guildActor
}

func (a entry) less(b entry) bool { return a.at < b.at || a.at == b.at && a.id < b.id }

func (h *schedule) push(e entry) {
	*h = append(*h, e)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q[i].less(q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

// pop removes the top entry.
func (h *schedule) pop() {
	q := *h
	n := len(q) - 1
	q[0] = q[n]
	*h = q[:n]
	if n > 0 {
		h.down(0)
	}
}

// fixTop gives the top entry a new (later) time.
func (h *schedule) fixTop(at int64) {
	(*h)[0].at = at
	h.down(0)
}

func (h *schedule) down(i int) {
	q := *h
	n := len(q)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && q[r].less(q[l]) {
			j = r
		}
		if !q[j].less(q[i]) {
			return
		}
		q[i], q[j] = q[j], q[i]
		i = j
	}
}

func (h *schedule) init() {
	for i := len(*h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}
