package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkCluster measures the cluster on this machine (make
// bench-cluster; BENCHMARKS.md, "Cluster"): for 1, 2 and 3 hosts behind
// HAProxy, ingest throughput (durable acknowledgements, 4 clients posting
// 500 events per request; SPYWATCHER_CLUSTER_BENCH_CLIENTS changes the 4) and the member list's latency (8 clients); then,
// with 3 hosts, failover times when the jobs leader and when an ingest host
// are killed. Every host runs every role; the first also runs the simulator
// (a 60-member guild, a few events a second: the guild the reads list).
// Only a scorer plugin is installed: no plugin sees the ingested events.
func BenchmarkCluster(b *testing.B) {
	e := needCluster(b)
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			c := startCluster(b, e, clusterOpts{instances: n, simulate: true, plugins: benchPlugins})
			c.simGuild(b)
			c.waitRoster(b)
			b.ResetTimer()
			sum0, n0, retries0 := c.batchStats()
			evs, fails := c.ingestRate(b, benchClients(b), 500, 10*time.Second)
			sum1, n1, retries1 := c.batchStats()
			b.ReportMetric(evs, "events/s")
			b.ReportMetric(float64(fails), "failed-requests")
			if n1 > n0 {
				b.ReportMetric((sum1-sum0)/(n1-n0), "events/batch")
			}
			b.ReportMetric(retries1-retries0, "store-retries")
			p50, p99, rps := c.readLatency(b, 8, 10*time.Second)
			b.ReportMetric(p50, "list-p50-ms")
			b.ReportMetric(p99, "list-p99-ms")
			b.ReportMetric(rps, "list-req/s")
		})
	}
	b.Run("failover", func(b *testing.B) {
		c := startCluster(b, e, clusterOpts{instances: 3, simulate: true, plugins: benchPlugins})
		c.simGuild(b)
		c.waitRoster(b)
		b.ResetTimer()
		lease, resumed := c.jobsFailover(b)
		b.ReportMetric(lease.Seconds(), "jobs-lease-moved-s")
		b.ReportMetric(resumed.Seconds(), "jobs-run-resumed-s")
		down, gap, failed := c.ingestFailover(b)
		b.ReportMetric(down.Seconds(), "lb-marks-down-s")
		b.ReportMetric(gap.Seconds(), "ingest-longest-gap-s")
		b.ReportMetric(float64(failed), "ingest-failed-requests")
	})
}

// benchPlugins: the scorer only (the scores job fails over); no plugin
// sees ingested events, so the numbers are the host's own.
var benchPlugins = []string{"lurker-score"}

// benchClients is how many ingest clients post at once: 4, or
// SPYWATCHER_CLUSTER_BENCH_CLIENTS.
func benchClients(t testing.TB) int {
	if v := os.Getenv("SPYWATCHER_CLUSTER_BENCH_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SPYWATCHER_CLUSTER_BENCH_CLIENTS=%q", v)
		}
		return n
	}
	return 4
}

// batchStats sums, over the live hosts, the stored batches' event total,
// their number, and the store retries.
func (c *cluster) batchStats() (sum, n, retries float64) {
	for _, h := range c.hosts {
		if !h.alive() {
			continue
		}
		s, _ := c.metric(h, "spywatcher_pipeline_batch_size_events_sum")
		k, _ := c.metric(h, "spywatcher_pipeline_batch_size_events_count")
		r, _ := c.metric(h, "spywatcher_pipeline_store_retries_total")
		sum, n, retries = sum+s, n+k, retries+r
	}
	return sum, n, retries
}

func (c *cluster) waitRoster(t testing.TB) {
	path := "/api/v1/guilds/" + c.guild + "/members?limit=100"
	waitFor(t, "the simulated roster", 60*time.Second, func() (bool, string) {
		var m memberList
		if _, err := c.do("GET", c.lb+path, "", nil, &m); err != nil {
			return false, err.Error()
		}
		return len(m.Members) >= 60, fmt.Sprintf("%d members", len(m.Members))
	})
}

