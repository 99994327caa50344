package ws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/bits"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// BenchmarkWSFanout measures event → client delivery: a hub in this process
// fans presence events out to many WebSocket clients, which run in a child
// process (the load client, TestLoadClient) so that the hub's memory and CPU
// are its own. Each event carries its publish time; the client records the
// delay when the frame arrives. Settings: SPYWATCHER_BENCH_WS_CONNS (5000),
// SPYWATCHER_BENCH_WS_RATE events/s (1000), SPYWATCHER_BENCH_WS_SECONDS (20),
// SPYWATCHER_BENCH_WS_BATCH events per publish (20, like a pipeline flush),
// SPYWATCHER_BENCH_WS_GAP_MS the hub's MinWriteInterval (50);
// SPYWATCHER_BENCH_WS_CLIENT_PROFILE a file for the load client's CPU profile.
func BenchmarkWSFanout(b *testing.B) {
	conns := envInt("SPYWATCHER_BENCH_WS_CONNS", 5000)
	rate := envInt("SPYWATCHER_BENCH_WS_RATE", 1000)
	seconds := envInt("SPYWATCHER_BENCH_WS_SECONDS", 20)
	per := envInt("SPYWATCHER_BENCH_WS_BATCH", 20)
	for i := 0; i < b.N; i++ {
		az := &fakeAuthz{roles: map[string]map[string]string{}}
		az.set("user:mod", guildA, "moderator")
		bl := bus.NewLocal()
		h, err := New(Config{Auth: fakeAuth{tokens: map[string]auth.Principal{"mod": {Kind: auth.KindUser, ID: "mod", Subject: "user:mod"}}}, Authz: az, MinWriteInterval: time.Duration(envInt("SPYWATCHER_BENCH_WS_GAP_MS", 50)) * time.Millisecond}, bl)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go h.Run(ctx)
		srv := httptest.NewServer(h)

		base := memNow()
		args := []string{"-test.run=^TestLoadClient$", "-test.v"}
		if p := os.Getenv("SPYWATCHER_BENCH_WS_CLIENT_PROFILE"); p != "" {
			args = append(args, "-test.cpuprofile="+p)
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "SPYWATCHER_LOAD_CLIENT=1", "SPYWATCHER_LOAD_URL=ws"+strings.TrimPrefix(srv.URL, "http"),
			"SPYWATCHER_LOAD_CONNS="+strconv.Itoa(conns), "GOMAXPROCS=2")
		stdin, _ := cmd.StdinPipe()
		var out bytes.Buffer
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		rd := bufio.NewReader(stdout)
		for { // wait for "ready"
			line, err := rd.ReadString('\n')
			if err != nil {
				b.Fatalf("load client: %v", err)
			}
			if strings.HasPrefix(line, "ready") {
				break
			}
		}
		idle := memNow()
		perConn := float64(idle-base) / float64(conns)

		// Publish rate events/s in batches for the given time.
		interval := time.Second * time.Duration(per) / time.Duration(rate)
		tick := time.NewTicker(interval)
		end := time.Now().Add(time.Duration(seconds) * time.Second)
		n := 0
		b.ResetTimer()
		loadStart := loadAvg()
		cpuStart := cpuTime()
		wall := time.Now()
		for time.Now().Before(end) {
			<-tick.C
			evs := make([]event.Event, per)
			now := time.Now()
			for j := range evs {
				evs[j] = event.Event{ID: "b" + strconv.Itoa(n), Kind: event.KindPresenceUpdate, GuildID: guildA, UserID: alice, At: now,
					Data: &event.Presence{Status: event.StatusOnline, ClientStatus: event.ClientStatus{Desktop: event.StatusOnline}}}
				n++
			}
			bl.Publish(ctx, evs)
		}
		tick.Stop()
		cpu := cpuTime() - cpuStart
		elapsed := time.Since(wall)
		loadEnd := loadAvg()
		b.StopTimer()
		time.Sleep(2 * time.Second) // let the last frames arrive
		stdin.Close()
		_, _ = out.ReadFrom(rd) // all of it before Wait closes the pipe
		if err := cmd.Wait(); err != nil {
			b.Fatalf("load client: %v\n%s", err, out.String())
		}
		var res loadResult
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "{") {
				_ = json.Unmarshal([]byte(line), &res)
			}
		}
		dropped := metricDropped(h)
		var fm, wm dto.Metric
		_ = h.m.frames.Write(&fm)
		_ = h.m.writes.Write(&wm)
		writes := wm.GetCounter().GetValue()
		b.ReportMetric(fm.GetCounter().GetValue()/elapsed.Seconds()/float64(conns), "frames/conn/s")
		b.ReportMetric(writes/elapsed.Seconds()/float64(conns), "writes/conn/s")
		b.ReportMetric(cpu.Seconds()/writes*1e6, "hub-µs/write")
		b.ReportMetric(float64(res.P50)/1e6, "p50-ms")
		b.ReportMetric(float64(res.P99)/1e6, "p99-ms")
		b.ReportMetric(float64(res.Max)/1e6, "max-ms")
		b.ReportMetric(float64(res.Received)/float64(n*conns), "delivered-fraction")
		b.ReportMetric(perConn/1024, "KiB/idle-conn")
		b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "hub-cores")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		clientCores := float64(res.CPU) / float64(elapsed+2*time.Second) // the client runs to the end of the wait
		b.ReportMetric(clientCores, "client-cores")
		b.Logf("%d conns, %d events in %s (%.0f/s, batches of %d), %d deliveries of %d; latency p50 %s p99 %s max %s; hub CPU %.2f cores, client %.2f; %.1f KiB per idle connection; %d slow consumers closed; load average %s at the start, %s at the end",
			conns, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), per, res.Received, n*conns,
			time.Duration(res.P50), time.Duration(res.P99), time.Duration(res.Max), cpu.Seconds()/elapsed.Seconds(), clientCores, perConn/1024, dropped, loadStart, loadEnd)
		cancel()
		srv.Close()
	}
}

