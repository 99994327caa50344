package safehttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Options configures a Client. The zero value of each field means its
// default.
type Options struct {
	// Resolver resolves host names; default net.DefaultResolver.
	Resolver Resolver
	// TLSConfig is cloned for each call (for example to trust a test CA);
	// default: system roots. TLS 1.2 is the minimum either way.
	TLSConfig *tls.Config
	// DialTimeout bounds each TCP connect; default 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds each TLS handshake; default 5s.
	TLSHandshakeTimeout time.Duration
	// MaxRequestHeaders caps how many headers a plugin may send; default 32.
	MaxRequestHeaders int
	// MaxRequestHeaderBytes caps the summed length of header names and
	// values a plugin may send; default 16 KiB.
	MaxRequestHeaderBytes int
	// MaxResponseHeaderBytes caps the response header block; default 64 KiB.
	MaxResponseHeaderBytes int64
	// UserAgent is sent when the plugin sets none; default
	// "Spywatcher-Plugin-Fetch/1".
	UserAgent string
}

// Request is a plugin's HTTP request. An empty Method means GET.
type Request struct {
	Method string            `json:"method"`
	URL    string            `json:"url"`
	Header map[string]string `json:"headers,omitempty"`
	Body   []byte            `json:"body,omitempty"`
}

// Response is the answer handed back to the plugin. Header values that
// occur more than once are joined with ", ". Truncated is set only under
// Policy.TruncateResponse, when Body holds the first MaxResponseBytes.
type Response struct {
	Status    int               `json:"status"`
	Header    map[string]string `json:"headers,omitempty"`
	Body      []byte            `json:"body,omitempty"`
	Truncated bool              `json:"truncated,omitempty"`
}

// Client sends plugin requests. It is safe for concurrent use; it holds no
// connections between calls.
type Client struct {
	opts  Options
	rules addrRules
}

// New returns a Client with opts' zero fields set to their defaults.
func New(opts Options) *Client {
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.TLSHandshakeTimeout <= 0 {
		opts.TLSHandshakeTimeout = 5 * time.Second
	}
	if opts.MaxRequestHeaders <= 0 {
		opts.MaxRequestHeaders = 32
	}
	if opts.MaxRequestHeaderBytes <= 0 {
		opts.MaxRequestHeaderBytes = 16 << 10
	}
	if opts.MaxResponseHeaderBytes <= 0 {
		opts.MaxResponseHeaderBytes = 64 << 10
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "Spywatcher-Plugin-Fetch/1"
	}
	return &Client{opts: opts, rules: newAddrRules()}
}

// Do sends req under policy p, following redirects that pass the same
// checks, and returns the final response with its body read (capped).
func (c *Client) Do(ctx context.Context, p Policy, req Request) (Response, error) {
	pol, err := p.compile()
	if err != nil {
		return Response{}, err
	}
	method, err := checkMethod(req.Method)
	if err != nil {
		return Response{}, err
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, fail(ErrInvalidRequest, err, "safehttp: %s: URL cannot be parsed", method)
	}
	t, err := pol.checkURL(u)
	if err != nil {
		return Response{}, fmt.Errorf("safehttp: %s %s: %w", method, redactedOrigin(u), err)
	}
	prefix := "safehttp: " + method + " " + t.origin()
	header, err := c.buildHeader(req.Header)
	if err != nil {
		return Response{}, fmt.Errorf("%s: %w", prefix, err)
	}
	if int64(len(req.Body)) > pol.maxRequest {
		return Response{}, fail(ErrRequestTooLarge, nil, "%s: request body is %d bytes, limit is %d", prefix, len(req.Body), pol.maxRequest)
	}

	ctx, cancel := context.WithTimeout(ctx, pol.timeout)
	defer cancel()
	tr := c.transport(pol)
	defer tr.CloseIdleConnections()

	resp, err := c.follow(ctx, tr, pol, method, t, header, req.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s: %w", prefix, classify(ctx, err))
	}
	defer resp.Body.Close()
	out := Response{Status: resp.StatusCode, Header: flatten(resp.Header)}
	out.Body, out.Truncated, err = readBody(resp, pol)
	if err != nil {
		return Response{}, fmt.Errorf("%s: %w", prefix, classify(ctx, err))
	}
	return out, nil
}

// follow sends the request and any redirects, checking every hop.
func (c *Client) follow(ctx context.Context, tr http.RoundTripper, p *policy, method string, t target, header http.Header, body []byte) (*http.Response, error) {
	for redirects := 0; ; redirects++ {
		resp, err := send(ctx, tr, method, t, header, body)
		if err != nil {
			if redirects > 0 {
				return nil, fmt.Errorf("redirect %d to %s: %w", redirects, t.origin(), err)
			}
			return nil, err
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" || p.maxRedirects < 0 {
			return resp, nil
		}
		// Drain a little so the server sees a clean close; never much.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if redirects >= p.maxRedirects {
			return nil, fail(ErrTooManyRedirects, nil, "stopped after %d redirects (last from %s)", redirects, t.origin())
		}
		next, err := t.url.Parse(loc)
		if err != nil {
			return nil, fail(ErrInvalidRequest, nil, "redirect %d from %s: Location cannot be parsed", redirects+1, t.origin())
		}
		nt, err := p.checkURL(next)
		if err != nil {
			return nil, fmt.Errorf("redirect %d to %s: %w", redirects+1, redactedOrigin(next), err)
		}
		// Browser and net/http behaviour: 301/302 turn POST into GET,
		// 303 turns everything but HEAD into GET; 307/308 resend as is.
		code := resp.StatusCode
		if (code == http.StatusMovedPermanently || code == http.StatusFound) && method == http.MethodPost ||
			code == http.StatusSeeOther && method != http.MethodHead {
			method, body = http.MethodGet, nil
			header = header.Clone()
			header.Del("Content-Type")
		}
		if nt.origin() != t.origin() {
			// Credentials were meant for the first origin only. Once
			// stripped they stay stripped, even if a later hop returns.
			header = header.Clone()
			for _, k := range []string{"Authorization", "Cookie", "Cookie2"} {
				header.Del(k)
			}
		}
		t = nt
	}
}

