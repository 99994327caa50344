package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestCluster: three hosts on one PostgreSQL (through PgBouncer) and one
// Redis behind HAProxy behave as one host — REST reads, the live stream,
// rate limits, plugin state and scheduled jobs — and losing the jobs leader
// to SIGKILL in the middle of an ingest stream loses no acknowledged event
// and moves its leases.
func TestCluster(t *testing.T) {
	e := needCluster(t)
	c := startCluster(t, e, clusterOpts{instances: 3, simulate: true})
	guild := c.simGuild(t)
	t.Logf("3 hosts %v behind %s, guild %s", []string{c.hosts[0].url(), c.hosts[1].url(), c.hosts[2].url()}, c.lb, guild)

	t.Run("RESTReadsAgree", func(t *testing.T) { testRESTReadsAgree(t, c) })
	t.Run("WebSocketFanOut", func(t *testing.T) { testWebSocketFanOut(t, c) })
	t.Run("SharedRateLimit", func(t *testing.T) { testSharedRateLimit(t, c) })
	t.Run("PluginStateAcrossInstances", func(t *testing.T) { testPluginState(t, c) })
	t.Run("ScoreJobsRunOnce", func(t *testing.T) { testScoreJobsRunOnce(t, c) })
	t.Run("KillJobsLeaderUnderIngest", func(t *testing.T) { testKillLeader(t, c) })
}

type memberList struct {
	Members []struct {
		UserID string `json:"user_id"`
		Name   string `json:"name"`
	} `json:"members"`
}

func (m memberList) key() string {
	var ids []string
	for _, x := range m.Members {
		ids = append(ids, x.UserID+"="+x.Name)
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

// testRESTReadsAgree: the member list is the same from every host directly
// and through the balancer, and the balancer spreads requests over all three.
func testRESTReadsAgree(t *testing.T, c *cluster) {
	path := "/api/v1/guilds/" + c.guild + "/members?limit=500&include_left=true"
	// Wait until the simulator's roster is in (every member has joined).
	waitFor(t, "the simulated roster", 60*time.Second, func() (bool, string) {
		var m memberList
		if _, err := c.do("GET", c.lb+path, "", nil, &m); err != nil {
			return false, err.Error()
		}
		return len(m.Members) >= 60, fmt.Sprintf("%d members", len(m.Members))
	})
	waitFor(t, "the same member list from every host and through the balancer", 30*time.Second, func() (bool, string) {
		keys := map[string][]string{}
		backends := map[string]bool{}
		for _, h := range c.hosts {
			var m memberList
			if _, err := c.do("GET", h.url()+path, "", nil, &m); err != nil {
				return false, err.Error()
			}
			keys[m.key()] = append(keys[m.key()], h.name)
		}
		for i := 0; i < 6; i++ {
			var m memberList
			resp, err := c.do("GET", c.lb+path, "", nil, &m)
			if err != nil {
				return false, err.Error()
			}
			backends[resp.Header.Get("X-Spywatcher-Backend")] = true
			keys[m.key()] = append(keys[m.key()], "lb")
		}
		if len(backends) != 3 {
			return false, fmt.Sprintf("balancer used %v", backends)
		}
		return len(keys) == 1, fmt.Sprintf("%d different answers", len(keys))
	})
}

// wsClient collects the event IDs one connection receives, in order.
type wsClient struct {
	name string
	conn *websocket.Conn
	mu   sync.Mutex
	ids  []string
	seen map[string]bool
	err  error
}

func dialWS(t *testing.T, h *host, guild string) *wsClient {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := strings.Replace(h.url(), "http://", "ws://", 1) + "/api/v1/ws"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + adminToken}}})
	if err != nil {
		t.Fatalf("%s: dial: %v", h.name, err)
	}
	conn.SetReadLimit(16 << 20)
	w := &wsClient{name: h.name, conn: conn, seen: map[string]bool{}}
	sub, _ := json.Marshal(map[string]string{"type": "subscribe", "guild_id": guild})
	if err := conn.Write(ctx, websocket.MessageText, sub); err != nil {
		t.Fatalf("%s: subscribe: %v", h.name, err)
	}
	subscribed := make(chan struct{})
	go w.read(subscribed)
	select {
	case <-subscribed:
	case <-ctx.Done():
		t.Fatalf("%s: no subscribed message", h.name)
	}
	return w
}

