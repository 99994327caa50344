package api

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/ratelimit"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// TestTwoInstancesShareRedis runs two host instances (two routers, each with
// its own limiter and enforcer) over one database and one Redis: the rate
// limit is shared, and a role given through one instance is enforced by the
// other at once.
func TestTwoInstancesShareRedis(t *testing.T) {
	url := os.Getenv("SPYWATCHER_TEST_REDIS_URL")
	if url == "" {
		t.Skip("SPYWATCHER_TEST_REDIS_URL unset: skipping the two-instance Redis test")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "shared.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := auth.EnsureAdminToken(ctx, st, token); err != nil {
		t.Fatal(err)
	}
	seedGuild(t, st, guildID)
	prefix := fmt.Sprintf("test:%d:", time.Now().UnixNano())
	const limit = 6
	var inst []*authHarness
	for i := 0; i < 2; i++ {
		rdb := redis.NewClient(opts)
		t.Cleanup(func() { rdb.Close() })
		reg := prometheus.NewRegistry()
		d, parts := withAuth(t, st, Deps{Store: st, Ingest: nopIngest{}, Gatherer: reg, Registerer: reg, Logger: slog.New(slog.DiscardHandler),
			Limiter: ratelimit.NewRedis(rdb, prefix)}, bus.NewRedisSignals(rdb, nil))
		d.Limits.PerPrincipal = limit
		h, err := Router(d)
		if err != nil {
			t.Fatal(err)
		}
		inst = append(inst, &authHarness{h: h, st: st, parts: parts})
	}

	// A role given through instance 0 (warm instance 1's cache with a deny first).
	acc, err := st.CreateAccount(ctx, store.Account{ID: "acc-gina", Username: "gina"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := inst[0].parts.sessions.Start(ctx, acc.ID, "password", "", "")
	if err != nil {
		t.Fatal(err)
	}
	inst[1].must(t, req{method: "GET", path: "/api/v1/guilds/" + guildID, bearer: tk.AccessToken}, 403)
	inst[0].must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + acc.ID, bearer: token, body: `{"role":"viewer"}`}, 200)
	deadline := time.Now().Add(5 * time.Second)
	for inst[1].do(req{method: "GET", path: "/api/v1/guilds/" + guildID, bearer: tk.AccessToken}).Code != 200 {
		if time.Now().After(deadline) {
			t.Fatal("instance 1 never saw the role given on instance 0")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ok, _ := inst[1].parts.enf.Enforce(authz.User(acc.ID), guildID, "guild", authz.Read); !ok {
		t.Fatal("enforcer of instance 1 not updated")
	}

	// The per-principal limit counts requests to both instances together.
	// (A fresh principal: gina's window holds the calls above.) A run that
	// straddles the minute's end spans two windows; it is run again.
	allowed := 0
	for try := 0; try < 3; try++ {
		start := time.Now().Truncate(time.Minute)
		hal, err := st.CreateAccount(ctx, store.Account{ID: fmt.Sprint("acc-hal", try), Username: fmt.Sprint("hal", try)})
		if err != nil {
			t.Fatal(err)
		}
		tk2, _ := inst[1].parts.sessions.Start(ctx, hal.ID, "password", "", "")
		allowed = 0
		last := -1
		for i := 0; i < 2*limit; i++ {
			w := inst[i%2].do(req{method: "GET", path: "/api/v1/auth/me", bearer: tk2.AccessToken})
			switch w.Code {
			case 200:
				allowed++
				rem, _ := strconv.Atoi(w.Header().Get("RateLimit-Remaining"))
				if last >= 0 && rem >= last {
					t.Fatalf("remaining did not fall across instances: %d after %d", rem, last)
				}
				last = rem
			case 429:
				if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "rate_limited") {
					t.Fatalf("429 without Retry-After: %v", w.Header())
				}
			default:
				t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
			}
		}
		if time.Now().Truncate(time.Minute).Equal(start) {
			break
		}
	}
	if allowed != limit {
		t.Fatalf("%d requests allowed across two instances, want the shared limit %d", allowed, limit)
	}
}
