package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers lookups from a function, so tests choose what a
// name resolves to without DNS.
type fakeResolver struct {
	lookup func(host string) ([]netip.Addr, error)
}

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f.lookup(host)
}

// staticResolver resolves the names in m; anything else is "no such host".
func staticResolver(m map[string]string) fakeResolver {
	return fakeResolver{lookup: func(host string) ([]netip.Addr, error) {
		s, ok := m[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range strings.Split(s, ",") {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}}
}

var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// serve starts a plain HTTP test server on 127.0.0.1 and returns its port.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return portOf(t, srv.Listener.Addr())
}

func portOf(t *testing.T, a net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestDoDeniedAddresses: every host here is on the allow-list, so only the
// address check stands between the plugin and the target.
func TestDoDeniedAddresses(t *testing.T) {
	res := staticResolver(map[string]string{
		"localhost":         "127.0.0.1,::1",
		"metadata.test":     "169.254.169.254",
		"intranet.test":     "10.1.2.3",
		"router.test":       "192.168.0.1",
		"mapped.test":       "::ffff:127.0.0.1",
		"nat64.test":        "64:ff9b::a00:1",
		"cgnat.test":        "100.64.1.1",
		"ula.test":          "fd00::1",
		"zero.test":         "0.0.0.0",
		"metadata6.test":    "fd00:ec2::254",
		"alibaba.test":      "100.100.100.200",
		"sixtofour.test":    "2002:7f00:1::1",
		"allprivate.test":   "10.0.0.1,192.168.0.1,fe80::1",
		"documentation.tst": "192.0.2.10",
	})
	c := New(Options{Resolver: res})
	tests := []struct {
		name     string
		url      string
		wantAddr string
	}{
		{"IPv4 loopback literal", "http://127.0.0.1/", "127.0.0.1"},
		{"localhost name", "http://localhost/", "127.0.0.1"},
		{"IPv6 loopback literal", "http://[::1]/", "::1"},
		{"10/8 literal", "http://10.0.0.1/", "10.0.0.1"},
		{"192.168/16 literal", "http://192.168.1.1/", "192.168.1.1"},
		{"metadata literal", "http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
		{"IPv4-mapped loopback literal", "http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"},
		{"unspecified literal", "http://0.0.0.0/", "0.0.0.0"},
		{"IPv6 unspecified literal", "http://[::]/", "::"},
		{"name to metadata", "http://metadata.test/", "169.254.169.254"},
		{"name to 10/8", "http://intranet.test/", "10.1.2.3"},
		{"name to 192.168/16", "http://router.test/", "192.168.0.1"},
		{"name to mapped loopback", "http://mapped.test/", "::ffff:127.0.0.1"},
		{"name to NAT64 of 10/8", "http://nat64.test/", "64:ff9b::a00:1"},
		{"name to CGNAT", "http://cgnat.test/", "100.64.1.1"},
		{"name to ULA", "http://ula.test/", "fd00::1"},
		{"name to 0.0.0.0", "http://zero.test/", "0.0.0.0"},
		{"name to AWS IPv6 metadata", "http://metadata6.test/", "fd00:ec2::254"},
		{"name to Alibaba metadata", "http://alibaba.test/", "100.100.100.200"},
		{"name to 6to4 of loopback", "http://sixtofour.test/", "2002:7f00:1::1"},
		{"name to several private", "http://allprivate.test/", "fe80::1"},
		{"name to documentation", "https://documentation.tst/", "192.0.2.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := hostOf(t, tt.url)
			p := Policy{
				AllowedHosts: []string{u},
				// Short, so a regression fails fast instead of hanging on
				// an unroutable address.
				Timeout: 2 * time.Second,
			}
			_, err := c.Do(context.Background(), p, Request{URL: tt.url})
			if !errors.Is(err, ErrAddressNotAllowed) {
				t.Fatalf("Do(%s) = %v, want ErrAddressNotAllowed", tt.url, err)
			}
			if !strings.Contains(err.Error(), tt.wantAddr) {
				t.Errorf("message %q does not name address %s", err, tt.wantAddr)
			}
		})
	}
}

// hostOf returns the host[:port] of raw, to use as an allow-list entry.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestDoHostNotAllowed(t *testing.T) {
	var hits atomic.Int32
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	c := New(Options{Resolver: staticResolver(map[string]string{"hooks.test": "127.0.0.1", "other.test": "127.0.0.1"})})
	p := Policy{AllowedHosts: []string{"hooks.test:" + port}, AllowPrivate: loopbackOnly}
	tests := []struct{ name, url string }{
		{"other name", "http://other.test:" + port + "/"},
		{"literal of the allowed address", "http://127.0.0.1:" + port + "/"},
		{"localhost", "http://localhost:" + port + "/"},
		{"default port", "http://hooks.test/"},
		{"subdomain", "http://a.hooks.test:" + port + "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(context.Background(), p, Request{URL: tt.url})
			if !errors.Is(err, ErrHostNotAllowed) {
				t.Fatalf("Do = %v, want ErrHostNotAllowed", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server was reached %d times", n)
	}
}

// TestDoAllowPrivateException is the path integration tests and
// self-hosters with internal webhooks use: an explicit exception for the
// server's address.
func TestDoAllowPrivateException(t *testing.T) {
	type seen struct {
		method, path, ua, ct, body string
	}
	got := make(chan seen, 1)
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), r.UserAgent(), r.Header.Get("Content-Type"), string(b)}
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "ok")
	}))
	c := New(Options{Resolver: staticResolver(map[string]string{"hooks.internal": "127.0.0.1"})})
	p := Policy{AllowedHosts: []string{"hooks.internal:" + port}, AllowPrivate: loopbackOnly}

	tests := []struct {
		name string
		req  Request
		want seen
	}{
		{
			name: "POST by name",
			req:  Request{Method: "POST", URL: "http://hooks.internal:" + port + "/hook?x=1", Header: map[string]string{"content-type": "application/json"}, Body: []byte(`{"a":1}`)},
			want: seen{"POST", "/hook?x=1", "Spywatcher-Plugin-Fetch/1", "application/json", `{"a":1}`},
		},
		{
			name: "empty method is GET, own user agent kept",
			req:  Request{URL: "http://HOOKS.internal.:" + port + "/", Header: map[string]string{"User-Agent": "my-plugin/2"}},
			want: seen{"GET", "/", "my-plugin/2", "", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Do(context.Background(), p, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusAccepted || string(resp.Body) != "ok" || resp.Truncated {
				t.Errorf("response = %+v", resp)
			}
			if resp.Header["X-Multi"] != "a, b" {
				t.Errorf("X-Multi = %q, want %q", resp.Header["X-Multi"], "a, b")
			}
			if s := <-got; s != tt.want {
				t.Errorf("server saw %+v, want %+v", s, tt.want)
			}
		})
	}

	t.Run("without the exception", func(t *testing.T) {
		_, err := c.Do(context.Background(), Policy{AllowedHosts: p.AllowedHosts}, Request{URL: "http://hooks.internal:" + port + "/"})
		if !errors.Is(err, ErrAddressNotAllowed) {
			t.Fatalf("Do = %v, want ErrAddressNotAllowed", err)
		}
	})
}

