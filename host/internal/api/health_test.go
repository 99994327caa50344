package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// TestProbes: an instance without the api role answers health, readiness
// (database and the extra checks) and metrics, and nothing else.
func TestProbes(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	redisErr := errors.New("connection refused")
	var redisDown bool
	reg := prometheus.NewRegistry()
	h := Probes(Deps{Store: st, Gatherer: reg, ReadyChecks: map[string]func(context.Context) error{
		"redis": func(context.Context) error {
			if redisDown {
				return redisErr
			}
			return nil
		},
	}})
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code, w.Body.String()
	}
	for _, tc := range []struct {
		path, body string
		down       bool
		code       int
	}{
		{"/healthz", `"ok"`, false, 200},
		{"/readyz", `"ready"`, false, 200},
		{"/readyz", "redis unreachable", true, 503},
		{"/healthz", `"ok"`, true, 200},
		{"/metrics", "", false, 200},
		{"/api/v1/guilds", "", false, 404},
	} {
		redisDown = tc.down
		code, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s (redis down %v) = %d %s, want %d %q", tc.path, tc.down, code, body, tc.code, tc.body)
		}
	}
	st.Close()
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz with the database closed = %d", code)
	}
}