func send(ctx context.Context, tr http.RoundTripper, method string, t target, header http.Header, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, t.url.String(), rd)
	if err != nil {
		// The cause is dropped: it quotes the URL, which may hold a secret.
		return nil, fail(ErrInvalidRequest, nil, "request cannot be built")
	}
	hreq.Header = header.Clone()
	return tr.RoundTrip(hreq)
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// transport builds a fresh transport for one call: its dialer is bound to
// this call's policy, and nothing it opens outlives the call.
func (c *Client) transport(p *policy) *http.Transport {
	d := newDialer(c, p)
	cfg := &tls.Config{}
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return &http.Transport{
		Proxy:                  nil, // never from the environment
		DialContext:            d.dialContext,
		TLSClientConfig:        cfg,
		TLSHandshakeTimeout:    c.opts.TLSHandshakeTimeout,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: c.opts.MaxResponseHeaderBytes,
	}
}

func readBody(resp *http.Response, p *policy) ([]byte, bool, error) {
	// A HEAD response announces the length of a body it does not send.
	head := resp.Request != nil && resp.Request.Method == http.MethodHead
	if !head && resp.ContentLength > p.maxResponse && !p.truncate {
		return nil, false, fail(ErrResponseTooLarge, nil, "response body is %d bytes, limit is %d", resp.ContentLength, p.maxResponse)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.maxResponse+1))
	if err != nil {
		return nil, false, fmt.Errorf("read response body: %w", err)
	}
	if int64(len(b)) > p.maxResponse {
		if p.truncate {
			return b[:p.maxResponse], true, nil
		}
		return nil, false, fail(ErrResponseTooLarge, nil, "response body exceeds the limit of %d bytes", p.maxResponse)
	}
	return b, false, nil
}

// classify turns deadline errors into ErrTimeout; policy denials and
// other errors pass through unchanged.
func classify(ctx context.Context, err error) error {
	var f *failure
	if errors.As(err, &f) && !errors.Is(err, ErrLookup) {
		return err
	}
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() {
		return fail(ErrTimeout, err, "timed out")
	}
	return err
}

func checkMethod(m string) (string, error) {
	switch m = strings.ToUpper(m); m {
	case "":
		return http.MethodGet, nil
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead:
		return m, nil
	}
	return "", fail(ErrMethod, nil, "safehttp: method %q is not allowed (GET, POST, PUT, PATCH, DELETE, HEAD)", m)
}

// buildHeader validates the plugin's headers. Headers that steer framing,
// routing or connection handling are refused: the host owns them, and
// letting a plugin set Host or Transfer-Encoding invites request smuggling
// or virtual-host confusion.
func (c *Client) buildHeader(in map[string]string) (http.Header, error) {
	if len(in) > c.opts.MaxRequestHeaders {
		return nil, fail(ErrRequestTooLarge, nil, "%d headers, limit is %d", len(in), c.opts.MaxRequestHeaders)
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic errors
	out := make(http.Header, len(in)+1)
	size := 0
	for _, k := range keys {
		v := in[k]
		if !validHeaderName(k) {
			return nil, fail(ErrInvalidRequest, nil, "header name %q is not valid", k)
		}
		if !validHeaderValue(v) {
			// The value is not echoed: it may be a secret.
			return nil, fail(ErrInvalidRequest, nil, "header %q has a value with control characters", k)
		}
		ck := http.CanonicalHeaderKey(k)
		if reservedHeader(ck) {
			return nil, fail(ErrInvalidRequest, nil, "header %q is managed by the host and cannot be set", ck)
		}
		if _, dup := out[ck]; dup {
			return nil, fail(ErrInvalidRequest, nil, "header %q is given twice (names are case-insensitive)", ck)
		}
		size += len(k) + len(v)
		out[ck] = []string{v}
	}
	if size > c.opts.MaxRequestHeaderBytes {
		return nil, fail(ErrRequestTooLarge, nil, "headers total %d bytes, limit is %d", size, c.opts.MaxRequestHeaderBytes)
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = []string{c.opts.UserAgent}
	}
	return out, nil
}

func reservedHeader(canonical string) bool {
	switch canonical {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Proxy-Connection", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "Expect":
		return true
	}
	return false
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue refuses control characters other than tab, above all
// CR and LF, which would let a plugin inject headers.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func flatten(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, vs := range h {
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// redactedOrigin names u without path, query or credentials, for errors
// about URLs that failed validation.
func redactedOrigin(u *url.URL) string {
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Scheme + "://" + u.Host
}
