package api

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/spywatcher/spywatcher/host/internal/auth"
)

// Security configures the hardening middleware and the session cookies.
type Security struct {
	// CookieSecure is "auto" (Secure when the request came over TLS, also
	// as told by X-Forwarded-Proto), "always" or "never".
	CookieSecure string
	// CORSOrigins may call the API from a browser, with credentials.
	CORSOrigins []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For and
	// X-Forwarded-Proto are believed. A client talking to us directly cannot
	// pick its own address (and so escape its rate limit or forge the audit
	// log) by sending those headers.
	TrustedProxies []netip.Prefix
}

// peerTrusted reports whether the direct peer is a trusted proxy.
func (s Security) peerTrusted(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// overTLS reports whether the client reached us over TLS, directly or
// through a trusted proxy that says so.
func (s Security) overTLS(r *http.Request) bool {
	return r.TLS != nil || (strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") && s.peerTrusted(r))
}

func (s Security) secure(r *http.Request) bool {
	switch s.CookieSecure {
	case "always":
		return true
	case "never":
		return false
	}
	return s.overTLS(r)
}

// clientIP is the address the request came from: the direct peer, or what
// trusted proxies say in X-Forwarded-For (middleware.ClientIPFromXFF).
func clientIP(r *http.Request) string {
	if ip := middleware.GetClientIP(r.Context()); ip != "" {
		return ip
	}
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// realIP sets the client address for clientIP.
func (s Security) realIP() func(http.Handler) http.Handler {
	if len(s.TrustedProxies) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	prefixes := make([]string, len(s.TrustedProxies))
	for i, p := range s.TrustedProxies {
		prefixes[i] = p.String()
	}
	return middleware.ClientIPFromXFF(prefixes...)
}

// headers sets the security headers of every response, handles CORS and
// bounds every request body: by maxBody, except plugin uploads, which carry a
// module and get maxArtifactBytes plus room for the manifest.
func (s Security) headers(maxBody int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			if s.overTLS(r) {
				h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
			}
			if origin := r.Header.Get("Origin"); origin != "" {
				h.Add("Vary", "Origin")
				allowed := slices.Contains(s.CORSOrigins, origin)
				if allowed {
					h.Set("Access-Control-Allow-Origin", origin)
					h.Set("Access-Control-Allow-Credentials", "true")
					h.Set("Access-Control-Expose-Headers", "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After")
				}
				if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
					if !allowed {
						writeError(w, r, nil, forbidden("origin "+truncate(origin, 100)+" may not call this API (see --cors-origins)"))
						return
					}
					h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+auth.HeaderCSRF)
					h.Set("Access-Control-Max-Age", "600")
					w.WriteHeader(http.StatusNoContent)
					return
				}
			}
			if r.Body != nil && r.ContentLength != 0 {
				limit := maxBody
				if r.Method == http.MethodPost && r.URL.Path == "/api/v1/plugins" {
					limit = max(limit, maxArtifactBytes+1<<20)
				}
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// setSessionCookies hands the dashboard its session: the access token and
// refresh token as HttpOnly cookies (the refresh one only sent to the auth
// routes), and the CSRF token readable by the page's script.
func (s Security) setSessionCookies(w http.ResponseWriter, r *http.Request, t auth.Tokens) {
	sec := s.secure(r)
	http.SetCookie(w, &http.Cookie{Name: auth.CookieAccess, Value: t.AccessToken, Path: "/", HttpOnly: true, Secure: sec,
		SameSite: http.SameSiteLaxMode, Expires: t.AccessExpiresAt})
	http.SetCookie(w, &http.Cookie{Name: auth.CookieRefresh, Value: t.RefreshToken, Path: "/api/v1/auth", HttpOnly: true, Secure: sec,
		SameSite: http.SameSiteStrictMode, Expires: t.RefreshExpiresAt})
	http.SetCookie(w, &http.Cookie{Name: auth.CookieCSRF, Value: t.CSRF, Path: "/", Secure: sec,
		SameSite: http.SameSiteStrictMode, Expires: t.RefreshExpiresAt})
}

func (s Security) clearSessionCookies(w http.ResponseWriter, r *http.Request) {
	sec := s.secure(r)
	for _, c := range []struct{ name, path string }{{auth.CookieAccess, "/"}, {auth.CookieRefresh, "/api/v1/auth"}, {auth.CookieCSRF, "/"}} {
		http.SetCookie(w, &http.Cookie{Name: c.name, Value: "", Path: c.path, HttpOnly: c.name != auth.CookieCSRF, Secure: sec,
			MaxAge: -1, Expires: time.Unix(1, 0)})
	}
}
