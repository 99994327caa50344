package simulate

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// BenchmarkGenerate measures generation alone: one op is one event, and
// events/s includes the setup burst of a guild of that size.
func BenchmarkGenerate(b *testing.B) {
	for _, members := range []int{200, 10000, 100000} {
		b.Run("members="+strconv.Itoa(members), func(b *testing.B) {
			s, err := New(Config{Seed: 1, Members: members})
			if err != nil {
				b.Fatal(err)
			}
			errEnough := errors.New("enough")
			n := 0
			b.ReportAllocs()
			b.ResetTimer()
			err = s.Generate(context.Background(), monday, monday.Add(20*365*24*time.Hour), func(event.Event) error {
				if n++; n >= b.N {
					return errEnough
				}
				return nil
			})
			b.StopTimer()
			if !errors.Is(err, errEnough) {
				b.Fatalf("Generate = %v after %d of %d events", err, n, b.N)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
