package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
)

// writeTestPlugin lays out a plugin directory for the test guest "good"
// with a manifest asking for an optional members.read.
func writeTestPlugin(t *testing.T, staleSum bool) string {
	t.Helper()
	dir := t.TempDir()
	code := guesttest.Build(t, "host/internal/plugin/testdata/guests/good")
	sum := sha256.Sum256(code)
	hexSum := hex.EncodeToString(sum[:])
	if staleSum {
		hexSum = strings.Repeat("0", 64)
	}
	manifest := fmt.Sprintf(`{"id":"counter","name":"Counter","version":"1.0.0","runtime":"wasm","abi_version":1,
		"artifact":{"path":"plugin.wasm","sha256":%q},
		"hooks":["on_events","http"],"events":["message.create"],"routes":[{"method":"GET","path":"/*"}],
		"permissions":[{"name":"events.message.read","reason":"count"},{"name":"kv.read","reason":"read"},
			{"name":"kv.write","reason":"write"},{"name":"routes.serve","reason":"serve"},
			{"name":"metrics.write","reason":"count batches"},{"name":"members.read","reason":"look up","optional":true}]}`, hexSum)
	os.WriteFile(filepath.Join(dir, "plugin.json"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "plugin.wasm"), code, 0o644)
	var events bytes.Buffer
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&events, `{"kind":"message.create","guild_id":"41771983423143937","user_id":"80351110224678912","channel_id":"41771983423143938","at":"2026-11-27T10:00:0%dZ","data":{"message_id":"110000000000000000%d","length":2,"content":"hi"}}`+"\n", i, i)
	}
	events.WriteString(`{"kind":"typing.start","guild_id":"41771983423143937","user_id":"80351110224678912","channel_id":"41771983423143938","data":{}}` + "\n")
	events.WriteString(`{"kind":"message.create","guild_id":"99999999999999999","user_id":"80351110224678912","channel_id":"41771983423143938","data":{"message_id":"1100000000000000009","length":2}}` + "\n")
	os.WriteFile(filepath.Join(dir, "events.jsonl"), events.Bytes(), 0o644)
	return dir
}

func TestPluginTestCommand(t *testing.T) {
	dir := writeTestPlugin(t, true)
	os.WriteFile(filepath.Join(dir, "expect.json"), []byte(`{"kv":{"count:message.create":"3"},
		"denied":["member_get"],"http":[{"request":"GET /counts","status":200,"body_contains":"\"message.create\":3"}]}`), 0o644)
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"plugin", "test", dir, "--events", filepath.Join(dir, "events.jsonl"),
		"--grant", "events.message.read,kv.read,kv.write,routes.serve,metrics.write",
		"--http", "GET /counts", "--http", "GET /member?user=80351110224678912",
		"--expect", filepath.Join(dir, "expect.json"), "--json"}, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep TestReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	// Three messages of the guild reach the plugin; the typing event is not
	// subscribed, the other guild's message is not this guild's.
	if rep.Events != 4 || rep.Delivered != 3 {
		t.Fatalf("events %d delivered %d", rep.Events, rep.Delivered)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "stale") {
		t.Fatalf("stale checksum not reported: %q", rep.Warnings)
	}
	if len(rep.Denials) != 1 || rep.Denials[0].Function != "member_get" || !strings.Contains(string(rep.Denials[0].Response), "members.read") {
		t.Fatalf("denials %+v", rep.Denials)
	}
	var sawSet bool
	for _, c := range rep.HostCalls {
		sawSet = sawSet || (c.Function == "kv_set" && c.Hook == "on_events" && c.Result == "ok")
	}
	if !sawSet {
		t.Fatalf("host calls %+v", rep.HostCalls)
	}

	// An unmet expectation fails the run, and the text report says why.
	os.WriteFile(filepath.Join(dir, "expect.json"), []byte(`{"emitted":["nothing.like.this"],"no_denials":true}`), 0o644)
	out.Reset()
	code = Run(context.Background(), []string{"plugin", "test", dir, "--events", filepath.Join(dir, "events.jsonl"),
		"--http", "GET /member?user=80351110224678912", "--grant", "events.message.read,kv.read,kv.write,routes.serve,metrics.write",
		"--expect", filepath.Join(dir, "expect.json")}, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 1 || !strings.Contains(out.String(), `expected an emitted event of type "nothing.like.this"`) ||
		!strings.Contains(out.String(), "member_get: member_get needs the permission members.read") {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
}
