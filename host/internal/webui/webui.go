// Package webui serves the dashboard: the embedded build (hashed assets
// cached for a year, index.html never cached, every other non-API path
// answered with index.html for the client-side router), a placeholder page
// saying how to build it, or, in development, a proxy to the Vite dev
// server.
package webui

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
)

// New returns the dashboard handler: a proxy to devURL when set, else dist,
// else the placeholder.
func New(dist fs.FS, devURL string) (http.Handler, error) {
	if devURL != "" {
		u, err := url.Parse(devURL)
		if err != nil || u.Host == "" {
			return nil, errors.New("webui: --web-dev-url must be an http URL like http://127.0.0.1:5173")
		}
		p := httputil.NewSingleHostReverseProxy(u)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Vite's dev client runs inline scripts and its own WebSocket.
			w.Header().Set("Content-Security-Policy", "default-src 'self' 'unsafe-inline' ws: "+u.Host+"; frame-ancestors 'none'")
			p.ServeHTTP(w, r)
		}), nil
	}
	if dist == nil {
		return http.HandlerFunc(placeholder), nil
	}
	return &static{fs: dist}, nil
}

type static struct{ fs fs.FS }

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name != "" && name != "index.html" {
		if f, err := s.fs.Open(name); err == nil {
			st, err := f.Stat()
			f.Close()
			if err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") { // content-hashed by Vite
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					w.Header().Set("Cache-Control", "public, max-age=3600")
				}
				http.ServeFileFS(w, r, s.fs, name)
				return
			}
		}
		if strings.HasPrefix(name, "assets/") { // a missing asset is a 404, not the app
			http.NotFound(w, r)
			return
		}
	}
	f, err := s.fs.Open("index.html")
	if err != nil {
		http.Error(w, "index.html missing from the embedded dashboard", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.Copy(w, f)
}

func placeholder(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Spywatcher</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5">
<h1>Spywatcher is running</h1>
<p>This binary was built without the dashboard. The API is at <a href="/api/v1/openapi.json">/api/v1</a>.</p>
<p>To build the dashboard into the binary (needs Node.js 20 and npm):</p>
<pre>make run            # npm ci, vite build, go build -tags webui, serve --simulate
make web build-ui   # or just build bin/spywatcher with the dashboard</pre>
<p>For development, run <code>npm run dev</code> in <code>web/</code> and start the host with
<code>--web-dev-url http://127.0.0.1:5173</code>.</p>
</body></html>`)
}
