package ws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
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
// SPYWATCHER_BENCH_WS_BATCH events per publish (20, like a pipeline flush).
func BenchmarkWSFanout(b *testing.B) {
	conns := envInt("SPYWATCHER_BENCH_WS_CONNS", 5000)
	rate := envInt("SPYWATCHER_BENCH_WS_RATE", 1000)
	seconds := envInt("SPYWATCHER_BENCH_WS_SECONDS", 20)
	per := envInt("SPYWATCHER_BENCH_WS_BATCH", 20)
	for i := 0; i < b.N; i++ {
		az := &fakeAuthz{roles: map[string]map[string]string{}}
		az.set("user:mod", guildA, "moderator")
		bl := bus.NewLocal()
		h, err := New(Config{Auth: fakeAuth{tokens: map[string]auth.Principal{"mod": {Kind: auth.KindUser, ID: "mod", Subject: "user:mod"}}}, Authz: az}, bl)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go h.Run(ctx)
		srv := httptest.NewServer(h)

		base := memNow()
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadClient$", "-test.v")
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
		b.StopTimer()
		time.Sleep(2 * time.Second) // let the last frames arrive
		stdin.Close()
		go func() { _, _ = out.ReadFrom(rd) }()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("load client: %v", err)
		}
		var res loadResult
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "{") {
				_ = json.Unmarshal([]byte(line), &res)
			}
		}
		dropped := metricDropped(h)
		b.ReportMetric(float64(res.P50)/1e6, "p50-ms")
		b.ReportMetric(float64(res.P99)/1e6, "p99-ms")
		b.ReportMetric(float64(res.Max)/1e6, "max-ms")
		b.ReportMetric(float64(res.Received)/float64(n*conns), "delivered-fraction")
		b.ReportMetric(perConn/1024, "KiB/idle-conn")
		b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "hub-cores")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		b.Logf("%d conns, %d events in %s (%.0f/s, batches of %d), %d deliveries of %d; latency p50 %s p99 %s max %s; hub CPU %.2f cores; %.1f KiB per idle connection; %d slow consumers closed",
			conns, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), per, res.Received, n*conns,
			time.Duration(res.P50), time.Duration(res.P99), time.Duration(res.Max), cpu.Seconds()/elapsed.Seconds(), perConn/1024, dropped)
		cancel()
		srv.Close()
	}
}

type loadResult struct {
	Received int   `json:"received"`
	P50      int64 `json:"p50"`
	P99      int64 `json:"p99"`
	Max      int64 `json:"max"`
}

// TestLoadClient is the benchmark's load client; it runs only when the
// benchmark starts it.
func TestLoadClient(t *testing.T) {
	if os.Getenv("SPYWATCHER_LOAD_CLIENT") != "1" {
		t.Skip("the load client of BenchmarkWSFanout (started by it)")
	}
	url := os.Getenv("SPYWATCHER_LOAD_URL") + "/api/v1/ws"
	conns := envInt("SPYWATCHER_LOAD_CONNS", 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var lat []int64
	var wg sync.WaitGroup
	sub := []byte(`{"type":"subscribe","guild_id":"` + guildA + `"}`)
	ready := make(chan struct{}, conns)
	sem := make(chan struct{}, 64) // dial a few at a time
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: bearer("mod")})
			<-sem
			if err != nil {
				t.Errorf("dial: %v", err)
				ready <- struct{}{}
				return
			}
			defer c.CloseNow()
			c.SetReadLimit(16 << 20)
			_ = c.Write(ctx, websocket.MessageText, sub)
			var local []int64
			subscribed := false
			var buf bytes.Buffer // reused: the client must not be the bottleneck
			for {
				_, r, err := c.Reader(ctx)
				if err != nil {
					break
				}
				buf.Reset()
				if _, err := buf.ReadFrom(r); err != nil {
					break
				}
				data := buf.Bytes()
				now := time.Now()
				if !subscribed {
					if bytes.Contains(data, []byte(`"subscribed"`)) {
						subscribed = true
						ready <- struct{}{}
					}
					continue
				}
				// A message's "at" is its publish time. The first message of a
				// frame is its oldest: its delay is the frame's worst, which is
				// what is recorded (one sample per frame and message count, so
				// percentiles stay per delivered message, conservatively).
				if i := bytes.Index(data, []byte(`"at":"`)); i >= 0 {
					rest := data[i+6:]
					j := bytes.IndexByte(rest, '"')
					if at, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
						d := now.Sub(at).Nanoseconds()
						for k := bytes.Count(data, []byte(`"type":"event"`)); k > 0; k-- {
							local = append(local, d)
						}
					}
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	for i := 0; i < conns; i++ {
		<-ready
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the benchmark closes stdin
	cancel()
	wg.Wait()
	slices.Sort(lat)
	res := loadResult{Received: len(lat)}
	if len(lat) > 0 {
		res.P50, res.P99, res.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
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

// cpuTime is the CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
