package permissions

import (
	"os"
	"strings"
	"testing"
)

// TestCatalogueDocumented keeps README.md's tables in step with catalogue.json.
func TestCatalogueDocumented(t *testing.T) {
	cat, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range cat {
		key := p.Object + "/" + p.Action
		if seen[key] {
			t.Errorf("%s listed twice in the catalogue", key)
		}
		seen[key] = true
		if p.Risk != "low" && p.Risk != "medium" && p.Risk != "high" {
			t.Errorf("%s: risk %q", key, p.Risk)
		}
		if p.Subject == "user" && p.Role == "" {
			t.Errorf("%s: no minimum role", key)
		}
		row := "| `" + p.Object + "` |"
		found := false
		for _, l := range strings.Split(string(doc), "\n") {
			if strings.HasPrefix(l, row) && (p.Subject == "plugin" || strings.HasPrefix(l, row+" "+p.Action+" |")) {
				found = true
			}
		}
		if !found {
			t.Errorf("README.md has no row for %s", key)
		}
	}
}