// TestDoTLS goes through the TLS path: the dialer connects to the checked
// IP while certificate verification still uses the host name.
func TestDoTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure")
	}))
	t.Cleanup(srv.Close)
	port := portOf(t, srv.Listener.Addr())
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	// httptest's certificate is valid for example.com.
	c := New(Options{
		Resolver:  staticResolver(map[string]string{"example.com": "127.0.0.1", "wrong.test": "127.0.0.1"}),
		TLSConfig: &tls.Config{RootCAs: pool},
	})
	p := Policy{AllowedHosts: []string{"example.com:" + port, "wrong.test:" + port}, AllowPrivate: loopbackOnly}

	resp, err := c.Do(context.Background(), p, Request{URL: "https://example.com:" + port + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "secure" {
		t.Errorf("body = %q", resp.Body)
	}
	_, err = c.Do(context.Background(), p, Request{URL: "https://wrong.test:" + port + "/"})
	var certErr *tls.CertificateVerificationError
	if !errors.As(err, &certErr) {
		t.Errorf("Do with a name the certificate does not cover = %v, want a certificate error", err)
	}
}

// TestDoRebinding: the name answers with an allowed address first and a
// loopback address later. Each call resolves afresh at dial time, so the
// second call is refused; nothing from the first lookup is reused.
func TestDoRebinding(t *testing.T) {
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var lookups atomic.Int32
	res := fakeResolver{lookup: func(string) ([]netip.Addr, error) {
		if lookups.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil // "public": excepted
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
	}}
	c := New(Options{Resolver: res})
	p := Policy{AllowedHosts: []string{"rebind.test:" + port}, AllowPrivate: loopbackOnly}
	req := Request{URL: "http://rebind.test:" + port + "/"}

	if _, err := c.Do(context.Background(), p, req); err != nil {
		t.Fatalf("first call: %v", err)
	}
	_, err := c.Do(context.Background(), p, req)
	if !errors.Is(err, ErrAddressNotAllowed) || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Fatalf("second call = %v, want ErrAddressNotAllowed naming 127.0.0.2", err)
	}
	if n := lookups.Load(); n != 2 {
		t.Errorf("lookups = %d, want 2 (one per call, at dial time)", n)
	}
}