type loadResult struct {
	Received int   `json:"received"`
	P50      int64 `json:"p50"`
	P99      int64 `json:"p99"`
	Max      int64 `json:"max"`
	// CPU is the client's CPU time (ns) from ready to the end.
	CPU int64 `json:"cpu"`
}

// writeClientFrame writes one masked frame (with a zero key: the payload
// is unchanged) of up to 125 bytes.
func writeClientFrame(w io.Writer, op byte, p []byte) error {
	if len(p) > 125 {
		return errors.New("client frame too long")
	}
	f := append([]byte{0x80 | op, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
	_, err := w.Write(f)
	return err
}

// latencyHist counts delays in buckets 1/64 wide (relative) above 128 µs.
type latencyHist struct {
	counts [64 * 40]atomic.Uint64
	max    atomic.Int64
}

func histBucket(us int64) int {
	if us < 128 {
		return int(max(us, 0))
	}
	shift := bits.Len64(uint64(us)) - 7
	return shift*64 + int(us>>shift)
}

// histUpper is the largest delay (µs) in bucket i.
func histUpper(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	shift := i/64 - 1
	return (int64(i-shift*64)+1)<<shift - 1
}

var presenceOpen = []byte(`["p",`)

// frame records every presence update of a frame received at now: each
// presence batch is ["p","guild",at0,[dt,"id","user","sdmw"],...].
func (h *latencyHist) frame(data []byte, now int64) {
	lastAt, run := int64(-1), uint64(0)
	var worst int64
	record := func(at int64) {
		if at == lastAt {
			run++
			return
		}
		if run > 0 {
			us := (now - lastAt*1e6) / 1e3
			h.counts[histBucket(us)].Add(run)
			worst = max(worst, us)
		}
		lastAt, run = at, 1
	}
	for {
		i := bytes.Index(data, presenceOpen)
		if i < 0 {
			break
		}
		data = data[i+len(presenceOpen):]
		data = data[bytes.IndexByte(data, ',')+1:] // past the guild id
		var at0 int64
		at0, data = parseInt(data)
		// Tuples follow as ,[dt,...] until the batch's closing bracket.
		for len(data) > 1 && data[0] == ',' && data[1] == '[' {
			var dt int64
			dt, data = parseInt(data[2:])
			record(at0 + dt)
			data = data[bytes.IndexByte(data, ']')+1:]
		}
	}
	record(-2) // flush the last run
	for {
		m := h.max.Load()
		if worst <= m || h.max.CompareAndSwap(m, worst) {
			break
		}
	}
}

// parseInt reads a JSON integer at the start of b.
func parseInt(b []byte) (int64, []byte) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var n int64
	for len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		n = n*10 + int64(b[0]-'0')
		b = b[1:]
	}
	if neg {
		n = -n
	}
	return n, b
}

func (h *latencyHist) result() loadResult {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	res := loadResult{Received: int(total), Max: h.max.Load() * 1e3}
	var seen uint64
	for i := range h.counts {
		c := h.counts[i].Load()
		if c == 0 {
			continue
		}
		if res.P50 == 0 && seen+c > total/2 {
			res.P50 = histUpper(i) * 1e3
		}
		if seen+c > total*99/100 {
			res.P99 = histUpper(i) * 1e3
			break
		}
		seen += c
	}
	return res
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// memNow is the heap and goroutine stacks in use after a collection.
func memNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func metricDropped(h *Hub) int {
	var m dto.Metric
	if err := h.m.dropped.WithLabelValues("slow_consumer").Write(&m); err != nil {
		return -1
	}
	return int(m.GetCounter().GetValue())
}

// loadAvg is the machine's one-minute load average (other work competes
// with the hub and the client for the same cores).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// cpuTime is the CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestLatencyHistogram(t *testing.T) {
	for _, us := range []int64{0, 1, 127, 128, 129, 1000, 25_000, 99_999, 100_000, 3_600_000_000} {
		up := histUpper(histBucket(us))
		if up < us || float64(up-us) > float64(us)/64+1 {
			t.Errorf("%d µs falls in a bucket up to %d µs", us, up)
		}
	}
	var h latencyHist
	now := time.UnixMilli(1_000_000).UnixNano()
	frame := []byte(`[["p","1",999990,[0,"a","u","oo--"],[0,"b","u","i---"]],` +
		`{"type":"subscribed"},["p","1",999950,[-50,"c","u","o---"]]]`)
	h.frame(frame, now)
	r := h.result()
	if r.Received != 3 || r.Max != 100e6 || r.P50 < 10e6 || r.P50 > 10.2e6 || r.P99 < 100e6 || r.P99 > 102e6 {
		t.Fatalf("histogram of 10, 10, 100 ms: %+v", r)
	}
}
