package ws

import (
	"math"
	"net"
	"sync"
	"syscall"
	"time"
)

// Writing. Frames are built once and shared: a connection's outbox holds
// the frames waiting for it (server frames are unmasked, so the same bytes
// go to every subscriber). A few sweepers, one per core, each own a share
// of the connections and write, for every connection marked ready, all its
// waiting frames in one non-blocking write system call. Nothing else runs
// per connection per frame: no writer goroutine to wake, no channel, no
// library call. A connection whose socket would block (its client reads
// slower than we write) is handed to a goroutine of its own, which writes
// what is left blocking, under the watchdog's WriteTimeout, until the
// outbox is empty, and hands the connection back; the sweeper meanwhile
// goes on with the others.
type sweeper struct {
	id    int // its index in Hub.sweepers
	mu    sync.Mutex
	ready []*conn
	spare []*conn
	wake  chan struct{}
	buf   []byte // merging several frames into one write
	// frames and writes are counted per pass, not per write.
	frames, writes int
	m              *metrics
	// gap is Config.MinWriteInterval. A connection just written waits in
	// cool (oldest first: every entry waits the same gap) until then;
	// frames queued meanwhile go out together when it is released.
	gap      time.Duration
	cool     []cooling
	coolHead int
}

type cooling struct {
	c   *conn
	due int64 // Unix ns
}

func newSweeper(id int, m *metrics, gap time.Duration) *sweeper {
	return &sweeper{id: id, m: m, gap: gap, wake: make(chan struct{}, 1)}
}