// TestDoMixedAnswers: only the allowed addresses of a mixed answer are
// dialled.
func TestDoMixedAnswers(t *testing.T) {
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "reached") }))
	c := New(Options{Resolver: staticResolver(map[string]string{"mixed.test": "169.254.169.254,10.0.0.1,127.0.0.1"})})
	p := Policy{AllowedHosts: []string{"mixed.test:" + port}, AllowPrivate: loopbackOnly, Timeout: 2 * time.Second}
	resp, err := c.Do(context.Background(), p, Request{URL: "http://mixed.test:" + port + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "reached" {
		t.Errorf("body = %q", resp.Body)
	}
}

// TestDoNoReuseAcrossPolicies: a connection opened under a permissive
// policy must not serve a later call under a strict one.
func TestDoNoReuseAcrossPolicies(t *testing.T) {
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c := New(Options{Resolver: staticResolver(map[string]string{"hooks.test": "127.0.0.1"})})
	hosts := []string{"hooks.test:" + port}
	req := Request{URL: "http://hooks.test:" + port + "/"}
	if _, err := c.Do(context.Background(), Policy{AllowedHosts: hosts, AllowPrivate: loopbackOnly}, req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), Policy{AllowedHosts: hosts}, req); !errors.Is(err, ErrAddressNotAllowed) {
		t.Fatalf("strict call = %v, want ErrAddressNotAllowed", err)
	}
}

func TestDoRedirectChecks(t *testing.T) {
	// The origin listens on 127.0.0.2 so that 127.0.0.1, the classic
	// SSRF target, stays outside the exception.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	}
	var loopHits atomic.Int32
	loopPort := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { loopHits.Add(1) }))
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			_, _ = io.WriteString(w, "final")
			return
		}
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	port := portOf(t, ln.Addr())

	c := New(Options{Resolver: staticResolver(map[string]string{
		"origin.test":   "127.0.0.2",
		"internal.test": "10.0.0.1",
		"loop.test":     "127.0.0.1",
	})})
	p := Policy{
		AllowedHosts: []string{"origin.test:" + port, "127.0.0.1:" + loopPort, "loop.test:" + loopPort, "internal.test", "169.254.169.254"},
		AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		Timeout:      2 * time.Second,
	}
	tests := []struct {
		name string
		to   string
		want error
	}{
		{"same host", "/final", nil},
		{"to 127.0.0.1 literal", "http://127.0.0.1:" + loopPort + "/", ErrAddressNotAllowed},
		{"to name resolving to 127.0.0.1", "http://loop.test:" + loopPort + "/", ErrAddressNotAllowed},
		{"to name resolving to 10/8", "http://internal.test/", ErrAddressNotAllowed},
		{"to metadata", "http://169.254.169.254/latest/meta-data/", ErrAddressNotAllowed},
		{"to a host not on the list", "http://elsewhere.test/", ErrHostNotAllowed},
		{"to file scheme", "file:///etc/passwd", ErrScheme},
		{"to gopher", "gopher://origin.test:" + port + "/", ErrScheme},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Do(context.Background(), p, Request{URL: "http://origin.test:" + port + "/start?to=" + url.QueryEscape(tt.to)})
			if tt.want == nil {
				if err != nil || string(resp.Body) != "final" {
					t.Fatalf("Do = %+v, %v; want the final page", resp, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Do = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "redirect 1") {
				t.Errorf("message %q does not say the redirect was refused", err)
			}
		})
	}
	if n := loopHits.Load(); n != 0 {
		t.Errorf("loopback server reached %d times", n)
	}
}

