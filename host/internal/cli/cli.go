// Package cli implements the spywatcher command line: it parses arguments
// into a config and runs one subcommand. Each subcommand lives in its own
// file; errors come back as an exit code and a message on stderr.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spywatcher/spywatcher/host/internal/config"
)

// Env is the process's view of the world, injectable for tests.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// Version is the build's version, set with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

type command struct {
	summary string
	run     func(ctx context.Context, args []string, env Env) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":    {"run the host: API, ingest, sources (--simulate for a demo guild, SPYWATCHER_DISCORD_TOKEN for Discord)", serve},
		"migrate":  {"apply database migrations and print the schema version", migrate},
		"plugin":   {"install, enable, grant, configure and remove plugins (spywatcher plugin --help)", pluginCmd},
		"replay":   {"ingest JSONL files of events or raw gateway dispatches", replayCmd},
		"simulate": {"write a simulated guild's events as JSONL (and its ground truth)", simulateCmd},
		"record":   {"write the raw Discord gateway dispatches the bot receives as JSONL (for replay)", recordCmd},
		"user":     {"manage accounts: create [--admin], list, role, passwd", userCmd},
		"apikey":   {"manage API keys: create, list, revoke", apikeyCmd},
		"backup":   {"write a consistent copy of the SQLite database to FILE while the host runs", backupCmd},
		"restore":  {"replace the SQLite database with a verified backup FILE (the host stopped)", restoreCmd},
		"guild":    {"a guild's privacy settings (what is collected, retention) and removal: settings, remove", guildCmd},
		"privacy":  {"people's data: export, delete, opt-out, opt-in, opt-outs, requests, purge", privacyCmd},
		"keys":     {"re-seal what is encrypted at rest under the current --secret-key: rotate", keysCmd},
		"version":  {"print the version", func(_ context.Context, _ []string, env Env) error { fmt.Fprintln(env.Stdout, Version); return nil }},
	}
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Run executes the command line and returns the process exit code: 0 on
// success, 1 when the command failed, 2 for a usage error.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "spywatcher: unknown command %q\n\n", args[0])
		usage(env.Stderr, cmds)
		return 2
	}
	err := c.run(ctx, args[1:], env)
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		fmt.Fprintf(env.Stderr, "spywatcher %s: %v\n", args[0], ee.err)
		return ee.code
	default:
		fmt.Fprintf(env.Stderr, "spywatcher %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "Usage: spywatcher <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'spywatcher <command> --help' for the settings of a command.")
}

// loadConfig parses the shared settings table for a command, turning flag
// errors into usage errors.
func loadConfig(name string, args []string, env Env, extra ...func(*flag.FlagSet)) (*config.Config, []string, error) {
	cfg, rest, err := config.Load(name, args, env.Getenv, env.Stdout, extra...)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, &exitError{code: 2, err: err}
	}
	return cfg, rest, nil
}
