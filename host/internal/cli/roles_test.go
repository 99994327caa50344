package cli

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeRoles: an instance with only the jobs role answers the probes,
// serves no API and starts no source even with --simulate.
func TestServeRoles(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--simulate", "--roles", "jobs", "--addr", addr, "--data-dir", t.TempDir()},
			Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	}()
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for get("/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := get("/healthz"); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	if code := get("/metrics"); code != 200 {
		t.Fatalf("metrics = %d", code)
	}
	if code := get("/api/v1/guilds"); code != 404 {
		t.Fatalf("API without the api role = %d, want 404", code)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, errb.String())
	}
	logs := errb.String()
	if strings.Contains(logs, "source started") || !strings.Contains(logs, "roles=[jobs]") {
		t.Fatalf("jobs-only instance started a source, or did not log its roles:\n%s", logs)
	}
	for _, bad := range []string{"api,nope", ""} {
		if code, _, errs := run(t, context.Background(), nil, "serve", "--roles", bad); code != 2 || !strings.Contains(errs, "roles") {
			t.Errorf("--roles %q: exit %d, %s", bad, code, errs)
		}
	}
}