// chainServer redirects /r/N to /r/N-1 and answers /r/0 with "done".
func chainServer(t *testing.T) string {
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if n == 0 {
			_, _ = io.WriteString(w, "done")
			return
		}
		http.Redirect(w, r, "/r/"+strconv.Itoa(n-1), http.StatusFound)
	}))
}

func TestDoRedirectLimit(t *testing.T) {
	port := chainServer(t)
	c := New(Options{Resolver: staticResolver(map[string]string{"chain.test": "127.0.0.1"})})
	base := Policy{AllowedHosts: []string{"chain.test:" + port}, AllowPrivate: loopbackOnly}
	tests := []struct {
		name       string
		max        int
		hops       int
		wantStatus int
		wantErr    error
	}{
		{"default allows 3", 0, 3, http.StatusOK, nil},
		{"default refuses 4", 0, 4, 0, ErrTooManyRedirects},
		{"limit 1 allows 1", 1, 1, http.StatusOK, nil},
		{"limit 1 refuses 2", 1, 2, 0, ErrTooManyRedirects},
		{"limit 5 allows 5", 5, 5, http.StatusOK, nil},
		{"negative returns the 3xx", -1, 1, http.StatusFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			p.MaxRedirects = tt.max
			resp, err := c.Do(context.Background(), p, Request{URL: fmt.Sprintf("http://chain.test:%s/r/%d", port, tt.hops)})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Do = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.Status, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusFound && resp.Header["Location"] != "/r/0" {
				t.Errorf("Location = %q, want /r/0", resp.Header["Location"])
			}
		})
	}
}

// TestDoRedirectHeaders: credentials go only to the origin they were
// written for; other headers follow the redirect.
func TestDoRedirectHeaders(t *testing.T) {
	var mu sync.Mutex
	var final http.Header
	var otherPort string
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			mu.Lock()
			final = r.Header.Clone()
			mu.Unlock()
			return
		}
		to := strings.ReplaceAll(r.URL.Query().Get("to"), "OTHERPORT", otherPort)
		http.Redirect(w, r, to, http.StatusTemporaryRedirect)
	}))
	otherPort = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		final = r.Header.Clone()
		mu.Unlock()
	}))
	c := New(Options{Resolver: staticResolver(map[string]string{
		"a.test": "127.0.0.1", "b.test": "127.0.0.1", "sub.a.test": "127.0.0.1",
	})})
	p := Policy{
		AllowedHosts: []string{"a.test:" + port, "b.test:" + port, "sub.a.test:" + port, "a.test:" + otherPort},
		AllowPrivate: loopbackOnly,
	}
	tests := []struct {
		name      string
		to        string
		wantCreds bool
	}{
		{"same origin keeps credentials", "/final", true},
		{"same origin absolute", "http://a.test:" + port + "/final", true},
		{"other host strips", "http://b.test:" + port + "/final", false},
		{"subdomain strips", "http://sub.a.test:" + port + "/final", false},
		{"other port strips", "http://a.test:OTHERPORT/final", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{
				URL: "http://a.test:" + port + "/start?to=" + url.QueryEscape(tt.to),
				Header: map[string]string{
					"Authorization": "Bearer secret",
					"Cookie":        "session=secret",
					"X-Plugin":      "kept",
				},
			}
			if _, err := c.Do(context.Background(), p, req); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if final == nil {
				t.Fatal("final hop not reached")
			}
			if got := final.Get("Authorization") != "" && final.Get("Cookie") != ""; got != tt.wantCreds {
				t.Errorf("credentials forwarded = %v, want %v (Authorization %q, Cookie %q)", got, tt.wantCreds, final.Get("Authorization"), final.Get("Cookie"))
			}
			if !tt.wantCreds && (final.Get("Authorization") != "" || final.Get("Cookie") != "") {
				t.Errorf("a credential leaked: Authorization %q, Cookie %q", final.Get("Authorization"), final.Get("Cookie"))
			}
			if final.Get("X-Plugin") != "kept" {
				t.Errorf("X-Plugin = %q, want kept", final.Get("X-Plugin"))
			}
			final = nil
		})
	}
}