func (w *wsClient) read(subscribed chan struct{}) {
	once := sync.Once{}
	for {
		_, b, err := w.conn.Read(context.Background())
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		var frame []json.RawMessage
		if json.Unmarshal(b, &frame) != nil {
			continue
		}
		var got []string
		for _, m := range frame {
			m = bytes.TrimSpace(m)
			if len(m) == 0 {
				continue
			}
			if m[0] == '{' {
				var msg struct{ Type, ID string }
				json.Unmarshal(m, &msg) //nolint:errcheck
				switch {
				case msg.Type == "subscribed":
					once.Do(func() { close(subscribed) })
				case msg.Type == "event" && msg.ID != "":
					got = append(got, msg.ID)
				}
				continue
			}
			// A presence batch: ["P", guild, at0, [dt, id, user, status], ...].
			var pb []json.RawMessage
			if json.Unmarshal(m, &pb) != nil || len(pb) < 3 {
				continue
			}
			for _, it := range pb[3:] {
				var tuple []json.RawMessage
				var id string
				if json.Unmarshal(it, &tuple) == nil && len(tuple) > 1 && json.Unmarshal(tuple[1], &id) == nil {
					got = append(got, id)
				}
			}
		}
		w.mu.Lock()
		for _, id := range got {
			w.ids = append(w.ids, id)
			w.seen[id] = true
		}
		w.mu.Unlock()
	}
}

func (w *wsClient) has(ids []string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, id := range ids {
		if w.seen[id] {
			n++
		}
	}
	return n
}

// span returns what the connection received from the first of ids to
// arrive to the last, inclusive.
func (w *wsClient) span(ids []string) []string {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	i, j := -1, -1
	for k, id := range w.ids {
		if want[id] {
			if i < 0 {
				i = k
			}
			j = k
		}
	}
	if i < 0 {
		return nil
	}
	return append([]string(nil), w.ids[i:j+1]...)
}

var userSeq atomic.Int64

// messageEvents makes n message.create events with fresh IDs in the guild.
func messageEvents(guild, prefix string, n int) []map[string]any {
	at := time.Now().UTC()
	// Authors rotate over 1,000 members, as in a busy guild (a handful of
	// authors would make every batch contend for the same member rows).
	seq := int(userSeq.Add(int64(n)))
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{
			"id": fmt.Sprintf("%s-%d", prefix, i), "kind": "message.create", "guild_id": guild,
			"user_id":    fmt.Sprintf("9%017d", 100+(seq+i)%1000),
			"channel_id": "900000000000000001",
			"at":         at.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
			"data":       map[string]any{"message_id": fmt.Sprintf("8%017d", i), "length": 5},
		}
	}
	return out
}

