package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDeployArtifactsUseRealSettings keeps the Dockerfile, deploy/compose.yaml,
// the Helm chart and the other files under deploy/ in step with the table of
// settings: every SPYWATCHER_* variable they set or mention is a setting, so
// a renamed or removed setting cannot linger in a deployment.
func TestDeployArtifactsUseRealSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range Settings() {
		known[s.Env] = true
	}
	ref := regexp.MustCompile(`SPYWATCHER_[A-Z0-9_]+`)
	files := []string{"../../../Dockerfile"}
	err := filepath.WalkDir("../../../deploy", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range ref.FindAllString(string(b), -1) {
			seen++
			if !known[name] {
				t.Errorf("%s uses %s, which is not a setting (README's configuration table)", f, name)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d SPYWATCHER_* references found in %d files", seen, len(files))
	}
}
