package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/app"
	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/host/internal/ingest/replay"
	"github.com/spywatcher/spywatcher/host/internal/ingest/simulate"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// roleLookup adapts the store to the normaliser's RoleLookup.
type roleLookup struct{ st *store.Store }

func (l roleLookup) MemberRoles(ctx context.Context, guildID, userID string) ([]string, bool, error) {
	return l.st.KnownMemberRoles(ctx, guildID, userID)
}

func replayCmd(ctx context.Context, args []string, env Env) error {
	cfg, files, err := loadConfig("replay", args, env)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return &exitError{code: 2, err: errors.New("name one or more JSONL files to replay (- for standard input)")}
	}
	// Open every file before storing anything, so a typo fails fast.
	var inputs []*os.File
	defer func() {
		for _, f := range inputs {
			if f != os.Stdin {
				f.Close()
			}
		}
	}()
	for _, name := range files {
		if name == "-" {
			inputs = append(inputs, os.Stdin)
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		inputs = append(inputs, f)
	}
	log := app.NewLogger(cfg, env.Stderr)
	a, err := app.New(ctx, cfg, log, env.Stdout)
	if err != nil {
		return err
	}
	defer a.Close()
	pipeCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- a.Pipe.Run(pipeCtx) }()

	norm := discord.NewNormalizer(roleLookup{a.Store})
	// A file from `spywatcher simulate` replays into a configured guild,
	// as `serve --simulate` runs one; a recording of a real guild does not
	// configure anything: its admin decides what is collected.
	configured := map[string]bool{}
	sink := ingest.SinkFunc(func(ctx context.Context, ev event.Event) error {
		if !configured[ev.GuildID] && simulate.IsSimulated(ev.ID) && event.IsSnowflake(ev.GuildID) {
			if err := a.Privacy.EnsureSettings(ctx, demoSettings(ev.GuildID, "")); err != nil {
				return err
			}
			configured[ev.GuildID] = true
		}
		return a.Pipe.Submit(ctx, ev)
	})
	var total replay.Stats
	var runErr error
	for i, f := range inputs {
		opts := replay.Options{Normalizer: norm, FallbackTime: time.Now()}
		if out, ok := env.Stderr.(*os.File); ok && replay.IsTerminal(out) {
			opts.Progress = out
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				opts.Total = st.Size()
			}
		}
		var r io.Reader = f
		if f == os.Stdin && env.Stdin != nil {
			r = env.Stdin
		}
		st, err := replay.Run(ctx, r, sink, opts)
		if opts.Progress != nil {
			fmt.Fprintln(opts.Progress)
		}
		fmt.Fprintf(env.Stdout, "%s: %d lines, %d events submitted, %d rejected, %d malformed, %d skipped in %s\n",
			files[i], st.Lines, st.Submitted, st.Rejected, st.Malformed, st.Skipped, st.Duration.Round(time.Millisecond))
		for _, p := range st.Problems {
			fmt.Fprintf(env.Stdout, "  %s\n", p)
		}
		if n := st.Rejected + st.Malformed - int64(len(st.Problems)); n > 0 {
			fmt.Fprintf(env.Stdout, "  ... and %d more\n", n)
		}
		total.Rejected += st.Rejected
		total.Malformed += st.Malformed
		if err != nil {
			runErr = fmt.Errorf("%s: %w", files[i], err)
			break
		}
	}
	a.Pipe.Close()
	if err := <-pipeDone; err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return runErr
	}
	if bad := total.Rejected + total.Malformed; bad > 0 {
		return fmt.Errorf("%d lines could not be ingested (listed above); the rest were stored", bad)
	}
	return nil
}
