package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// BenchmarkPutScores stores batches of 500 scores shaped like the
// suspicion scorer's (seven factors, a one-line explanation), first as new
// rows and then as updates of the same members, on SQLite.
func BenchmarkPutScores(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "scores.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	factors := make([]map[string]any, 7)
	for i := range factors {
		factors[i] = map[string]any{"name": "factor_name_" + strconv.Itoa(i), "contribution": 12.5, "value": 0.4321}
	}
	raw, _ := json.Marshal(factors)
	batch := func(round, k int) []store.MemberScore {
		out := make([]store.MemberScore, 500)
		for i := range out {
			out[i] = store.MemberScore{GuildID: "41771983423143937", Scorer: "suspicion-score",
				UserID: strconv.Itoa(80351110224678912 + k*500 + i), Score: float64((round*7 + i) % 100), Factors: raw,
				Explanation: "Suspicion 42 (medium): multi-client ratio 0.40, account 12 days old, first message 3 min after joining",
				RunID:       "run-" + strconv.Itoa(round), ComputedAt: time.Unix(int64(1700000000+round), 0), History: true}
		}
		return out
	}
	b.Run("insert", func(b *testing.B) {
		k := 0
		for b.Loop() {
			if err := st.PutScores(ctx, batch(0, k)); err != nil {
				b.Fatal(err)
			}
			k++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(500*b.N), "µs/score")
	})
	b.Run("update", func(b *testing.B) {
		round := 1
		for b.Loop() {
			if err := st.PutScores(ctx, batch(round, 0)); err != nil {
				b.Fatal(err)
			}
			round++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(500*b.N), "µs/score")
	})
}
