package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest/simulate"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// simulateCmd writes a simulated guild's events to a JSONL file that replay
// (or any tool) can read, and optionally the simulator's ground truth.
func simulateCmd(ctx context.Context, args []string, env Env) error {
	var out, truth, fromStr string
	var length time.Duration
	cfg, rest, err := loadConfig("simulate", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "-", "JSONL file to write (- for standard output)")
		fs.StringVar(&truth, "truth", "", "also write the ground truth (who is which archetype) as JSON to this file")
		fs.StringVar(&fromStr, "from", "", "simulated start time, RFC 3339 (default: --duration before now)")
		fs.DurationVar(&length, "duration", 24*time.Hour, "how much simulated time to generate")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", rest)}
	}
	if length <= 0 {
		return &exitError{code: 2, err: errors.New("--duration must be positive")}
	}
	to := time.Now().UTC()
	from := to.Add(-length)
	if fromStr != "" {
		if from, err = time.Parse(time.RFC3339, fromStr); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--from: %w", err)}
		}
		to = from.Add(length)
	}
	loc, _ := time.LoadLocation(cfg.SimTimezone)
	sim, err := simulate.New(simulate.Config{Seed: cfg.SimSeed, Members: cfg.SimMembers, Timezone: loc})
	if err != nil {
		return err
	}
	var w io.Writer = env.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	var n int64
	err = sim.Generate(ctx, from, to, func(ev event.Event) error {
		n++
		return enc.Encode(ev)
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if truth != "" {
		b, err := json.MarshalIndent(sim.Truth(), "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(truth, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if out != "-" {
		fmt.Fprintf(env.Stderr, "wrote %d events (%s to %s) to %s\n", n, from.Format(time.RFC3339), to.Format(time.RFC3339), out)
	}
	return nil
}
