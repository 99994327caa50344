package plugin

import (
	"os"
	"strconv"
	"strings"
	"testing"

	sdkprocess "github.com/spywatcher/spywatcher/sdk/go/plugin/process"
)

// TestPLUGINSDocumentsTheContract keeps the author's guide complete: every
// permission, host function and hook the host knows is documented, with
// the signature a PDK we do not ship needs, and both runtimes and all three
// languages have their sections.
func TestPLUGINSDocumentsTheContract(t *testing.T) {
	b, err := os.ReadFile("../../../PLUGINS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, p := range Catalogue() {
		if !strings.Contains(doc, "| `"+p.Name+"` | "+string(p.Risk)+" | "+p.Grants+" |") {
			t.Errorf("PLUGINS.md's permission table lacks %s as the catalogue states it", p.Name)
		}
	}
	for _, f := range append(HostFunctions(), "sw_load", "sw_store") {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("PLUGINS.md does not document the host function %s", f)
		}
	}
	// The ABI reference gives every host function's import signature.
	for _, f := range HostFunctions() {
		if !strings.Contains(doc, "| `"+f+"` | `(i64) -> i64` |") {
			t.Errorf("PLUGINS.md's ABI table lacks the signature of %s", f)
		}
	}
	for _, h := range []string{HookEvents, HookScore, HookHTTP, HookTick, HookDeleteUser} {
		if !strings.Contains(doc, "### "+h) {
			t.Errorf("PLUGINS.md has no section for the hook %s", h)
		}
	}
	for _, k := range []string{"alloc", "free", "length", "load_u8", "load_u64", "store_u8", "store_u64", "input_length",
		"input_offset", "input_load_u8", "input_load_u64", "output_set", "error_set", "config_get", "var_get", "var_set"} {
		if !strings.Contains(doc, "`"+k+"(") {
			t.Errorf("PLUGINS.md does not list the kernel import %s", k)
		}
	}
	for _, section := range []string{"## Process plugins", "## AssemblyScript", "## C", "## Rust, Zig and other PDKs"} {
		if !strings.Contains(doc, "\n"+section+"\n") {
			t.Errorf("PLUGINS.md has no section %q", section)
		}
	}
	// The process runtime's contract as the code states it.
	for _, s := range []string{
		"`\"runtime\": \"" + RuntimeWasm + "\"`", "`\"runtime\": \"" + RuntimeProcess + "\"`",
		"speaks version **" + strconv.Itoa(sdkprocess.ProtocolVersion) + "**",
		"`" + sdkprocess.Handshake.MagicCookieKey + "`",
		"-tags spywatcher_process", "--trust-process", `{"trust_process": true}`,
		"spywatcher plugin new --lang", "spywatcher plugin test",
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("PLUGINS.md does not mention %s", s)
		}
	}
	for _, cfg := range []string{"spywatcher.guild_id", "spywatcher.plugin_id", "spywatcher.config"} {
		if !strings.Contains(doc, "`"+cfg+"`") {
			t.Errorf("PLUGINS.md does not name the config key %s", cfg)
		}
	}
	// Every example is referenced.
	entries, err := os.ReadDir("../../../examples")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "internal" && !strings.Contains(doc, "examples/"+e.Name()) {
			t.Errorf("PLUGINS.md does not point to examples/%s", e.Name())
		}
	}
}
