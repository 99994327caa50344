package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBodyGolden pins the JSON each format POSTs for a score notice; run
// with UPDATE_GOLDEN=1 to accept a deliberate change, and review the diff.
func TestBodyGolden(t *testing.T) {
	n := &Notice{Rule: "suspicious", On: OnScore, EventID: "score-1", UserID: alice,
		At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Title: "Score at or above 80",
		Fields: []Field{
			{Name: "Member", Value: "nelly (" + alice + ")", User: alice},
			{Name: "Scorer", Value: "suspicion-score"},
			{Name: "Score", Value: "50 → 85"},
			{Name: "Why", Value: "Online on 3 clients at once; 40% of messages between 2 and 5 am"},
		}}
	for _, format := range []string{FormatDiscord, FormatSlack} {
		t.Run(format, func(t *testing.T) {
			b, err := render(format, n, guild)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := json.Indent(&out, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			out.WriteByte('\n')
			path := filepath.Join("testdata", format+".golden.json")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if !bytes.Equal(want, out.Bytes()) {
				t.Fatalf("%s body changed; if intended, run with UPDATE_GOLDEN=1\n%s", format, out.Bytes())
			}
		})
	}
}