// ingestRate runs clients posting batches with ?wait=stored through the
// balancer for d and returns the acknowledged events per second.
func (c *cluster) ingestRate(t testing.TB, clients, batch int, d time.Duration) (float64, int) {
	s := &streamer{c: c, prefix: "bench-" + randomHex(4), batch: batch, wait: "stored", acked: map[string]bool{}, failures: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(w, stop) }()
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	el := time.Since(start)
	fails := 0
	for _, n := range s.failures {
		fails += n
	}
	return float64(len(s.ackedIDs())) / el.Seconds(), fails
}

// readLatency runs clients listing 100 members through the balancer for d.
func (c *cluster) readLatency(t testing.TB, clients int, d time.Duration) (p50, p99, rps float64) {
	path := c.lb + "/api/v1/guilds/" + c.guild + "/members?limit=100"
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := c.do("GET", path, "", nil, nil)
				el := time.Since(t0)
				mu.Lock()
				if err != nil || resp.StatusCode != 200 {
					errs++
				} else {
					lat = append(lat, el)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if errs > 0 {
		t.Fatalf("%d member list requests failed", errs)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	return q(0.5), q(0.99), float64(len(lat)) / d.Seconds()
}

// jobsFailover kills the scores lease holder and times how long until
// another host holds the lease and until it has run the job.
func (c *cluster) jobsFailover(t testing.TB) (moved, resumed time.Duration) {
	ctx := context.Background()
	name := "job:scores:" + c.guild
	var victim *host
	waitFor(t, "a scores lease holder", 30*time.Second, func() (bool, string) {
		h, v, err := c.leaseHolder(ctx, name)
		victim = h
		return h != nil, fmt.Sprintf("%q %v", v, err)
	})
	_, runs0, err := c.scoreState()
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	victim.kill()
	var holder *host
	for moved == 0 {
		if time.Since(killed) > time.Minute {
			t.Fatal("the scores lease never moved")
		}
		if h, _, _ := c.leaseHolder(ctx, name); h != nil && h != victim {
			moved, holder = time.Since(killed), h
		}
		time.Sleep(20 * time.Millisecond)
	}
	for resumed == 0 {
		if time.Since(killed) > time.Minute {
			t.Fatal("the scores job never ran again")
		}
		_, runs, err := c.scoreState()
		if err == nil {
			for i, h := range c.hosts {
				if h == holder && runs[i] > runs0[i] {
					resumed = time.Since(killed)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return moved, resumed
}

// ingestFailover streams durable ingest through the balancer, kills one
// of the live hosts, and measures how long HAProxy takes to mark it down (stats socket), the
// longest time no request was acknowledged around the kill, and how many
// requests failed (and were resent).
func (c *cluster) ingestFailover(t testing.TB) (down, gap time.Duration, failed int) {
	var victim *host
	for _, h := range c.hosts {
		if h.alive() {
			victim = h
		}
	}
	s := &streamer{c: c, prefix: "fail-" + randomHex(4), batch: 200, wait: "stored", acked: map[string]bool{}, failures: map[string]int{}}
	var mu sync.Mutex
	var ackTimes []time.Time
	s.onAck = func() {
		mu.Lock()
		ackTimes = append(ackTimes, time.Now())
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(w, stop) }()
	}
	time.Sleep(3 * time.Second)
	killed := time.Now()
	victim.kill()
	for down == 0 {
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("HAProxy never marked %s down", victim.name)
		}
		if st, err := c.serverState(victim.name); err == nil && strings.HasPrefix(st, "DOWN") {
			down = time.Since(killed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	prev := killed.Add(-time.Second)
	for _, at := range ackTimes {
		if at.Before(prev) {
			continue
		}
		if d := at.Sub(prev); d > gap {
			gap = d
		}
		prev = at
	}
	for _, n := range s.failures {
		failed += n
	}
	return down, gap, failed
}

// serverState asks HAProxy's stats socket for a server's status (UP, DOWN,
// "UP 1/2", ...).
func (c *cluster) serverState(name string) (string, error) {
	conn, err := net.Dial("unix", filepath.Join(c.e.logs, "haproxy.sock"))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) > 17 && f[0] == "hosts" && f[1] == name {
			return f[17], nil
		}
	}
	return "", fmt.Errorf("no stats line for %s", name)
}
