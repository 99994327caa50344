package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedenceFlagsOverEnvOverDefaults(t *testing.T) {
	c, rest, err := Load("serve", []string{"--batch-size", "99", "--simulate", "extra"},
		env(map[string]string{"SPYWATCHER_BATCH_SIZE": "7", "SPYWATCHER_QUEUE_SIZE": "1000"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchSize != 99 || c.QueueSize != 1000 || !c.Simulate || c.Addr != "127.0.0.1:8080" || c.FlushInterval != 50*time.Millisecond {
		t.Fatalf("config: %+v", c)
	}
	if len(rest) != 1 || rest[0] != "extra" {
		t.Fatalf("rest: %v", rest)
	}
	if c.DSN() != "data/spywatcher.db" {
		t.Fatalf("default DSN %q", c.DSN())
	}
}

func TestBadValuesNameTheirSource(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--batch-size", "lots"}, nil, "batch-size"},
		{nil, map[string]string{"SPYWATCHER_ADDR": "localhost"}, "SPYWATCHER_ADDR"},
		{nil, map[string]string{"SPYWATCHER_DATABASE_URL": "mysql://x"}, "postgres://"},
		{[]string{"--flush-interval", "-1s"}, nil, "positive duration"},
		{[]string{"--log-level", "loud"}, nil, "log-level"},
		{[]string{"--simulate-timezone", "Mars/Olympus"}, nil, "time zone"},
		{[]string{"--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"--admin-token", "short"}, nil, "16 characters"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args, tt.env), func(t *testing.T) {
			_, _, err := Load("serve", tt.args, env(tt.env), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	const pw = "hunter2hunter2hunter2"
	c, _, err := Load("serve", nil, env(map[string]string{
		"SPYWATCHER_DATABASE_URL": "postgres://u:" + pw + "@db/x",
		"SPYWATCHER_ADMIN_TOKEN":  pw,
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprint(c.Dump()...), pw) {
		t.Fatal("dump shows a secret")
	}
	_, _, err = Load("serve", []string{"--database-url", "mysql://u:" + pw + "@x"}, env(nil), nil)
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("error leaks a secret or is missing: %v", err)
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var b strings.Builder
	_, _, err := Load("serve", []string{"--help"}, env(nil), &b)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range Settings() {
		if !strings.Contains(b.String(), "--"+s.Name) || !strings.Contains(b.String(), s.Env) {
			t.Fatalf("help lacks %s / %s:\n%s", s.Name, s.Env, b.String())
		}
	}
}

// TestREADMEListsEverySetting keeps the README's configuration table true.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, s := range Settings() {
		var row string
		for _, l := range lines {
			if strings.HasPrefix(l, "| `--"+s.Name+"` ") {
				row = l
			}
		}
		if row == "" {
			t.Errorf("README.md has no table row for --%s", s.Name)
			continue
		}
		if !strings.Contains(row, "`"+s.Env+"`") {
			t.Errorf("README row of --%s does not name %s", s.Name, s.Env)
		}
		if s.Default != "" && !strings.Contains(row, "`"+s.Default+"`") {
			t.Errorf("README row of --%s does not show the default %q", s.Name, s.Default)
		}
	}
}
