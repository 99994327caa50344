package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/app"
)

// recordCmd connects to the Discord gateway as `serve` would and writes every
// dispatch it receives, raw, to a JSONL file that `spywatcher replay` reads:
// a real guild's traffic, kept to replay, test or share.
func recordCmd(ctx context.Context, args []string, env Env) error {
	var out string
	var length time.Duration
	cfg, rest, err := loadConfig("record", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "JSONL file to write the gateway dispatches to (- for standard output)")
		fs.DurationVar(&length, "duration", 0, "stop after this long (default: until interrupted)")
	})
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", rest)}
	case out == "":
		return &exitError{code: 2, err: errors.New("--out FILE is required (- for standard output)")}
	case cfg.DiscordToken == "":
		return &exitError{code: 2, err: errors.New("set SPYWATCHER_DISCORD_TOKEN (or --discord-token) to the bot's token")}
	case length < 0:
		return &exitError{code: 2, err: errors.New("--duration must be positive")}
	}
	var w io.Writer = env.Stdout
	if out != "-" {
		// Recordings hold user IDs, names and activity: private to the owner.
		f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer f.Close()
		w = f
	}
	log := app.NewLogger(cfg, env.Stderr)
	src, rec, err := app.NewRecorder(cfg, log, w)
	if err != nil {
		return err
	}
	if length > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, length)
		defer cancel()
	}
	// Flush every second, so that a killed recorder loses at most that.
	flushDone := make(chan struct{})
	stopFlush := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopFlush:
				return
			case <-t.C:
				if err := rec.Flush(); err != nil {
					log.Error("writing the recording", "err", err)
				}
			}
		}
	}()
	runErr := src.Run(ctx)
	close(stopFlush)
	<-flushDone
	if err := rec.Flush(); err != nil && runErr == nil {
		runErr = err
	}
	if out != "-" {
		fmt.Fprintf(env.Stderr, "%d dispatches written to %s\n", rec.Count(), out)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) && !errors.Is(runErr, context.DeadlineExceeded) {
		return runErr
	}
	return nil
}
