package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/plugin/guesttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	guesttest.Cleanup()
	os.Exit(code)
}

func goodManifest(code []byte, version string) string {
	sum := sha256.Sum256(code)
	return fmt.Sprintf(`{"id":"counter","name":"Counter","version":%q,"runtime":"wasm","abi_version":1,
		"artifact":{"path":"plugin.wasm","sha256":%q},
		"hooks":["on_events","http"],"events":["message.create"],
		"routes":[{"method":"GET","path":"/*"}],
		"permissions":[{"name":"events.message.read","reason":"count"},{"name":"kv.read","reason":"read"},
			{"name":"kv.write","reason":"write"},{"name":"routes.serve","reason":"serve"},
			{"name":"metrics.write","reason":"count batches"}],
		"config_schema":{"type":"object","properties":{"greeting":{"type":"string"}},"additionalProperties":false}}`, version, hex.EncodeToString(sum[:]))
}

func multipartBody(t *testing.T, files map[string][]byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for name, data := range files {
		fw, err := w.CreateFormFile(name, name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func TestPluginAPI(t *testing.T) {
	hs := newHarness(t)
	hs.seed(t)
	code := guesttest.Build(t, "host/internal/plugin/testdata/guests/good")
	g := "/api/v1/guilds/" + guildID + "/plugins/counter"
	ctype, body := multipartBody(t, map[string][]byte{"manifest": []byte(goodManifest(code, "1.0.0")), "artifact": code})
	badType, badBody := multipartBody(t, map[string][]byte{"manifest": []byte(goodManifest(code, "1.0.0")), "artifact": []byte("not wasm")})
	noArtType, noArt := multipartBody(t, map[string][]byte{"manifest": []byte(goodManifest(code, "1.0.0"))})
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		contains                        string
	}{
		{"catalogue", "GET", "/api/v1/plugin-permissions", "", "", 200, `"name":"message.content.read"`},
		{"empty list", "GET", "/api/v1/plugins", "", "", 200, `"plugins":[]`},
		{"unknown plugin", "GET", "/api/v1/plugins/nope", "", "", 404, "not_found"},
		{"install not multipart", "POST", "/api/v1/plugins", "application/json", "{}", 400, "multipart"},
		{"install without artifact", "POST", "/api/v1/plugins", noArtType, string(noArt), 400, `"field":"artifact"`},
		{"install wrong checksum", "POST", "/api/v1/plugins", badType, string(badBody), 422, "checksum mismatch"},
		{"install", "POST", "/api/v1/plugins", ctype, string(body), 201, `"id":"counter"`},
		{"listed with risk", "GET", "/api/v1/plugins", "", "", 200, `"risk":"medium"`},
		{"status before anything", "GET", g, "", "", 200, `"state":"disabled"`},
		{"unknown guild", "GET", "/api/v1/guilds/123/plugins/counter", "", "", 404, "not_found"},
		{"route before enable", "GET", g + "/http/counts", "", "", 409, "plugin_not_running"},
		{"enable", "POST", g + "/enable", "", "", 200, `"state":"needs_grant"`},
		{"grant unknown", "POST", g + "/grants", "application/json", `{"permissions":[{"name":"ban.hammer"}]}`, 422, "does not ask for"},
		{"grant bad body", "POST", g + "/grants", "application/json", `{"perms":[]}`, 400, "unknown field"},
		{"grant all", "POST", g + "/grants", "application/json", `{"all":true}`, 200, `"state":"running"`},
		{"config against schema", "PUT", g + "/config", "application/json", `{"colour":"red"}`, 422, "schema"},
		{"config", "PUT", g + "/config", "application/json", `{"greeting":"salut"}`, 200, `"greeting":"salut"`},
		{"route", "GET", g + "/http/counts", "", "", 200, `"greeting":"salut"`},
		{"route is sandboxed", "GET", g + "/http/counts", "", "", 200, `"counts"`},
		{"undeclared route method", "POST", g + "/http/counts", "", "", 404, "no such route"},
		{"guild list", "GET", "/api/v1/guilds/" + guildID + "/plugins", "", "", 200, `"plugin_id":"counter"`},
		{"revoke unknown", "DELETE", g + "/grants?permission=nope", "", "", 400, "unknown permission"},
		{"revoke one", "DELETE", g + "/grants?permission=kv.write", "", "", 200, `"missing_permissions":["kv.write"]`},
		{"route after revoke", "GET", g + "/http/counts", "", "", 409, "plugin_not_running"},
		{"disable", "POST", g + "/disable", "", "", 200, `"enabled":false`},
		{"plugin routes need auth", "GET", "/api/v1/plugins", "", "", 200, "counter"},
		{"uninstall", "DELETE", "/api/v1/plugins/counter", "", "", 204, ""},
		{"gone", "GET", "/api/v1/plugins/counter", "", "", 404, "not_found"},
	}
	for _, tt := range tests {
		w := hs.do(tt.method, tt.path, token, tt.ctype, tt.body)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.contains) {
			t.Fatalf("%s: %s %s: %d %s\nwant %d containing %s", tt.name, tt.method, tt.path, w.Code, truncate(w.Body.String(), 500), tt.status, tt.contains)
		}
		if tt.name == "route is sandboxed" && !strings.Contains(w.Header().Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("plugin response without sandbox CSP: %v", w.Header())
		}
	}
	r := httptest.NewRequest("GET", "/api/v1/plugins", nil)
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("plugin list without a token: %d", w.Code)
	}
}

// TestProcessPluginNeedsTrust: a process plugin is not sandboxed, so the
// admin must acknowledge that to enable it.
func TestProcessPluginNeedsTrust(t *testing.T) {
	hs := newHarness(t)
	hs.seed(t)
	path := guesttest.BuildProcess(t, "host/internal/plugin/testdata/guests/good")
	code, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := strings.Replace(goodManifest(code, "1.0.0"), `"runtime":"wasm"`, `"runtime":"process"`, 1)
	m = strings.Replace(m, `"plugin.wasm"`, `"counter"`, 1)
	ctype, body := multipartBody(t, map[string][]byte{"manifest": []byte(m), "artifact": code})
	g := "/api/v1/guilds/" + guildID + "/plugins/counter"
	for _, tt := range []struct {
		name, method, path, ctype, body string
		status                          int
		contains                        string
	}{
		{"install", "POST", "/api/v1/plugins", ctype, string(body), 201, `"runtime":"process"`},
		{"enable without trust", "POST", g + "/enable", "", "", 422, "trust_required"},
		{"enable trusting false", "POST", g + "/enable", "application/json", `{"trust_process":false}`, 422, "trust_required"},
		{"enable bad body", "POST", g + "/enable", "application/json", `{"trust":true}`, 400, "unknown field"},
		{"enable with trust", "POST", g + "/enable", "application/json", `{"trust_process":true}`, 200, `"enabled":true`},
		{"grant all", "POST", g + "/grants", "application/json", `{"all":true}`, 200, `"state":"running"`},
		{"route", "GET", g + "/http/counts", "", "", 200, `"counts"`},
		{"disable needs no trust", "POST", g + "/disable", "", "", 200, `"enabled":false`},
	} {
		w := hs.do(tt.method, tt.path, token, tt.ctype, tt.body)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.contains) {
			t.Fatalf("%s: %s %s: %d %s\nwant %d containing %s", tt.name, tt.method, tt.path, w.Code, truncate(w.Body.String(), 500), tt.status, tt.contains)
		}
	}
}
