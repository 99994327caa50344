package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/spywatcher/spywatcher/sdk/schema"
)

// TestManifestSchemaAgreesWithTheHost feeds the same manifests to the JSON
// Schema authors validate against and to the host's parser.
func TestManifestSchemaAgreesWithTheHost(t *testing.T) {
	raw, err := schema.Files.ReadFile(schema.PluginFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schema.PluginFile, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(schema.PluginFile)
	if err != nil {
		t.Fatal(err)
	}
	valid := string(manifest(t, "ok-plugin", "1.2.3", []byte("code"), nil))
	edit := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	tests := []struct {
		name  string
		json  string
		valid bool
	}{
		{"valid", valid, true},
		{"bad id", edit(`"id":"ok-plugin"`, `"id":"Not OK"`), false},
		{"bad version", edit(`"version":"1.2.3"`, `"version":"v1"`), false},
		{"other runtime", edit(`"runtime":"wasm"`, `"runtime":"lua"`), false},
		{"bad checksum", edit(`"sha256":"`, `"sha256":"XYZ`), false},
		{"unknown hook", edit(`"hooks":["on_events"`, `"hooks":["on_everything"`), false},
		{"unknown permission", edit(`"name":"kv.read"`, `"name":"root.shell"`), false},
		{"fetch without hosts", edit(`,"hosts":["example.org","127.0.0.2"]`, ``), false},
		{"unknown field", edit(`"runtime":"wasm"`, `"runtime":"wasm","runtiem":"wasm"`), false},
		{"limit too high", edit(`"limits":{"memory_mb":64`, `"limits":{"memory_mb":100000`), false},
		{"unknown kind", edit(`"events":["message.create"`, `"events":["message.explode"`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.json), &v); err != nil {
				t.Fatal(err)
			}
			schemaOK := sch.Validate(v) == nil
			_, perr := ParseManifest([]byte(tt.json))
			if schemaOK != tt.valid || (perr == nil) != tt.valid {
				t.Fatalf("schema valid=%v, host error=%v; want valid=%v", schemaOK, perr, tt.valid)
			}
		})
	}
}

func TestConfigErrorsSayWhereAndWhy(t *testing.T) {
	m, err := ParseManifest([]byte(`{"id":"cfg","name":"Cfg","version":"1.0.0","runtime":"wasm","abi_version":1,
		"artifact":{"path":"p.wasm","sha256":"` + strings.Repeat("a", 64) + `"},"hooks":["tick"],
		"config_schema":{"type":"object","additionalProperties":false,"properties":{"minutes":{"type":"number"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ config, want string }{
		{`{"minutes":"soon"}`, "at /minutes: got string, want number"},
		{`{"minuts":5}`, "at /: additional properties 'minuts' not allowed"},
	} {
		err := m.ValidateConfig(json.RawMessage(c.config))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "file://") {
			t.Errorf("%s: %v, want it to say %q (and no schema URL)", c.config, err, c.want)
		}
	}
	if err := m.ValidateConfig(json.RawMessage(`{"minutes":5}`)); err != nil {
		t.Error(err)
	}
}
