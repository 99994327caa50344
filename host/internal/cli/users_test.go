package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	code := Run(context.Background(), args, Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

func TestUserAndAPIKeyCommands(t *testing.T) {
	dir := t.TempDir()
	d := "--data-dir=" + dir
	code, out, errOut := runIn(t, "a-long-enough-password\n", "user", "create", d, "--admin", "root")
	if code != 0 || !strings.Contains(out, "created user root (instance admin)") {
		t.Fatalf("user create: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runIn(t, "a-long-enough-password\n", "user", "create", d, "root"); code != 1 || !strings.Contains(errOut, "taken") {
		t.Fatalf("duplicate: %d %q", code, errOut)
	}
	if code, _, errOut := runIn(t, "short\n", "user", "create", d, "bob"); code != 2 || !strings.Contains(errOut, "password must be") {
		t.Fatalf("weak password: %d %q", code, errOut)
	}
	if code, _, _ := runIn(t, "another-long-password\n", "user", "create", d, "--username", "mod"); code != 0 {
		t.Fatal("user create --username")
	}
	if code, out, errOut := runIn(t, "", "user", "role", d, "mod", "41771983423143937", "moderator"); code != 0 || !strings.Contains(out, "moderator") {
		t.Fatalf("user role: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runIn(t, "", "user", "role", d, "mod", "41771983423143937", "emperor"); code != 2 {
		t.Fatalf("bad role: %d %q", code, errOut)
	}
	code, out, _ = runIn(t, "", "user", "list", d)
	if code != 0 || !strings.Contains(out, "instance_admin@*") || !strings.Contains(out, "moderator@41771983423143937") {
		t.Fatalf("user list: %q", out)
	}
	code, out, errOut = runIn(t, "", "apikey", "create", d, "--user", "mod", "--guilds", "41771983423143937", "--tier", "free", "--name", "ci")
	secret := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(secret, auth.APIKeyPrefix) || !strings.Contains(errOut, "shown once") {
		t.Fatalf("apikey create: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runIn(t, "", "apikey", "create", d, "--user", "mod", "--tier", "gold"); code != 2 || !strings.Contains(errOut, "tier") {
		t.Fatalf("bad tier: %d %q", code, errOut)
	}
	code, out, _ = runIn(t, "", "apikey", "list", d)
	id := regexp.MustCompile(`(?m)^([0-9a-f]{16}) `).FindStringSubmatch(out)
	if code != 0 || id == nil || strings.Contains(out, secret) {
		t.Fatalf("apikey list (must not show the secret): %q", out)
	}

	// The key works as its owner, in its guild only, until revoked.
	st, err := store.Open(context.Background(), dir+"/spywatcher.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	enf, err := authz.New(context.Background(), st, authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer enf.Close()
	if ok, _ := enf.Enforce(authz.APIKey(id[1]), "41771983423143937", "members", authz.Read); !ok {
		t.Fatal("key does not act as its moderator owner")
	}
	if code, out, _ := runIn(t, "", "apikey", "revoke", d, id[1]); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q", out)
	}
	enf.Reload()
	if ok, _ := enf.Enforce(authz.APIKey(id[1]), "41771983423143937", "members", authz.Read); ok {
		t.Fatal("revoked key still allowed")
	}
	if k, err := st.APIKeyByHash(context.Background(), auth.HashToken(secret)); err != nil || k.RevokedAt == nil {
		t.Fatalf("key not marked revoked: %+v %v", k, err)
	}
	page, _ := st.ListAudit(context.Background(), store.AuditQuery{Actor: "cli"})
	if len(page.Entries) < 4 {
		t.Fatalf("CLI changes not audited: %+v", page.Entries)
	}
}
