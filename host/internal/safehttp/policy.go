package safehttp

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults applied to zero Policy fields.
const (
	DefaultMaxRedirects     = 3
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	DefaultMaxRequestBytes  = 1 << 20
)

// Policy is what one call may do: the guild admin's http.fetch grant plus
// limits. The zero value of each limit means its default.
type Policy struct {
	// AllowedHosts lists the hosts a request (and every redirect) may go
	// to: "discord.com" (exactly that host), "*.slack.com" (any subdomain
	// at any depth, not slack.com itself), "hooks.example.org:8443" (that
	// port only), "203.0.113.7" or "[2001:db8::1]:8080" (IP literals, which
	// are otherwise never allowed). Without a port an entry admits only the
	// scheme's default port (80 for http, 443 for https). Matching is
	// case-insensitive and ignores one trailing dot.
	AllowedHosts []string
	// AllowPrivate lists address blocks that may be dialled although they
	// are not public, for tests and self-hosters' internal webhooks. It
	// never unlocks cloud metadata, unspecified, broadcast or multicast
	// addresses.
	AllowPrivate []netip.Prefix
	// MaxRedirects is how many redirects are followed; 0 means
	// DefaultMaxRedirects and a negative value means none are followed
	// (the 3xx response is returned as is).
	MaxRedirects int
	// Timeout bounds the whole call, redirects and body included; 0 means
	// DefaultTimeout. The caller's context may end it sooner.
	Timeout time.Duration
	// MaxResponseBytes caps the response body; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// TruncateResponse chooses what happens past MaxResponseBytes: false
	// (the default) fails with ErrResponseTooLarge, true returns the first
	// MaxResponseBytes bytes with Response.Truncated set.
	TruncateResponse bool
	// MaxRequestBytes caps the request body; 0 means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64
}

// Validate reports whether p is well formed, so a grant can be checked
// when the admin saves it rather than at the first fetch.
func (p Policy) Validate() error {
	_, err := p.compile()
	return err
}

// hostRule is one parsed AllowedHosts entry.
type hostRule struct {
	ip       netip.Addr // set for IP-literal entries
	name     string     // lower-case, no trailing dot; the suffix for wildcards
	wildcard bool
	port     int // 0: the scheme's default port
}

// policy is a validated Policy with defaults applied.
type policy struct {
	rules        []hostRule
	allowPrivate []netip.Prefix
	maxRedirects int // negative: do not follow
	timeout      time.Duration
	maxResponse  int64
	truncate     bool
	maxRequest   int64
}

func (p Policy) compile() (*policy, error) {
	out := &policy{
		maxRedirects: p.MaxRedirects,
		timeout:      p.Timeout,
		maxResponse:  p.MaxResponseBytes,
		truncate:     p.TruncateResponse,
		maxRequest:   p.MaxRequestBytes,
	}
	if out.maxRedirects == 0 {
		out.maxRedirects = DefaultMaxRedirects
	}
	switch {
	case out.timeout < 0:
		return nil, fail(ErrInvalidPolicy, nil, "safehttp: invalid policy: negative timeout %s", p.Timeout)
	case out.timeout == 0:
		out.timeout = DefaultTimeout
	}
	switch {
	case out.maxResponse < 0:
		return nil, fail(ErrInvalidPolicy, nil, "safehttp: invalid policy: negative MaxResponseBytes %d", p.MaxResponseBytes)
	case out.maxResponse == 0:
		out.maxResponse = DefaultMaxResponseBytes
	}
	switch {
	case out.maxRequest < 0:
		return nil, fail(ErrInvalidPolicy, nil, "safehttp: invalid policy: negative MaxRequestBytes %d", p.MaxRequestBytes)
	case out.maxRequest == 0:
		out.maxRequest = DefaultMaxRequestBytes
	}
	for _, entry := range p.AllowedHosts {
		r, err := parseHostRule(entry)
		if err != nil {
			return nil, fail(ErrInvalidPolicy, nil, "safehttp: invalid policy: allowed host %q: %s", entry, err)
		}
		out.rules = append(out.rules, r)
	}
	for _, pfx := range p.AllowPrivate {
		if !pfx.IsValid() {
			return nil, fail(ErrInvalidPolicy, nil, "safehttp: invalid policy: invalid AllowPrivate prefix %s", pfx)
		}
		pfx = pfx.Masked()
		// Addresses are unmapped before the check, so a prefix written
		// in ::ffff:a.b.c.d form must be unmapped too to ever match.
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
		}
		out.allowPrivate = append(out.allowPrivate, pfx)
	}
	return out, nil
}

// reason is a plain error for messages that are embedded in a failure.
type reason string

func (r reason) Error() string { return string(r) }

