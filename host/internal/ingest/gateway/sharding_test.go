package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/ingest/gateway/gatewaytest"
	"github.com/spywatcher/spywatcher/host/internal/lease"
	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// TestShards: the shard count comes from GET /gateway/bot unless
// configured, every shard identifies as [id, count], and guild traffic
// arrives through the shard Discord routes it to.
func TestShards(t *testing.T) {
	t.Parallel()
	if gatewaytest.ShardOf(guildA, 2) != 0 || gatewaytest.ShardOf(guildB, 2) != 1 {
		t.Fatal("test guilds are not on shards 0 and 1 of 2")
	}
	for _, tt := range []struct {
		name   string
		count  int   // configured; 0 takes the recommendation of 2
		shards []int // configured
		want   [][2]int
	}{
		{"recommended count", 0, nil, [][2]int{{0, 2}, {1, 2}}},
		{"configured count", 3, nil, [][2]int{{0, 3}, {1, 3}, {2, 3}}},
		{"some shards only", 0, []int{1}, [][2]int{{1, 2}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t, gatewaytest.Options{Shards: 2, MaxConcurrency: 2})
			for _, g := range []string{guildA, guildB} {
				if err := fake.AddGuild(guildCreate(g, 2, false)); err != nil {
					t.Fatal(err)
				}
			}
			c := &collector{}
			cfg := testConfig(fake, c)
			cfg.ShardCount, cfg.Shards = tt.count, tt.shards
			start(t, cfg)
			waitFor(t, "identifies", func() bool { return len(fake.Stats().Identifies) == len(tt.want) })
			var got [][2]int
			for _, id := range fake.Stats().Identifies {
				got = append(got, id.Shard)
			}
			slices.SortFunc(got, func(a, b [2]int) int { return a[0] - b[0] })
			if !slices.Equal(got, tt.want) {
				t.Fatalf("identified shards %v, want %v", got, tt.want)
			}
			// Each guild is created once, by the shard that owns it, and its
			// traffic arrives.
			wantGuilds := 0
			for _, g := range []string{guildA, guildB} {
				if slices.ContainsFunc(tt.want, func(s [2]int) bool { return gatewaytest.ShardOf(g, s[1]) == s[0] }) {
					wantGuilds++
					waitFor(t, "connected", func() bool { return fake.Connected(gatewaytest.ShardOf(g, tt.want[0][1])) })
					send(t, fake, g, stream(g, 0, 4))
				}
			}
			waitFor(t, "traffic", func() bool { return c.count("MESSAGE_CREATE") == wantGuilds })
			if n := c.count("GUILD_CREATE"); n != wantGuilds {
				t.Fatalf("%d GUILD_CREATEs, want %d", n, wantGuilds)
			}
		})
	}
}

func TestShardConfigErrors(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{Shards: 2})
	cfg := testConfig(fake, &collector{})
	cfg.Shards = []int{2}
	r := start(t, cfg)
	if err := <-r.wait(); err == nil || !strings.Contains(err.Error(), "only 2 shards") {
		t.Fatalf("shard 2 of 2 accepted: %v", err)
	}
	cfg.ShardCount = 2
	if _, err := New(cfg); err == nil {
		t.Fatal("New accepted shard 2 of 2")
	}
	if _, err := New(Config{Handler: &collector{}, Leaser: &lease.Local{}}); err == nil {
		t.Fatal("New accepted no token")
	}
}