// mark queues connections that have frames to write.
func (s *sweeper) mark(cs ...*conn) {
	s.mu.Lock()
	idle := len(s.ready) == 0
	s.ready = append(s.ready, cs...)
	s.mu.Unlock()
	if idle {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run writes until stop is closed, then writes what was marked before that
// (close frames at shutdown) and returns.
func (s *sweeper) run(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var due <-chan time.Time
		if s.coolHead < len(s.cool) {
			timer.Reset(time.Duration(s.cool[s.coolHead].due - time.Now().UnixNano()))
			due = timer.C
		}
		select {
		case <-s.wake:
		case <-due:
		case <-stop:
			s.gap = 0
			s.release(math.MaxInt64)
			s.pass()
			return
		}
		timer.Stop()
		// Within a millisecond is due enough: one wake-up releases a run
		// of connections instead of one each.
		s.release(time.Now().Add(time.Millisecond).UnixNano())
		s.pass()
	}
}

// release ends the wait of the connections due by until, marking those
// with frames queued meanwhile.
func (s *sweeper) release(until int64) {
	var ready []*conn
	for s.coolHead < len(s.cool) && s.cool[s.coolHead].due <= until {
		c := s.cool[s.coolHead].c
		s.cool[s.coolHead] = cooling{}
		s.coolHead++
		c.omu.Lock()
		c.cooling = false
		mark := len(c.out) > 0 && !c.queued && !c.slow && !c.dead
		c.queued = c.queued || mark
		c.omu.Unlock()
		if mark {
			ready = append(ready, c)
		}
	}
	if s.coolHead == len(s.cool) {
		s.cool, s.coolHead = s.cool[:0], 0
	} else if s.coolHead > len(s.cool)/2 {
		n := copy(s.cool, s.cool[s.coolHead:])
		clear(s.cool[n:])
		s.cool, s.coolHead = s.cool[:n], 0
	}
	if len(ready) > 0 {
		s.mark(ready...)
	}
}

// pass writes every marked connection, and those marked meanwhile, in
// the order they were marked.
func (s *sweeper) pass() {
	for {
		s.mu.Lock()
		batch := s.ready
		s.ready = s.spare[:0]
		s.mu.Unlock()
		if len(batch) == 0 {
			s.spare = batch
			s.m.frames.Add(float64(s.frames))
			s.m.writes.Add(float64(s.writes))
			s.frames, s.writes = 0, 0
			return
		}
		for i, c := range batch {
			s.send(c)
			batch[i] = nil
		}
		s.spare = batch
		if cap(s.buf) > maxMerge {
			s.buf = nil // do not keep a burst's buffer
		}
	}
}

// maxMerge bounds what one write carries; more waits for the next.
const maxMerge = 1 << 20

// send writes c's waiting frames without blocking.
func (s *sweeper) send(c *conn) {
	c.omu.Lock()
	c.queued = false
	if c.slow || c.dead || c.cooling || len(c.out) == 0 {
		c.omu.Unlock()
		return
	}
	p, frames, closing, merged := c.takeLocked(&s.buf)
	s.frames += frames
	if len(c.out) > 0 { // more than one write's worth: the rest next
		c.queued = true
		defer s.mark(c)
	} else if s.gap > 0 {
		c.cooling = true
		s.cool = append(s.cool, cooling{c: c, due: time.Now().Add(s.gap).UnixNano()})
	}
	c.omu.Unlock()

	n := 0
	if c.fd >= 0 {
		var err error
		n, err = c.writeNow(p)
		if err != nil {
			c.die("write_failed")
			return
		}
		if n == len(p) {
			s.writes++
			if closing {
				c.closeSent()
			}
			return
		}
	}
	// The socket is full (or cannot be written without blocking): the
	// rest goes to a goroutine of the connection's own. A shared frame is
	// never modified, so only a merge buffer needs copying.
	rest := p[n:]
	if merged {
		rest = append([]byte(nil), rest...)
	}
	c.omu.Lock()
	c.slow = true
	c.omu.Unlock()
	go c.drain(rest, closing)
}

// takeLocked empties the outbox into one payload of n frames (c.omu
// held): the frame itself when one waits, else the frames copied into *buf
// (merged). closing is set when the last frame is the close frame.
func (c *conn) takeLocked(buf *[]byte) (p []byte, n int, closing, merged bool) {
	closing = c.closing
	if len(c.out) == 1 {
		p = c.out[0]
		c.out[0] = nil
		c.out = c.out[:0]
		return p, 1, closing, false
	}
	b := (*buf)[:0]
	k := 0
	for ; k < len(c.out) && (k == 0 || len(b)+len(c.out[k]) <= maxMerge); k++ {
		b = append(b, c.out[k]...)
	}
	*buf = b
	if k < len(c.out) { // the rest waits for the next write
		closing = false
		left := copy(c.out, c.out[k:])
		clear(c.out[left:])
		c.out = c.out[:left]
	} else {
		clear(c.out)
		c.out = c.out[:0]
	}
	return b, k, closing, true
}

// writeNow is one non-blocking write system call on the socket's
// descriptor: how much of p went out. A full socket is not an error (n is
// short). It goes around the net package's own write path (a lock, a
// deadline check and a closure per call, an eighth of the hub's CPU at
// 5,000 connections); wmu keeps die from closing the descriptor, whose
// number could then be reused, during the call.
func (c *conn) writeNow(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.fdClosed {
		return 0, net.ErrClosed
	}
	for {
		n, err := syscall.Write(c.fd, p)
		switch err {
		case nil:
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil
		}
		return 0, err
	}
}

// drain writes p blocking, then whatever waits in the outbox, until it is
// empty; then the sweeper has the connection again. The watchdog closes
// the socket when one write takes longer than WriteTimeout.
func (c *conn) drain(p []byte, closing bool) {
	var buf []byte
	for {
		for len(p) > 0 {
			c.writing.Store(time.Now().UnixNano())
			n, err := c.nc.Write(p)
			c.writing.Store(0)
			if err != nil {
				c.die("write_failed")
				return
			}
			p = p[n:]
		}
		c.h.m.writes.Inc()
		if closing {
			c.closeSent()
		}
		c.omu.Lock()
		if c.dead || len(c.out) == 0 {
			c.slow = false
			c.omu.Unlock()
			return
		}
		var frames int
		p, frames, closing, _ = c.takeLocked(&buf)
		c.omu.Unlock()
		c.h.m.frames.Add(float64(frames))
	}
}