// testWebSocketFanOut: one client on each host; events posted through the
// balancer (so stored by any host) reach all three, and all three see the
// very same sequence of event IDs (simulated presence and messages included)
// from the first posted event to the last.
func testWebSocketFanOut(t *testing.T, c *cluster) {
	var clients []*wsClient
	for _, h := range c.hosts {
		w := dialWS(t, h, c.guild)
		defer w.conn.Close(websocket.StatusNormalClosure, "")
		clients = append(clients, w)
	}
	prefix := "ws-" + randomHex(4)
	var ids []string
	for b := 0; b < 6; b++ {
		evs := messageEvents(c.guild, fmt.Sprintf("%s-%d", prefix, b), 20)
		var res struct {
			Stored       int `json:"stored"`
			NotCollected int `json:"not_collected"`
		}
		resp, err := c.do("POST", c.lb+"/api/v1/events?wait=stored", "", evs, &res)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stored != len(evs) {
			t.Fatalf("batch %d answered by %s: %d of %d stored, %d not collected", b, resp.Header.Get("X-Spywatcher-Backend"), res.Stored, len(evs), res.NotCollected)
		}
		for _, ev := range evs {
			ids = append(ids, ev["id"].(string))
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []string
		ok := true
		for _, w := range clients {
			n := w.has(ids)
			got = append(got, fmt.Sprintf("%s %d/%d", w.name, n, len(ids)))
			ok = ok && n == len(ids)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			c.diagnoseMissing(t, clients, ids)
			t.Fatalf("posted events missing on the connections after 30 s: %s", strings.Join(got, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Redis pub/sub is one ordered channel: every instance delivers the
	// same sequence, whichever instance stored (and published) each batch.
	ref := clients[0].span(ids)
	for _, w := range clients[1:] {
		got := w.span(ids)
		if strings.Join(got, ",") != strings.Join(ref, ",") {
			t.Fatalf("%s saw %d events around the posted ones, %s saw %d: not the same sequence", w.name, len(got), clients[0].name, len(ref))
		}
	}
	t.Logf("3 connections saw the same %d events (%d posted, the rest simulated)", len(ref), len(ids))
}

// diagnoseMissing logs, for posted events no connection received, whether
// they are stored, and each host's fan-out counters.
func (c *cluster) diagnoseMissing(t *testing.T, clients []*wsClient, ids []string) {
	var missing []string
	for _, id := range ids {
		if clients[0].has([]string{id}) == 0 {
			missing = append(missing, id)
		}
	}
	found, _ := c.storedOnce(t, missing)
	t.Logf("%d posted events not received by %s (first %v), %d of them stored", len(missing), clients[0].name, missing[:min(3, len(missing))], found)
	for _, h := range c.hosts {
		var vals []string
		for _, m := range []string{"spywatcher_ws_bus_dropped", "spywatcher_ws_fanout_errors_total", "spywatcher_ws_messages_total",
			"spywatcher_pipeline_events_stored_total{kind=\"message.create\"}", "spywatcher_ws_connections"} {
			v, err := c.metric(h, m)
			vals = append(vals, fmt.Sprintf("%s=%v%v", m, v, errString(err)))
		}
		t.Logf("%s: %s", h.name, strings.Join(vals, " "))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}

// testSharedRateLimit: an API key of a tier allowing 20 requests a minute
// gets 20 answers in total from three hosts, not 20 from each.
func testSharedRateLimit(t *testing.T, c *cluster) {
	user := "rl-" + randomHex(3)
	run := func(stdin string, args ...string) string {
		cmd := exec.Command(c.e.bin, args...)
		cmd.Env = c.hosts[1].env
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("spywatcher %v: %v\n%s", args, err, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	run("a long enough password 123\n", "user", "create", "--username", user)
	key := run("", "apikey", "create", "--user", user, "--tier", "tight", "--name", "cluster test")
	if key == "" {
		t.Fatal("no API key printed")
	}
	// Fixed one-minute windows: start with enough of the window left.
	if left := time.Minute - time.Duration(time.Now().UnixMilli()%60000)*time.Millisecond; left < 15*time.Second {
		time.Sleep(left + time.Second)
	}
	ok, limited := 0, 0
	perBackend := map[string]int{}
	for i := 0; i < 60; i++ {
		resp, err := c.do("GET", c.lb+"/api/v1/auth/me", key, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case 200:
			ok++
			perBackend[resp.Header.Get("X-Spywatcher-Backend")]++
		case 429:
			limited++
		default:
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if len(perBackend) < 2 {
		t.Fatalf("the balancer sent every allowed request to %v: the test proves nothing", perBackend)
	}
	if ok != 20 || limited != 40 {
		t.Fatalf("60 requests over %v: %d allowed, %d limited; want 20 and 40 (one budget for all hosts)", perBackend, ok, limited)
	}
	t.Logf("20 of 60 allowed, spread over %v", perBackend)
}

// testPluginState: disabling a plugin through one host stops its routes on
// the others; revoking and granting a permission likewise; and enabling it
// again through another host brings them back everywhere.
func testPluginState(t *testing.T, c *cluster) {
	base := "/api/v1/guilds/" + c.guild + "/plugins/message-logger"
	route := base + "/http/status"
	serves := func(h *host) int {
		resp, err := c.do("GET", h.url()+route, "", nil, nil)
		if err != nil {
			return 0
		}
		return resp.StatusCode
	}
	everywhere := func(what string, want func(int) bool) {
		waitFor(t, what, 20*time.Second, func() (bool, string) {
			var got []string
			ok := true
			for _, h := range c.hosts {
				s := serves(h)
				got = append(got, fmt.Sprintf("%s %d", h.name, s))
				ok = ok && want(s)
			}
			return ok, strings.Join(got, ", ")
		})
	}
	is200 := func(s int) bool { return s == 200 }
	refused := func(s int) bool { return s >= 400 && s < 500 }
	everywhere("message-logger's route served by every host", is200)

	mustDo := func(h *host, method, path string, body any) {
		resp, err := c.do(method, h.url()+path, "", body, nil)
		if err != nil || resp.StatusCode != 200 {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Fatalf("%s %s on %s: %d %v", method, path, h.name, code, err)
		}
	}
	mustDo(c.hosts[0], "POST", base+"/disable", nil)
	everywhere("disabled through h1: refused by every host", refused)
	mustDo(c.hosts[1], "POST", base+"/enable", nil)
	everywhere("enabled through h2: served by every host", is200)
	mustDo(c.hosts[2], "DELETE", base+"/grants?permission=routes.serve", nil)
	everywhere("routes.serve revoked through h3: refused by every host", refused)
	mustDo(c.hosts[0], "POST", base+"/grants", map[string]any{"permissions": []map[string]string{{"name": "routes.serve"}}})
	everywhere("routes.serve granted through h1: served by every host", is200)
}

// scoreState samples, on every host, whether it leads the scores job and
// how many score runs it made.
func (c *cluster) scoreState() (leaders []string, runs []float64, err error) {
	for _, h := range c.hosts {
		if !h.alive() {
			runs = append(runs, 0)
			continue
		}
		l, err := c.metric(h, `spywatcher_job_leader_targets{job_name="scores"}`)
		if err != nil {
			return nil, nil, err
		}
		if l > 0 {
			leaders = append(leaders, h.name)
		}
		r, err := c.metric(h, `spywatcher_job_runs_total{job_name="scores"}`)
		if err != nil {
			return nil, nil, err
		}
		runs = append(runs, r)
	}
	return leaders, runs, nil
}

// testScoreJobsRunOnce: the scores job (every 2 s here) is led by exactly
// one host, only that host runs it, and the runs add up to one per tick, not
// one per host — the Redis lease agrees with the metrics.
func testScoreJobsRunOnce(t *testing.T, c *cluster) {
	ctx := context.Background()
	var leader *host
	waitFor(t, "a scores lease holder running the job", 30*time.Second, func() (bool, string) {
		h, v, err := c.leaseHolder(ctx, "job:scores:"+c.guild)
		if err != nil || h == nil {
			return false, fmt.Sprintf("holder %q %v", v, err)
		}
		leader = h
		_, runs, err := c.scoreState()
		if err != nil {
			return false, err.Error()
		}
		for i, r := range runs {
			if c.hosts[i] == h && r > 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("holder %s, runs %v", h.name, runs)
	})
	_, before, err := c.scoreState()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 5; i++ {
		time.Sleep(2 * time.Second)
		leaders, _, err := c.scoreState()
		if err != nil {
			t.Fatal(err)
		}
		if len(leaders) != 1 || leaders[0] != leader.name {
			t.Fatalf("sample %d: hosts leading the scores job: %v, want only %s (the lease holder)", i, leaders, leader.name)
		}
	}
	elapsed := time.Since(start)
	_, after, err := c.scoreState()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for i, h := range c.hosts {
		d := after[i] - before[i]
		total += d
		if h != leader && d != 0 {
			t.Fatalf("%s ran the scores job %v times without the lease (holder %s)", h.name, d, leader.name)
		}
	}
	// One run per 2 s tick at most (a slow run skips ticks), plus the one
	// in flight: never one per host.
	if maxRuns := elapsed.Seconds()/2 + 1; total < 1 || total > maxRuns {
		t.Fatalf("%v score runs in %s, want 1..%.0f", total, elapsed.Round(time.Millisecond), maxRuns)
	}
	t.Logf("%s led the scores job; %v runs in %s, none elsewhere", leader.name, total, elapsed.Round(time.Millisecond))
}

// streamer posts batches through the balancer with ?wait=stored, resending
// whatever was not acknowledged, and remembers what was.
type streamer struct {
	c      *cluster
	prefix string
	batch  int
	wait   string // stored (durable acknowledgements) or queued

	onAck func() // called after each acknowledged request, when set

	mu       sync.Mutex
	acked    map[string]bool
	sent     int
	failures map[string]int // outcome → count (status codes, transport errors)
	lastErr  string
}

func (s *streamer) post(evs []map[string]any) (notAcked []map[string]any) {
	body, _ := json.Marshal(evs)
	req, _ := http.NewRequest("POST", s.c.lb+"/api/v1/events?wait="+s.wait, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.c.http.Do(req)
	if err != nil {
		s.fail("transport", err.Error())
		return evs
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case 202: // wait=queued: acknowledged once queued
		var res struct {
			Accepted int `json:"accepted"`
		}
		if err := json.Unmarshal(raw, &res); err != nil || res.Accepted != len(evs) {
			s.fail("202-odd", string(raw))
			return evs
		}
		s.ack(evs)
		return nil
	case 200:
		var res struct {
			Stored   int `json:"stored"`
			Rejected []struct {
				Index int `json:"index"`
			} `json:"rejected"`
		}
		if err := json.Unmarshal(raw, &res); err != nil || res.Stored != len(evs) || len(res.Rejected) > 0 {
			s.fail("200-odd", string(raw))
			return evs
		}
		s.ack(evs)
		return nil
	case 503:
		var er struct {
			Error struct {
				Details struct {
					NotStored []int `json:"not_stored"`
				} `json:"details"`
			} `json:"error"`
		}
		s.fail("503", truncate(string(raw), 200))
		if json.Unmarshal(raw, &er) != nil || er.Error.Details.NotStored == nil {
			return evs
		}
		bad := map[int]bool{}
		for _, i := range er.Error.Details.NotStored {
			bad[i] = true
		}
		var ok []map[string]any
		for i, ev := range evs {
			if bad[i] {
				notAcked = append(notAcked, ev)
			} else {
				ok = append(ok, ev)
			}
		}
		s.ack(ok)
		return notAcked
	default:
		s.fail(fmt.Sprint(resp.StatusCode), truncate(string(raw), 200))
		return evs
	}
}

func (s *streamer) fail(kind, detail string) {
	s.mu.Lock()
	s.failures[kind]++
	s.lastErr = detail
	s.mu.Unlock()
}

func (s *streamer) ack(evs []map[string]any) {
	s.mu.Lock()
	for _, ev := range evs {
		s.acked[ev["id"].(string)] = true
	}
	s.mu.Unlock()
	if s.onAck != nil && len(evs) > 0 {
		s.onAck()
	}
}

func (s *streamer) ackedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.acked))
	for id := range s.acked {
		out = append(out, id)
	}
	return out
}

// run streams until stop is closed, then resends what is still unacknowledged
// until it is acknowledged (or gives up after a while).
func (s *streamer) run(worker int, stop <-chan struct{}) {
	var pending []map[string]any
	for n := 0; ; n++ {
		select {
		case <-stop:
			for tries := 0; len(pending) > 0 && tries < 50; tries++ {
				pending = s.post(pending)
				if len(pending) > 0 {
					time.Sleep(200 * time.Millisecond)
				}
			}
			return
		default:
		}
		evs := append(pending, messageEvents(s.c.guild, fmt.Sprintf("%s-%d-%d", s.prefix, worker, n), s.batch)...)
		s.mu.Lock()
		s.sent += s.batch
		s.mu.Unlock()
		pending = s.post(evs)
		if len(pending) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// storedOnce counts how many of ids the database holds (each ID at most
// once: it is the primary key, counted anyway).
func (c *cluster) storedOnce(t *testing.T, ids []string) (found, dup int) {
	rows, err := c.db.Query(context.Background(), `SELECT id, count(*) FROM events WHERE id = ANY($1) GROUP BY id`, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		found++
		if n > 1 {
			dup++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return found, dup
}

// testKillLeader: while a client streams events through the balancer with
// durable acknowledgements, the host holding the scores lease is killed
// (SIGKILL: no drain, no lease release). Another host takes the lease over
// (new holder, larger fencing token, runs the job), the balancer stops
// sending to the dead one, and every acknowledged event is in the database
// exactly once.
func testKillLeader(t *testing.T, c *cluster) {
	ctx := context.Background()
	leaseName := "job:scores:" + c.guild
	victim, holderBefore, err := c.leaseHolder(ctx, leaseName)
	if err != nil || victim == nil {
		t.Fatalf("no scores lease holder among the hosts: %q %v", holderBefore, err)
	}
	fenceBefore, _ := c.rdb.Get(ctx, "spywatcher:lease:"+leaseName+":fence").Int64()
	// SPYWATCHER_CLUSTER_INGEST_WAIT=queued shows why durable
	// acknowledgements exist: with the default 202 the kill loses events.
	wait := "stored"
	if v := os.Getenv("SPYWATCHER_CLUSTER_INGEST_WAIT"); v != "" {
		wait = v
	}
	s := &streamer{c: c, prefix: "kill-" + randomHex(4), batch: 200, wait: wait, acked: map[string]bool{}, failures: map[string]int{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	// Four clients at once, so that requests are in flight on the victim
	// when it dies.
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(w, stop) }()
	}
	go func() { wg.Wait(); close(done) }()
	// Let the stream run across all three hosts, then kill.
	waitFor(t, "the stream to get going", 30*time.Second, func() (bool, string) {
		n := len(s.ackedIDs())
		return n >= 4000, fmt.Sprintf("%d acknowledged", n)
	})
	killedAt := time.Now()
	victim.kill()
	t.Logf("killed %s (pid held the scores lease, fence %d) with %d events acknowledged", victim.name, fenceBefore, len(s.ackedIDs()))

	var newHolder *host
	waitFor(t, "another host to hold the scores lease", 30*time.Second, func() (bool, string) {
		h, v, err := c.leaseHolder(ctx, leaseName)
		if err != nil || h == nil || h == victim || !h.alive() {
			return false, fmt.Sprintf("holder %q %v", v, err)
		}
		newHolder = h
		return true, ""
	})
	takeover := time.Since(killedAt)
	fenceAfter, _ := c.rdb.Get(ctx, "spywatcher:lease:"+leaseName+":fence").Int64()
	if fenceAfter <= fenceBefore {
		t.Fatalf("fencing token %d after the takeover, was %d: must grow", fenceAfter, fenceBefore)
	}
	_, runs0, _ := c.scoreState()
	waitFor(t, newHolder.name+" to run the scores job", 30*time.Second, func() (bool, string) {
		_, runs, err := c.scoreState()
		if err != nil {
			return false, err.Error()
		}
		for i, h := range c.hosts {
			if h == newHolder && runs[i] > runs0[i] {
				return true, ""
			}
		}
		return false, fmt.Sprint(runs)
	})
	// Keep streaming a little after the takeover, then check.
	acked := len(s.ackedIDs())
	waitFor(t, "the stream to continue after the kill", 30*time.Second, func() (bool, string) {
		n := len(s.ackedIDs())
		return n >= acked+4000, fmt.Sprintf("%d acknowledged", n)
	})
	// The balancer no longer sends to the dead host.
	for i := 0; i < 10; i++ {
		resp, err := c.do("GET", c.lb+"/readyz", "", nil, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("through the balancer after the kill: %v %v", resp, err)
		}
		if b := resp.Header.Get("X-Spywatcher-Backend"); b == victim.name {
			t.Fatalf("the balancer still sends to the killed %s", victim.name)
		}
	}
	close(stop)
	<-done
	ids := s.ackedIDs()
	found, dup := c.storedOnce(t, ids)
	if wait != "stored" {
		// Queued acknowledgements: let the surviving hosts drain their
		// queues before counting.
		for prev := -1; found != prev; {
			time.Sleep(2 * time.Second)
			prev = found
			found, dup = c.storedOnce(t, ids)
		}
	}
	s.mu.Lock()
	failures, sent := s.failures, s.sent
	s.mu.Unlock()
	t.Logf("lease moved %s → %s in %s (fence %d → %d); stream: %d sent, %d acknowledged, failed requests %v",
		victim.name, newHolder.name, takeover.Round(time.Millisecond), fenceBefore, fenceAfter, sent, len(ids), failures)
	if found != len(ids) || dup != 0 {
		t.Fatalf("%d acknowledged events, %d stored (%d more than once): acknowledged events were lost", len(ids), found, dup)
	}
	if len(ids) < sent {
		t.Logf("%d events never acknowledged (the stream stopped while resending them)", sent-len(ids))
	}
}
