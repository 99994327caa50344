package plugin

import (
	"os"
	"strings"
	"testing"
)

// TestPLUGINSDocumentsTheContract keeps the author's guide complete: every
// permission, host function and hook the host knows is documented.
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
}