func TestDoRedirectMethod(t *testing.T) {
	type seen struct{ method, body, ct string }
	got := make(chan seen, 1)
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			b, _ := io.ReadAll(r.Body)
			got <- seen{r.Method, string(b), r.Header.Get("Content-Type")}
			return
		}
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		http.Redirect(w, r, "/final", code)
	}))
	c := New(Options{Resolver: staticResolver(map[string]string{"m.test": "127.0.0.1"})})
	p := Policy{AllowedHosts: []string{"m.test:" + port}, AllowPrivate: loopbackOnly}
	tests := []struct {
		method string
		code   int
		want   seen
	}{
		{"POST", 301, seen{"GET", "", ""}},
		{"POST", 302, seen{"GET", "", ""}},
		{"POST", 303, seen{"GET", "", ""}},
		{"PUT", 303, seen{"GET", "", ""}},
		{"PUT", 302, seen{"PUT", "payload", "text/plain"}},
		{"POST", 307, seen{"POST", "payload", "text/plain"}},
		{"PATCH", 308, seen{"PATCH", "payload", "text/plain"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.method, tt.code), func(t *testing.T) {
			req := Request{Method: tt.method, URL: fmt.Sprintf("http://m.test:%s/start?code=%d", port, tt.code),
				Header: map[string]string{"Content-Type": "text/plain"}, Body: []byte("payload")}
			if _, err := c.Do(context.Background(), p, req); err != nil {
				t.Fatal(err)
			}
			if s := <-got; s != tt.want {
				t.Errorf("final hop saw %+v, want %+v", s, tt.want)
			}
		})
	}
}

func TestDoResponseSize(t *testing.T) {
	const limit = 1000
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := strings.Repeat("x", n)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, _ = io.WriteString(w, body)
			return
		}
		// Flushing first forces chunked encoding: no length up front.
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, body)
	}))
	c := New(Options{Resolver: staticResolver(map[string]string{"big.test": "127.0.0.1"})})
	tests := []struct {
		name          string
		query         string
		method        string
		truncate      bool
		wantLen       int
		wantTruncated bool
		wantErr       error
	}{
		{name: "at the limit", query: "n=1000", wantLen: limit},
		{name: "declared too large", query: "n=1001", wantErr: ErrResponseTooLarge},
		{name: "chunked at the limit", query: "n=1000&chunked=1", wantLen: limit},
		{name: "chunked too large", query: "n=5000&chunked=1", wantErr: ErrResponseTooLarge},
		{name: "declared too large, truncated", query: "n=5000", truncate: true, wantLen: limit, wantTruncated: true},
		{name: "chunked too large, truncated", query: "n=5000&chunked=1", truncate: true, wantLen: limit, wantTruncated: true},
		{name: "small, truncate mode", query: "n=10", truncate: true, wantLen: 10},
		{name: "HEAD of a large body", query: "n=5000", method: "HEAD", wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{AllowedHosts: []string{"big.test:" + port}, AllowPrivate: loopbackOnly, MaxResponseBytes: limit, TruncateResponse: tt.truncate}
			resp, err := c.Do(context.Background(), p, Request{Method: tt.method, URL: "http://big.test:" + port + "/?" + tt.query})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Do = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Body) != tt.wantLen || resp.Truncated != tt.wantTruncated {
				t.Errorf("len(body) = %d truncated = %v, want %d %v", len(resp.Body), resp.Truncated, tt.wantLen, tt.wantTruncated)
			}
		})
	}
}

func TestDoTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	hang := fakeResolver{lookup: func(host string) ([]netip.Addr, error) {
		if host == "hang.test" {
			<-release
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}}
	// The fake ignores its context, as a misbehaving resolver might; wrap
	// it so the dial still ends with the call.
	c := New(Options{Resolver: ctxResolver{hang}})
	p := Policy{AllowedHosts: []string{"slow.test:" + port, "hang.test:" + port}, AllowPrivate: loopbackOnly, Timeout: 100 * time.Millisecond}

	tests := []struct {
		name    string
		url     string
		ctx     func() (context.Context, context.CancelFunc)
		policy  Policy
		wantErr error
	}{
		{name: "policy timeout, no headers", url: "http://slow.test:" + port + "/", wantErr: ErrTimeout},
		{name: "policy timeout, slow body", url: "http://slow.test:" + port + "/slow-body", wantErr: ErrTimeout},
		{name: "resolver hangs", url: "http://hang.test:" + port + "/", wantErr: ErrTimeout},
		{
			name: "caller deadline shorter than policy",
			url:  "http://slow.test:" + port + "/",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			policy:  Policy{Timeout: time.Minute},
			wantErr: ErrTimeout,
		},
		{
			name: "caller cancels",
			url:  "http://slow.test:" + port + "/",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			policy:  Policy{Timeout: time.Minute},
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			pol := p
			if tt.policy.Timeout != 0 {
				pol.Timeout = tt.policy.Timeout
			}
			start := time.Now()
			_, err := c.Do(ctx, pol, Request{URL: tt.url})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Do = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == context.Canceled && errors.Is(err, ErrTimeout) {
				t.Errorf("cancellation reported as a timeout: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// ctxResolver makes a blocking lookup give up when ctx ends.
type ctxResolver struct{ r Resolver }

func (c ctxResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	type result struct {
		addrs []netip.Addr
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		a, err := c.r.LookupNetIP(ctx, network, host)
		ch <- result{a, err}
	}()
	select {
	case r := <-ch:
		return r.addrs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestDoRequestChecks(t *testing.T) {
	var hits atomic.Int32
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	c := New(Options{
		Resolver:              staticResolver(map[string]string{"hooks.test": "127.0.0.1"}),
		MaxRequestHeaders:     4,
		MaxRequestHeaderBytes: 100,
	})
	p := Policy{AllowedHosts: []string{"hooks.test:" + port}, AllowPrivate: loopbackOnly, MaxRequestBytes: 10}
	target := "http://hooks.test:" + port + "/"
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"CONNECT", Request{Method: "CONNECT", URL: target}, ErrMethod},
		{"TRACE", Request{Method: "TRACE", URL: target}, ErrMethod},
		{"OPTIONS", Request{Method: "OPTIONS", URL: target}, ErrMethod},
		{"made-up method", Request{Method: "BREW", URL: target}, ErrMethod},
		{"body over the cap", Request{Method: "POST", URL: target, Body: []byte("01234567890")}, ErrRequestTooLarge},
		{"too many headers", Request{URL: target, Header: map[string]string{"A": "1", "B": "1", "C": "1", "D": "1", "E": "1"}}, ErrRequestTooLarge},
		{"headers too long", Request{URL: target, Header: map[string]string{"A": strings.Repeat("x", 101)}}, ErrRequestTooLarge},
		{"Host header", Request{URL: target, Header: map[string]string{"host": "127.0.0.1"}}, ErrInvalidRequest},
		{"Transfer-Encoding", Request{URL: target, Header: map[string]string{"Transfer-Encoding": "chunked"}}, ErrInvalidRequest},
		{"Proxy-Authorization", Request{URL: target, Header: map[string]string{"Proxy-Authorization": "x"}}, ErrInvalidRequest},
		{"Upgrade", Request{URL: target, Header: map[string]string{"Upgrade": "h2c"}}, ErrInvalidRequest},
		{"CRLF in value", Request{URL: target, Header: map[string]string{"X-A": "v\r\nX-Injected: 1"}}, ErrInvalidRequest},
		{"bad name", Request{URL: target, Header: map[string]string{"X A": "v"}}, ErrInvalidRequest},
		{"names differing in case", Request{URL: target, Header: map[string]string{"x-a": "1", "X-A": "2"}}, ErrInvalidRequest},
		{"credentials in URL", Request{URL: "http://u:p@hooks.test:" + port + "/"}, ErrInvalidRequest},
		{"unparsable URL", Request{URL: "http://hooks.test:" + port + "/%zz"}, ErrInvalidRequest},
		{"relative URL", Request{URL: "/path"}, ErrScheme},
		{"invalid policy", Request{URL: target}, ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := p
			if tt.want == ErrInvalidPolicy {
				pol.AllowedHosts = []string{"*"}
			}
			_, err := c.Do(context.Background(), pol, tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Do = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "safehttp: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server reached %d times by refused requests", n)
	}
	t.Run("lower-case method accepted", func(t *testing.T) {
		if _, err := c.Do(context.Background(), p, Request{Method: "delete", URL: target}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDoErrorsHideURLSecrets: webhook URLs carry tokens in their path and
// query; errors name only scheme, host and port.
func TestDoErrorsHideURLSecrets(t *testing.T) {
	c := New(Options{Resolver: staticResolver(map[string]string{"hooks.test": "10.0.0.1"})})
	tests := []struct {
		name string
		p    Policy
		url  string
		want string
	}{
		{"host denied", Policy{}, "https://discord.com/api/webhooks/123/SECRETTOKEN?k=SECRETTOKEN", `"discord.com:443"`},
		{"address denied", Policy{AllowedHosts: []string{"hooks.test"}}, "http://hooks.test/SECRETTOKEN", "10.0.0.1"},
		{"unparsable", Policy{}, "http://hooks.test/SECRETTOKEN%zz", "URL cannot be parsed"},
		{"userinfo", Policy{AllowedHosts: []string{"hooks.test"}}, "http://user:SECRETTOKEN@hooks.test/", "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(context.Background(), tt.p, Request{URL: tt.url})
			if err == nil {
				t.Fatal("Do succeeded")
			}
			if strings.Contains(err.Error(), "SECRETTOKEN") {
				t.Errorf("message leaks the secret: %q", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestDoIgnoresProxyEnvironment: a proxy would dial on our behalf, past
// the address check, so HTTP_PROXY and friends must have no effect.
func TestDoIgnoresProxyEnvironment(t *testing.T) {
	var proxied atomic.Int32
	proxyPort := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Add(1) }))
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "direct") }))
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"} {
		t.Setenv(k, "http://127.0.0.1:"+proxyPort)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	c := New(Options{Resolver: staticResolver(map[string]string{"hooks.test": "127.0.0.1"})})
	p := Policy{AllowedHosts: []string{"hooks.test:" + port}, AllowPrivate: loopbackOnly}
	// net/http reads the proxy variables once per process, so the request
	// below only proves something when this test runs first; the direct
	// look at the transport does not depend on order.
	pol, err := p.compile()
	if err != nil {
		t.Fatal(err)
	}
	if c.transport(pol).Proxy != nil {
		t.Error("transport has a Proxy function; want none")
	}
	resp, err := c.Do(context.Background(), p, Request{URL: "http://hooks.test:" + port + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "direct" || proxied.Load() != 0 {
		t.Errorf("body %q, proxy hits %d; want a direct connection", resp.Body, proxied.Load())
	}
}

func TestDoLookupFailure(t *testing.T) {
	c := New(Options{Resolver: staticResolver(nil)})
	_, err := c.Do(context.Background(), Policy{AllowedHosts: []string{"nowhere.test"}}, Request{URL: "http://nowhere.test/"})
	if !errors.Is(err, ErrLookup) || !strings.Contains(err.Error(), "nowhere.test") {
		t.Fatalf("Do = %v, want ErrLookup naming the host", err)
	}
}
