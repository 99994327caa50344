package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

const (
	clusterDB  = "spywatcher_cluster"
	adminToken = "cluster-test-admin-token-0123456789abcdef"
	secretKey  = "cluster-test-secret-key-0123456789abcdef-0123456789"
	// simSeed picks a simulated guild no other test uses (the WebSocket
	// fan-out channel is shared by every Redis database).
	simSeed = 7
)

// env is what the cluster needs, from the environment.
type env struct {
	pgURL, bouncerURL, redisURL string
	redisDB                     int
	bin, plugins, logs          string
}

func repoRoot(t testing.TB) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// needCluster skips unless SPYWATCHER_TEST_CLUSTER=1 and everything the
// cluster needs is there.
func needCluster(t testing.TB) env {
	t.Helper()
	if os.Getenv("SPYWATCHER_TEST_CLUSTER") != "1" {
		t.Skip("cluster test: set SPYWATCHER_TEST_CLUSTER=1 (make test-cluster) to run three hosts behind HAProxy")
	}
	e := env{
		pgURL:      os.Getenv("SPYWATCHER_TEST_POSTGRES_URL"),
		bouncerURL: os.Getenv("SPYWATCHER_TEST_PGBOUNCER_URL"),
		redisURL:   os.Getenv("SPYWATCHER_TEST_REDIS_URL"),
		redisDB:    13,
		bin:        os.Getenv("SPYWATCHER_CLUSTER_BIN"),
		plugins:    os.Getenv("SPYWATCHER_CLUSTER_PLUGINS"),
		logs:       os.Getenv("SPYWATCHER_CLUSTER_LOGS"),
	}
	if v := os.Getenv("SPYWATCHER_CLUSTER_REDIS_DB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SPYWATCHER_CLUSTER_REDIS_DB: %v", err)
		}
		e.redisDB = n
	}
	root := repoRoot(t)
	if e.bin == "" {
		e.bin = filepath.Join(root, "bin", "spywatcher")
	}
	if e.plugins == "" {
		e.plugins = filepath.Join(root, "bin", "plugins")
	}
	missing := func(what string) { t.Fatalf("SPYWATCHER_TEST_CLUSTER=1 but %s", what) }
	if e.pgURL == "" || e.bouncerURL == "" || e.redisURL == "" {
		missing("SPYWATCHER_TEST_POSTGRES_URL, SPYWATCHER_TEST_PGBOUNCER_URL and SPYWATCHER_TEST_REDIS_URL must all be set")
	}
	if _, err := os.Stat(e.bin); err != nil {
		missing("the host binary is missing (make build): " + err.Error())
	}
	for _, p := range []string{"lurker-score", "message-logger"} {
		if _, err := os.Stat(filepath.Join(e.plugins, p, "plugin.json")); err != nil {
			missing("built plugins are missing (make plugins): " + err.Error())
		}
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		missing("haproxy is not installed (apt-get install haproxy)")
	}
	if e.logs == "" {
		dir, err := os.MkdirTemp("", "spywatcher-cluster-")
		if err != nil {
			t.Fatal(err)
		}
		e.logs = dir
		// Registered first, so it runs after the cluster stopped: a passing
		// run leaves nothing behind (the hosts' data dirs hold ~100 MB of
		// compiled plugins), a failing one keeps its logs.
		t.Cleanup(func() {
			if !t.Failed() {
				os.RemoveAll(dir)
			}
		})
	}
	if err := os.MkdirAll(e.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster logs in %s", e.logs)
	return e
}

// withDB returns u with its database name replaced.
func withDB(t testing.TB, u, db string) string {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Path = "/" + db
	return p.String()
}

// freshDatabase drops and creates the cluster database (directly, not
// through PgBouncer, which cannot run DROP DATABASE for a pooled database).
func freshDatabase(t testing.TB, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.pgURL)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+clusterDB+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE DATABASE "+clusterDB); err != nil {
		t.Fatal(err)
	}
	// PgBouncer may hold server connections to the dropped database: they
	// were terminated, and it replaces them on the next use.
}

