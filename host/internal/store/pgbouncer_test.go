package store

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// TestPgBouncerLeavesNoSessionState ingests through PgBouncer in
// transaction pooling mode from several goroutines (so that transactions
// hop between server connections) and then finds no temporary table on
// any server connection: ingest keeps no session state for whichever client
// the connection serves next.
func TestPgBouncerLeavesNoSessionState(t *testing.T) {
	base := os.Getenv(storetest.PgBouncerEnv)
	if base == "" {
		t.Skip(storetest.PgBouncerEnv + " not set: PgBouncer not available")
	}
	ctx := context.Background()
	s, err := Open(ctx, storetest.PgBouncerDSN(t, base), Options{PgBouncer: true, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				user := []string{alice, bob, carol}[i%3]
				e := message(user, time.Duration(w*100+i)*time.Second, fmt.Sprint(1100000000000000000+w*100+i))
				if _, err := s.Ingest(ctx, []event.Event{e}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relkind = 'r'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d temporary tables left on server connections", n)
	}
	var stored int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 40 {
		t.Fatalf("%d events stored, want 40", stored)
	}
}
