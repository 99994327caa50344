package webui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestStatic(t *testing.T) {
	h, err := New(fstest.MapFS{
		"index.html":         {Data: []byte("<html>app</html>")},
		"assets/app-1a2b.js": {Data: []byte("console.log(1)")},
		"favicon.svg":        {Data: []byte("<svg/>")},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, status, cache, body string
	}{
		{"/", "200", "no-cache", "app"},
		{"/index.html", "200", "no-cache", "app"},
		{"/guilds/1/members", "200", "no-cache", "app"}, // the client-side router's
		{"/assets/app-1a2b.js", "200", "public, max-age=31536000, immutable", "console"},
		{"/assets/gone-9z.js", "404", "", "not found"},
		{"/favicon.svg", "200", "public, max-age=3600", "svg"},
		{"/../../etc/passwd", "200", "no-cache", "app"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if got := rec.Result().Status[:3]; got != tc.status || rec.Header().Get("Cache-Control") != tc.cache || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s: %s %q %q", tc.path, got, rec.Header().Get("Cache-Control"), rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestPlaceholderSaysHowToBuild(t *testing.T) {
	h, _ := New(nil, "")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/anything", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "make run") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestDevProxy(t *testing.T) {
	vite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("vite " + r.URL.Path)) }))
	defer vite.Close()
	h, err := New(nil, vite.URL)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/src/main.tsx", nil))
	if rec.Body.String() != "vite /src/main.tsx" {
		t.Fatalf("%s", rec.Body)
	}
	if _, err := New(nil, "not a url"); err == nil {
		t.Fatal("bad dev URL accepted")
	}
}