func parseHostRule(entry string) (hostRule, error) {
	s := strings.ToLower(entry)
	if s == "" {
		return hostRule{}, reason("empty entry")
	}
	if strings.ContainsAny(s, "/?#@ ") {
		return hostRule{}, reason("want a host with an optional port, not a URL")
	}
	host, portStr := s, ""
	if a, err := netip.ParseAddr(s); err == nil {
		// A bare IPv6 literal: its colons are not a port separator.
		return ipRule(a, 0)
	}
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
				return hostRule{}, reason("cannot split host and port")
			}
			h, p = s[1:len(s)-1], ""
		}
		host, portStr = h, p
	}
	port := 0
	if portStr != "" || strings.HasSuffix(s, ":") {
		n, err := parsePort(portStr)
		if err != nil {
			return hostRule{}, err
		}
		port = n
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return ipRule(a, port)
	}
	if strings.HasPrefix(s, "[") {
		return hostRule{}, reason("brackets are only for IPv6 literals")
	}
	wildcard := false
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		wildcard, host = true, rest
	}
	host = strings.TrimSuffix(host, ".")
	if err := validHostname(host); err != nil {
		return hostRule{}, err
	}
	if wildcard && !strings.Contains(host, ".") {
		return hostRule{}, reason("a wildcard must name a domain below a top-level domain, such as *.example.com")
	}
	return hostRule{name: host, wildcard: wildcard, port: port}, nil
}

func ipRule(a netip.Addr, port int) (hostRule, error) {
	if a.Zone() != "" {
		return hostRule{}, reason("IPv6 zones are not allowed")
	}
	return hostRule{ip: a, port: port}, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, reason("port must be a number from 1 to 65535")
	}
	return int(n), nil
}

// validHostname accepts lower-case DNS names made of letters, digits,
// hyphens and underscores. A numeric last label is refused because
// resolvers may read names like "2130706433" or "127.1" as IPv4 addresses.
func validHostname(h string) error {
	if h == "" || len(h) > 253 {
		return reason("not a valid host name")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return reason("not a valid host name")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return reason("not a valid host name")
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return reason("looks like a numeric IP address; write IP literals in standard form")
	}
	return nil
}

// target is a checked request URL: its host normalised and its effective
// port known.
type target struct {
	url  *url.URL
	host string // lower-case name without trailing dot, or canonical IP
	ip   netip.Addr
	port int
}

// origin names the target for messages and for the same-origin test that
// decides whether credentials survive a redirect. It has no path or
// query, which may hold secrets.
func (t target) origin() string {
	return t.url.Scheme + "://" + net.JoinHostPort(t.host, strconv.Itoa(t.port))
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// checkURL validates u (scheme, form, allow-list) and returns the target
// with u's host rewritten to the normalised form that was checked, so the
// request goes to exactly the name the allow-list admitted.
func (p *policy) checkURL(u *url.URL) (target, error) {
	if u.Scheme != "http" && u.Scheme != "https" {
		return target{}, fail(ErrScheme, nil, "scheme %q is not allowed (only http and https)", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return target{}, fail(ErrInvalidRequest, nil, "URL must be absolute with a host")
	}
	if u.User != nil {
		return target{}, fail(ErrInvalidRequest, nil, "credentials in the URL are not allowed; send an Authorization header")
	}
	t := target{port: defaultPort(u.Scheme)}
	if ps := u.Port(); ps != "" {
		n, err := parsePort(ps)
		if err != nil {
			return target{}, fail(ErrInvalidRequest, err, "host %q", u.Host)
		}
		t.port = n
	}
	h := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return target{}, fail(ErrInvalidRequest, nil, "host %q: IPv6 zones are not allowed", u.Host)
		}
		t.ip, t.host = a, a.String()
	} else {
		h = strings.TrimSuffix(h, ".")
		if err := validHostname(h); err != nil {
			return target{}, fail(ErrInvalidRequest, err, "host %q", u.Hostname())
		}
		t.host = h
	}
	if !p.allows(t.host, t.ip, t.port, u.Scheme) {
		return target{}, fail(ErrHostNotAllowed, nil, "host %q is not on the allow-list", net.JoinHostPort(t.host, strconv.Itoa(t.port)))
	}
	cp := *u
	cp.Host = t.host
	if t.ip.Is6() {
		cp.Host = "[" + t.host + "]"
	}
	if u.Port() != "" {
		cp.Host += ":" + strconv.Itoa(t.port)
	}
	t.url = &cp
	return t, nil
}

func (p *policy) allows(host string, ip netip.Addr, port int, scheme string) bool {
	for _, r := range p.rules {
		want := r.port
		if want == 0 {
			want = defaultPort(scheme)
		}
		if port != want {
			continue
		}
		switch {
		case r.ip.IsValid():
			if ip == r.ip {
				return true
			}
		case ip.IsValid():
			// Names never match IP-literal hosts.
		case r.wildcard:
			if strings.HasSuffix(host, "."+r.name) {
				return true
			}
		case host == r.name:
			return true
		}
	}
	return false
}