// TestIdentifyConcurrency: a rate-limit bucket admits one identify per
// IdentifyInterval, across every instance sharing the leaser; other buckets
// are not held up.
func TestIdentifyConcurrency(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := &lease.Local{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	mk := func(holder string) *Source {
		s, err := New(Config{Token: testToken, Handler: &collector{}, Leaser: clock, Holder: holder,
			IdentifyInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := mk("a"), mk("b")
	ctx := context.Background()
	if err := a.waitIdentify(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.waitIdentify(ctx, 1); err != nil { // another bucket: at once
		t.Fatal(err)
	}
	var done atomic.Bool
	go func() {
		if err := b.waitIdentify(ctx, 0); err == nil {
			done.Store(true)
		}
	}()
	// The fake clock stands still, so bucket 0 stays taken however long
	// this waits; a few polls show b is waiting, not failing.
	time.Sleep(50 * time.Millisecond)
	if done.Load() {
		t.Fatal("a second identify in bucket 0 went through within the interval")
	}
	mu.Lock()
	now = now.Add(100 * time.Millisecond)
	mu.Unlock()
	waitFor(t, "the second identify", done.Load)
}

// leaserFunc is a Leaser whose methods are test functions around a real one.
type leaserFunc struct {
	next    Leaser
	acquire func(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	release func(ctx context.Context, name, holder string) error
}

func (l *leaserFunc) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if l.acquire != nil {
		return l.acquire(ctx, name, holder, ttl)
	}
	return l.next.AcquireLease(ctx, name, holder, ttl)
}

func (l *leaserFunc) ReleaseLease(ctx context.Context, name, holder string) error {
	if l.release != nil {
		return l.release(ctx, name, holder)
	}
	return l.next.ReleaseLease(ctx, name, holder)
}

// TestShardHandOver runs two host instances, each with its own store
// connection and pipeline, on one database. One ingests the shard while the
// other stands by; when the first dies without releasing its lease, the
// second takes the shard over once the lease expires. No two ever run the
// shard at once, and a message both were sent is stored once.
func TestShardHandOver(t *testing.T) {
	t.Parallel()
	backends := dialects(t)
	if os.Getenv("SPYWATCHER_TEST_REDIS_URL") != "" {
		backends = append(backends, "redis")
	} else {
		t.Log("SPYWATCHER_TEST_REDIS_URL not set: skipping leases in Redis")
	}
	for _, backend := range backends {
		for _, how := range []string{"holder crashes", "holder loses its database"} {
			t.Run(backend+"/"+how, func(t *testing.T) {
				t.Parallel()
				fake := newFake(t, gatewaytest.Options{})
				if err := fake.AddGuild(guildCreate(guildA, 3, false)); err != nil {
					t.Fatal(err)
				}
				// Leases in the database the instances share, or in Redis
				// beside a SQLite database.
				dialect := backend
				if backend == "redis" {
					dialect = "sqlite"
				}
				dsn := dbDSN(t, dialect)
				hostA, hostB := newHost(t, dsn, pipeline.Config{}), newHost(t, dsn, pipeline.Config{})
				var leasesA, leasesB Leaser = hostA.st, hostB.st
				if backend == "redis" {
					leasesA, leasesB = redisLeases(t), redisLeases(t)
				}
				var partitioned atomic.Bool
				leaserA := &leaserFunc{next: leasesA,
					acquire: func(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
						if partitioned.Load() {
							return false, errors.New("connection refused")
						}
						return leasesA.AcquireLease(ctx, name, holder, ttl)
					},
					// A crashed process releases nothing.
					release: func(context.Context, string, string) error { return nil },
				}
				mk := func(h *host, l Leaser, holder string) Config {
					cfg := testConfig(fake, ingestInto(t, h))
					cfg.Leaser, cfg.Holder, cfg.LeaseTTL = l, holder, 3*time.Second
					return cfg
				}
				a := start(t, mk(hostA, leaserA, "instance-a"))
				waitFor(t, "a connected", func() bool { return fake.Connected(0) })
				b := start(t, mk(hostB, leasesB, "instance-b"))

				before := stream(guildA, 0, 40)
				send(t, fake, guildA, before)
				waitFor(t, "a's events", func() bool { return hostA.count(t, guildA) == len(backfillFacts(3))+len(before) })
				if n := len(fake.Stats().Identifies); n != 1 {
					t.Fatalf("%d identifies while a held the shard: b did not stand by", n)
				}

				switch how {
				case "holder crashes":
					if err := a.stop(); err != nil {
						t.Fatal(err)
					}
				case "holder loses its database":
					partitioned.Store(true)
				}
				waitFor(t, "b to take over", func() bool { return len(fake.Stats().Identifies) == 2 && fake.Connected(0) })
				if backend != "redis" {
					if l, err := hostB.st.GetLease(context.Background(), "discord:1100000000000000042:shard:0/1"); err != nil || l.Holder != "instance-b" {
						t.Fatalf("lease %+v, %v: want instance-b", l, err)
					}
				}

				// Discord delivers what happened around the hand-over to
				// whichever session was live; a message both were sent is
				// stored once, its ID being the same.
				var again []traffic
				for _, tr := range before {
					if tr.typ == "MESSAGE_CREATE" || tr.typ == "TYPING_START" {
						again = append(again, tr)
					}
				}
				after := stream(guildA, 40, 40)
				send(t, fake, guildA, slices.Concat(again, after))
				want := slices.Concat(backfillFacts(3), backfillFacts(3), facts(before), facts(after))
				waitFor(t, "b's events", func() bool { return hostB.count(t, guildA) >= len(want) })
				if err := b.stop(); err != nil {
					t.Fatal(err)
				}
				if err := a.stop(); err != nil {
					t.Fatal(err)
				}
				checkStored(t, hostB, guildA, want)
				if n := fake.Stats().MaxShardConnections; n != 1 {
					t.Fatalf("%d connections ran shard 0 at once", n)
				}
			})
		}
	}
}

// TestGuildAllowList: dispatches of guilds outside the allow-list never
// reach the handler, and their members are not requested.
func TestGuildAllowList(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{})
	for _, g := range []string{guildA, guildB} {
		if err := fake.AddGuild(guildCreate(g, 2, true)); err != nil {
			t.Fatal(err)
		}
	}
	c := &collector{}
	cfg := testConfig(fake, c)
	cfg.Guilds = []string{guildB}
	r := start(t, cfg)
	waitFor(t, "connected", func() bool { return fake.Connected(0) })
	send(t, fake, guildA, stream(guildA, 0, 8))
	send(t, fake, guildB, stream(guildB, 0, 8))
	waitFor(t, "guild B's traffic", func() bool { return c.count("MESSAGE_CREATE") == 2 })
	waitFor(t, "the member request", func() bool { return len(fake.Stats().MemberRequests) == 1 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.ds {
		if g, ok := guildOf(d.Type, d.Data); ok && g != guildB {
			t.Fatalf("%s of guild %s got through", d.Type, g)
		}
	}
	if rq := fake.Stats().MemberRequests[0]; rq.GuildID != guildB {
		t.Fatalf("members of %s requested", rq.GuildID)
	}
}

// TestMemberBackfill: a large guild's GUILD_CREATE lists only some members;
// the shard asks for the rest with their presences (op 8), and the chunks
// become member.join backfill and presence events.
func TestMemberBackfill(t *testing.T) {
	t.Parallel()
	fake := newFake(t, gatewaytest.Options{ChunkSize: 4})
	if err := fake.AddGuild(guildCreate(guildA, 2, true)); err != nil {
		t.Fatal(err)
	}
	var members []any
	presences := map[string]any{}
	for i := range 10 {
		members = append(members, member(guildA, i))
		if i%2 == 0 {
			presences[user(i)] = map[string]any{"user": map[string]any{"id": user(i)}, "status": "idle",
				"client_status": map[string]any{"mobile": "idle"}}
		}
	}
	if err := fake.SetMembers(guildA, members, presences); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, dbDSN(t, "sqlite"), pipeline.Config{})
	r := start(t, testConfig(fake, ingestInto(t, h)))
	// 2 from GUILD_CREATE, then 10 members in chunks of 4, 5 with presences.
	joins := func() (n, idle int) {
		for _, ev := range h.events(t, guildA) {
			if ev.Kind == event.KindMemberJoin {
				n++
			}
			if p, ok := ev.Data.(*event.Presence); ok && p.Status == event.StatusIdle {
				idle++
			}
		}
		return n, idle
	}
	waitFor(t, "backfilled members", func() bool { n, idle := joins(); return n == 12 && idle == 5 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	rq := fake.Stats().MemberRequests
	if len(rq) != 1 || rq[0].GuildID != guildA || !rq[0].Presences || rq[0].Nonce == "" {
		t.Fatalf("member requests %+v", rq)
	}
}

func TestMemberRequestSchedule(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	m := newMemberRequests(30*time.Second, time.Second)
	type step struct {
		now       time.Duration
		add       []string
		wantGuild string
		wantWait  time.Duration
		wantOK    bool
	}
	for i, st := range []step{
		{now: 0, wantOK: false},
		{now: 0, add: []string{"g1", "g2", "g1"}, wantGuild: "g1", wantOK: true},
		{now: 0, wantWait: time.Second, wantOK: true}, // g1 sent at 0: g2 waits for the gap
		{now: time.Second, wantGuild: "g2", wantOK: true},
		{now: 2 * time.Second, add: []string{"g1"}, wantWait: 28 * time.Second, wantOK: true}, // g1 again: 30 s after the last
		{now: 30 * time.Second, wantGuild: "g1", wantOK: true},
		{now: 31 * time.Second, wantOK: false},
	} {
		for _, g := range st.add {
			m.add(g)
		}
		g, wait, ok := m.next(at(st.now))
		if g != st.wantGuild || wait != st.wantWait || ok != st.wantOK {
			t.Fatalf("step %d: next = %q, %s, %v; want %q, %s, %v", i, g, wait, ok, st.wantGuild, st.wantWait, st.wantOK)
		}
		if g != "" {
			m.sent(g, "n-"+g, at(st.now))
			m.answered("n-" + g)
		}
	}
	if n := m.newNonce(); n == m.newNonce() {
		t.Fatal("nonces repeat")
	}

	// A request lost with its connection is asked again after a reconnect,
	// unless its answer arrives first.
	m.sent("g3", "n-g3", at(40*time.Second))
	m.sent("g4", "n-g4", at(41*time.Second))
	m.answered("n-g4")
	m.requeueUnanswered()
	if g, wait, ok := m.next(at(60 * time.Second)); g != "" || wait != 10*time.Second || !ok {
		t.Fatalf("after a reconnect: next = %q, %s, %v; want g3 in 10s", g, wait, ok)
	}
	m.answered("n-g3") // a late answer to the lost request: the new one stays
	if g, _, _ := m.next(at(70 * time.Second)); g != "g3" {
		t.Fatalf("after a reconnect: next = %q, want g3", g)
	}
}

// redisKeys scopes each test's Redis leases; both instances of a test must
// use the same prefix, so it is made once per test.
var redisKeys sync.Map // *testing.T → prefix

// redisLeases returns leases in the Redis at SPYWATCHER_TEST_REDIS_URL,
// under a prefix private to the test.
func redisLeases(t *testing.T) Leaser {
	opts, err := redis.ParseURL(os.Getenv("SPYWATCHER_TEST_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	prefix, _ := redisKeys.LoadOrStore(t, fmt.Sprintf("spywatcher-test:%d:", time.Now().UnixNano()))
	return lease.NewRedis(c, prefix.(string))
}
