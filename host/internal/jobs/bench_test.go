package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkLeaseRenew measures one renewal (AcquireFenced by the holder)
// on each backend the tests can reach: the cost a runner pays per target
// every TTL/3.
func BenchmarkLeaseRenew(b *testing.B) {
	for name, pair := range shared(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			lease := fmt.Sprintf("bench:%d", time.Now().UnixNano())
			for b.Loop() {
				if tok, err := pair[0].AcquireFenced(ctx, lease, "a", time.Minute); err != nil || tok == 0 {
					b.Fatal(tok, err)
				}
			}
		})
	}
}

// BenchmarkFailover measures how long four targets take to move to a second
// instance after their holder dies without releasing them, with a 300 ms
// lease TTL: the TTL plus up to one renewal period (TTL/3) plus a tick.
func BenchmarkFailover(b *testing.B) {
	for name, pair := range shared(b) {
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				t := b
				d := newDetector(t)
				jobName := fmt.Sprintf("failover-%d-%d", time.Now().UnixNano(), i)
				a, _, killA, doneA := start(t, crashed{pair[0]}, "a", job(jobName, d.job("a")))
				for len(a.Held(jobName)) < len(targets) {
					time.Sleep(time.Millisecond)
				}
				bRunner, _, killB, doneB := start(t, pair[1], "b", job(jobName, d.job("b")))
				killA()
				<-doneA
				died := time.Now()
				for len(bRunner.Held(jobName)) < len(targets) {
					time.Sleep(time.Millisecond)
				}
				total += time.Since(died)
				killB()
				<-doneB
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/failover")
		})
	}
}