func freshRedis(t testing.TB, e env) *redis.Client {
	opt, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DB = e.redisDB
	rc := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("Redis: %v", err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// host is one spywatcher serve process.
type host struct {
	name string
	port int
	args []string
	env  []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (h *host) url() string { return fmt.Sprintf("http://127.0.0.1:%d", h.port) }

func (h *host) pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmd.Process.Pid
}

func (h *host) start(t testing.TB, bin string) {
	f, err := os.OpenFile(h.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve"}, h.args...)...)
	cmd.Env = h.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: %v", h.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(exited) }() //nolint:errcheck // exit status is in the log
	h.mu.Lock()
	h.cmd, h.exited = cmd, exited
	h.mu.Unlock()
}

func (h *host) alive() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL: no shutdown, no lease release, no drain.
func (h *host) kill() {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // already gone is fine
	<-exited
}

// stop sends SIGTERM and waits, then SIGKILL.
func (h *host) stop() {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill() //nolint:errcheck
		<-exited
	}
}

// cluster is n hosts, HAProxy in front, and clients for checking.
type cluster struct {
	e     env
	hosts []*host
	lb    string // balancer URL
	lbCmd *exec.Cmd
	rdb   *redis.Client
	db    *pgx.Conn // direct, for checks
	http  *http.Client
	guild string
}

type clusterOpts struct {
	instances int
	simulate  bool          // the first host runs the simulator
	extraEnv  []string      // added to every host's environment
	check     time.Duration // HAProxy's health check interval
	// plugins installed from the built ones; nil: a scorer (score jobs)
	// and the message logger (HTTP routes, per-event work).
	plugins []string
}

func startCluster(t testing.TB, e env, o clusterOpts) *cluster {
	t.Helper()
	if o.check == 0 {
		o.check = 500 * time.Millisecond
	}
	freshDatabase(t, e)
	c := &cluster{e: e, rdb: freshRedis(t, e), http: &http.Client{Timeout: 90 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	// Only the plugins the test needs: a scorer (score jobs) and one with
	// HTTP routes (plugin state across instances).
	pdir := filepath.Join(e.logs, "plugins")
	os.RemoveAll(pdir)
	plugins := o.plugins
	if plugins == nil {
		plugins = []string{"lurker-score", "message-logger"}
	}
	for _, p := range plugins {
		if err := copyDir(filepath.Join(e.plugins, p), filepath.Join(pdir, p)); err != nil {
			t.Fatal(err)
		}
	}
	opt, _ := redis.ParseURL(e.redisURL)
	redisURL := fmt.Sprintf("redis://%s/%d", opt.Addr, e.redisDB)
	if opt.Password != "" {
		redisURL = fmt.Sprintf("redis://:%s@%s/%d", url.QueryEscape(opt.Password), opt.Addr, e.redisDB)
	}
	common := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"SPYWATCHER_DATABASE_URL=" + withDB(t, e.bouncerURL, clusterDB),
		"SPYWATCHER_DB_PGBOUNCER=true",
		"SPYWATCHER_REDIS_URL=" + redisURL,
		"SPYWATCHER_ADMIN_TOKEN=" + adminToken,
		"SPYWATCHER_SECRET_KEY=" + secretKey,
		"SPYWATCHER_PLUGINS_DIR=" + pdir,
		// The rate-limit check uses an API key tier; everything else must
		// not be limited (the test and the benchmarks send a lot).
		"SPYWATCHER_RATE_LIMIT_IP=0",
		"SPYWATCHER_RATE_LIMIT_USER=0",
		"SPYWATCHER_API_KEY_TIERS=free=60/10000,standard=600/200000,unlimited=100000/1000000000,tight=20/100000",
		"SPYWATCHER_SIMULATE_SEED=" + strconv.Itoa(simSeed),
		"SPYWATCHER_SIMULATE_MEMBERS=60",
		"SPYWATCHER_SIMULATE_HISTORY=2h",
		"SPYWATCHER_SCORE_INTERVAL=2s",
		"SPYWATCHER_JOB_LEASE_TTL=3s",
		"SPYWATCHER_SHUTDOWN_TIMEOUT=5s",
		"SPYWATCHER_LOG_LEVEL=info",
	}
	common = append(common, o.extraEnv...)
	for i := 0; i < o.instances; i++ {
		h := &host{name: fmt.Sprintf("h%d", i+1), port: freePort(t)}
		h.log = filepath.Join(e.logs, h.name+".log")
		os.Remove(h.log)
		data := filepath.Join(e.logs, h.name+"-data")
		os.RemoveAll(data)
		h.env = append(append([]string{}, common...),
			fmt.Sprintf("SPYWATCHER_ADDR=127.0.0.1:%d", h.port),
			"SPYWATCHER_DATA_DIR="+data)
		if i == 0 && o.simulate {
			h.env = append(h.env, "SPYWATCHER_SIMULATE=true")
		}
		c.hosts = append(c.hosts, h)
	}
	t.Cleanup(func() { c.shutdown(t) })
	for _, h := range c.hosts {
		h.start(t, e.bin)
	}
	for _, h := range c.hosts {
		c.waitReady(t, h)
	}
	c.startBalancer(t, o.check)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, withDB(t, e.pgURL, clusterDB))
	if err != nil {
		t.Fatal(err)
	}
	c.db = db
	return c
}

func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, en := range ents {
		b, err := os.ReadFile(filepath.Join(from, en.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, en.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) waitReady(t testing.TB, h *host) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if !h.alive() {
			t.Fatalf("%s exited during start:\n%s", h.name, tail(h.log, 40))
		}
		if resp, err := c.http.Get(h.url() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 90 s:\n%s", h.name, tail(h.log, 40))
}

// haproxyConfig is the balancer: round robin over the hosts, each checked
// with GET /readyz every check interval (two failures take it out, two
// successes put it back), WebSocket upgrades passed through, and the
// answering host named in X-Spywatcher-Backend so the test can see the
// spread. A request whose connection to a host fails is sent to another
// (redispatch); one that already reached a host is never replayed. The
// stats socket lets the benchmarks see when a host is marked down.
func haproxyConfig(sock string, port int, hosts []*host, check time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 4096
    stats socket %s mode 600 level user

defaults
    mode http
    timeout connect 2s
    timeout client 90s
    timeout server 90s
    timeout tunnel 1h
    option redispatch
    retries 2

frontend spywatcher
    bind 127.0.0.1:%d
    default_backend hosts

backend hosts
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter %dms fastinter %dms fall 2 rise 2
    http-response set-header X-Spywatcher-Backend %%s
`, sock, port, check.Milliseconds(), check.Milliseconds())
	for _, h := range hosts {
		fmt.Fprintf(&b, "    server %s 127.0.0.1:%d check\n", h.name, h.port)
	}
	return b.String()
}

func (c *cluster) startBalancer(t testing.TB, check time.Duration) {
	port := freePort(t)
	cfg := filepath.Join(c.e.logs, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(filepath.Join(c.e.logs, "haproxy.sock"), port, c.hosts, check)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(c.e.logs, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("haproxy: %v", err)
	}
	c.lbCmd = cmd
	c.lb = fmt.Sprintf("http://127.0.0.1:%d", port)
	// Up when every host has answered through it.
	deadline := time.Now().Add(30 * time.Second)
	seen := map[string]bool{}
	for len(seen) < len(c.hosts) {
		if time.Now().After(deadline) {
			t.Fatalf("balancer: only %v answered:\n%s", seen, tail(logf.Name(), 20))
		}
		if resp, err := c.http.Get(c.lb + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				seen[resp.Header.Get("X-Spywatcher-Backend")] = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) shutdown(t testing.TB) {
	if c.lbCmd != nil {
		c.lbCmd.Process.Kill() //nolint:errcheck
		c.lbCmd.Wait()         //nolint:errcheck
	}
	var wg sync.WaitGroup
	for _, h := range c.hosts {
		if h.cmd == nil || !h.alive() {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); h.stop() }()
	}
	wg.Wait()
	if c.db != nil {
		c.db.Close(context.Background())
	}
	if t.Failed() {
		for _, h := range c.hosts {
			t.Logf("--- %s (%s), last lines:\n%s", h.name, h.log, tail(h.log, 30))
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// do sends a request with the admin token (or tok) and decodes a JSON
// answer into out when out is not nil.
func (c *cluster) do(method, u, tok string, body any, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	if tok == "" {
		tok = adminToken
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp, fmt.Errorf("%s %s: %d %s: %w", method, u, resp.StatusCode, raw, err)
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		return resp, fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, truncate(string(raw), 300))
	}
	return resp, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s)", what, within, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// simGuild waits for the simulated guild to appear and returns its ID.
func (c *cluster) simGuild(t testing.TB) string {
	var id string
	waitFor(t, "the simulated guild", 60*time.Second, func() (bool, string) {
		var out struct {
			Guilds []struct {
				ID string `json:"id"`
			} `json:"guilds"`
		}
		if _, err := c.do("GET", c.lb+"/api/v1/guilds", "", nil, &out); err != nil {
			return false, err.Error()
		}
		if len(out.Guilds) == 0 {
			return false, "no guilds yet"
		}
		id = out.Guilds[0].ID
		return true, ""
	})
	c.guild = id
	return id
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$`)

// metric reads one sample (name with its label text, as in the exposition,
// e.g. `spywatcher_job_runs_total{job="scores"}`) from a host; absent is 0.
func (c *cluster) metric(h *host, series string) (float64, error) {
	resp, err := c.http.Get(h.url() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil || m[1]+m[2] != series {
			continue
		}
		return strconv.ParseFloat(m[3], 64)
	}
	return 0, sc.Err()
}

// leaseHolder returns the host holding a job lease (nil when none is, or the
// holder is not one of ours) by the process ID in the holder name.
func (c *cluster) leaseHolder(ctx context.Context, name string) (*host, string, error) {
	v, err := c.rdb.Get(ctx, "spywatcher:lease:"+name).Result()
	if errors.Is(err, redis.Nil) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	for _, h := range c.hosts {
		if strings.Contains(v, fmt.Sprintf("/%d/", h.pid())) {
			return h, v, nil
		}
	}
	return nil, v, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck
	return hex.EncodeToString(b)
}
