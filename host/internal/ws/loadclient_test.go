package ws

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestLoadClient is the benchmark's load client; it runs only when the
// benchmark starts it. It shares the machine's cores with the hub, so it
// must cost as little as possible per frame, or it would measure itself:
// it speaks WebSocket over raw non-blocking sockets, and one epoll loop
// per core reads each ready socket with one read system call and parses
// the frames in place (no goroutine per connection, no netpoller wake-up,
// no second read that finds the socket empty). Every compact presence
// update of every frame is counted, and its delay (receive time minus its
// "at", in whole milliseconds, so rounded up) goes into a histogram.
func TestLoadClient(t *testing.T) {
	if os.Getenv("SPYWATCHER_LOAD_CLIENT") != "1" {
		t.Skip("the load client of BenchmarkWSFanout (started by it)")
	}
	u, err := url.Parse(os.Getenv("SPYWATCHER_LOAD_URL"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := net.ResolveTCPAddr("tcp4", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	conns := envInt("SPYWATCHER_LOAD_CONNS", 100)
	loops := make([]*loadLoop, runtime.GOMAXPROCS(0))
	for i := range loops {
		if loops[i], err = newLoadLoop(); err != nil {
			t.Fatal(err)
		}
	}
	var hist latencyHist
	var subscribed atomic.Int64
	sub := []byte(`{"type":"subscribe","guild_id":"` + guildA + `"}`)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // dial a few at a time
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			fd, rest, err := rawDialFD(addr, u.Host, "/api/v1/ws", "mod")
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			if err := writeClientFrame(fdWriter(fd), 0x1, sub); err != nil {
				t.Errorf("subscribe: %v", err)
				return
			}
			if err := loops[i%len(loops)].add(fd, rest); err != nil {
				t.Errorf("epoll: %v", err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stop := make(chan struct{})
	var done sync.WaitGroup
	for _, l := range loops {
		done.Add(1)
		go func() { defer done.Done(); l.run(stop, &hist, &subscribed) }()
	}
	for subscribed.Load() < int64(conns) {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	cpu0 := cpuTime()
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the benchmark closes stdin
	cpu := cpuTime() - cpu0
	close(stop)
	done.Wait()
	res := hist.result()
	res.CPU = cpu.Nanoseconds()
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}

var pollPause = time.Duration(envInt("SPYWATCHER_LOAD_PAUSE_US", 1000)) * time.Microsecond

// loadLoop reads the sockets registered with its epoll instance. Sockets
// are added before it runs (conns is indexed by descriptor).
type loadLoop struct {
	ep    int
	mu    sync.Mutex
	conns []*loadConn
	buf   []byte
}

// loadConn is one connection: bytes of a frame not complete yet, and
// whether its subscription was confirmed.
type loadConn struct {
	fd         int
	partial    []byte
	subscribed bool
}

func newLoadLoop() (*loadLoop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &loadLoop{ep: ep, buf: make([]byte, 1<<20)}, nil
}

func (l *loadLoop) add(fd int, rest []byte) error {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return err
	}
	l.mu.Lock()
	if fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*loadConn, fd+1-len(l.conns))...)
	}
	l.conns[fd] = &loadConn{fd: fd, partial: rest}
	l.mu.Unlock()
	return syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
}

// run reads ready sockets (level-triggered: one read each per wake-up)
// until stop is closed, then closes them.
func (l *loadLoop) run(stop <-chan struct{}, hist *latencyHist, subscribed *atomic.Int64) {
	events := make([]syscall.EpollEvent, 256)
	for {
		select {
		case <-stop:
			for _, c := range l.conns {
				if c != nil {
					syscall.Close(c.fd)
				}
			}
			return
		default:
		}
		n, err := syscall.EpollWait(l.ep, events, 100)
		if err != nil && err != syscall.EINTR {
			panic(err)
		}
		for _, ev := range events[:max(n, 0)] {
			l.read(l.conns[ev.Fd], hist, subscribed)
		}
		if n < len(events)/4 && pollPause > 0 {
			// Few sockets were ready: let more become ready before asking
			// again. A loop asleep in epoll_wait makes every write to one of
			// its sockets wake it, a cost the hub's write pays.
			time.Sleep(pollPause)
		}
	}
}

func (l *loadLoop) read(c *loadConn, hist *latencyHist, subscribed *atomic.Int64) {
	buf := append(l.buf[:0], c.partial...)
	n, err := syscall.Read(c.fd, buf[len(buf):cap(buf)])
	if n <= 0 {
		if err != syscall.EAGAIN && err != syscall.EINTR {
			_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, c.fd, nil)
		}
		return
	}
	now := time.Now().UnixNano()
	buf = buf[:len(buf)+n]
	for {
		op, payload, size := parseServerFrame(buf)
		if size == 0 {
			break
		}
		buf = buf[size:]
		switch op {
		case 0x9: // ping
			_ = writeClientFrame(fdWriter(c.fd), 0xA, payload)
		case 0x1:
			if !c.subscribed {
				if bytes.Contains(payload, []byte(`"subscribed"`)) {
					c.subscribed = true
					subscribed.Add(1)
				}
				continue
			}
			hist.frame(payload, now)
		}
	}
	if len(buf) > 0 && len(buf)*2 > cap(l.buf) { // a frame longer than the buffer: grow it
		l.buf = make([]byte, 4*cap(l.buf))
	}
	c.partial = append(c.partial[:0], buf...)
}

// parseServerFrame splits the first complete unmasked frame off b; size is
// 0 when b does not hold one yet.
func parseServerFrame(b []byte) (op byte, payload []byte, size int) {
	if len(b) < 2 {
		return 0, nil, 0
	}
	n, h := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil, 0
		}
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil, 0
		}
		n, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if uint64(len(b)-h) < n {
		return 0, nil, 0
	}
	return b[0] & 0x0f, b[h : h+int(n)], h + int(n)
}

type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	for written := 0; written < len(p); {
		n, err := syscall.Write(int(w), p[written:])
		if err == syscall.EAGAIN || err == syscall.EINTR {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return len(p), nil
}

// rawDialFD opens a WebSocket connection with a Bearer token on a blocking
// socket of its own (outside Go's netpoller); rest is what followed the
// handshake's answer.
func rawDialFD(addr *net.TCPAddr, host, path, token string) (fd int, rest []byte, err error) {
	fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	defer func() {
		if err != nil {
			syscall.Close(fd)
		}
	}()
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	if err = syscall.Connect(fd, sa); err != nil {
		return -1, nil, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n" +
		"Authorization: Bearer " + token + "\r\n\r\n"
	if _, err = fdWriter(fd).Write([]byte(req)); err != nil {
		return -1, nil, err
	}
	var resp []byte
	buf := make([]byte, 4096)
	for {
		n, rerr := syscall.Read(fd, buf)
		if n <= 0 {
			return -1, nil, fmt.Errorf("handshake: %v", rerr)
		}
		resp = append(resp, buf[:n]...)
		if i := bytes.Index(resp, []byte("\r\n\r\n")); i >= 0 {
			if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")) {
				return -1, nil, fmt.Errorf("upgrade answered %q", resp[:bytes.IndexByte(resp, '\r')])
			}
			return fd, append([]byte(nil), resp[i+4:]...), nil
		}
	}
}
