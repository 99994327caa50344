package safehttp

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		wantErr bool
	}{
		{name: "zero policy", policy: Policy{}},
		{name: "typical grant", policy: Policy{AllowedHosts: []string{"discord.com", "*.slack.com", "hooks.example.org:8443", "203.0.113.7", "[2001:db8::1]:8080", "2001:db8::2", "[2001:db8::3]", "Example.COM."}}},
		{name: "empty entry", policy: Policy{AllowedHosts: []string{""}}, wantErr: true},
		{name: "URL not host", policy: Policy{AllowedHosts: []string{"https://discord.com"}}, wantErr: true},
		{name: "path", policy: Policy{AllowedHosts: []string{"discord.com/api"}}, wantErr: true},
		{name: "userinfo", policy: Policy{AllowedHosts: []string{"user@discord.com"}}, wantErr: true},
		{name: "bare star", policy: Policy{AllowedHosts: []string{"*"}}, wantErr: true},
		{name: "star dot", policy: Policy{AllowedHosts: []string{"*."}}, wantErr: true},
		{name: "wildcard on TLD", policy: Policy{AllowedHosts: []string{"*.com"}}, wantErr: true},
		{name: "inner wildcard", policy: Policy{AllowedHosts: []string{"hooks.*.com"}}, wantErr: true},
		{name: "partial wildcard", policy: Policy{AllowedHosts: []string{"foo*.example.com"}}, wantErr: true},
		{name: "empty label", policy: Policy{AllowedHosts: []string{"a..example.com"}}, wantErr: true},
		{name: "two trailing dots", policy: Policy{AllowedHosts: []string{"example.com.."}}, wantErr: true},
		{name: "port zero", policy: Policy{AllowedHosts: []string{"example.com:0"}}, wantErr: true},
		{name: "port too big", policy: Policy{AllowedHosts: []string{"example.com:65536"}}, wantErr: true},
		{name: "port not numeric", policy: Policy{AllowedHosts: []string{"example.com:https"}}, wantErr: true},
		{name: "empty port", policy: Policy{AllowedHosts: []string{"example.com:"}}, wantErr: true},
		{name: "numeric name", policy: Policy{AllowedHosts: []string{"2130706433"}}, wantErr: true},
		{name: "short IPv4", policy: Policy{AllowedHosts: []string{"127.1"}}, wantErr: true},
		{name: "hex IPv4", policy: Policy{AllowedHosts: []string{"0x7f.0x1"}}, wantErr: true},
		{name: "unclosed bracket", policy: Policy{AllowedHosts: []string{"[::1"}}, wantErr: true},
		{name: "bracketed name", policy: Policy{AllowedHosts: []string{"[example.com]"}}, wantErr: true},
		{name: "zone", policy: Policy{AllowedHosts: []string{"fe80::1%eth0"}}, wantErr: true},
		{name: "invalid prefix", policy: Policy{AllowPrivate: []netip.Prefix{{}}}, wantErr: true},
		{name: "negative timeout", policy: Policy{Timeout: -time.Second}, wantErr: true},
		{name: "negative response cap", policy: Policy{MaxResponseBytes: -1}, wantErr: true},
		{name: "negative request cap", policy: Policy{MaxRequestBytes: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("Validate() = %v, not ErrInvalidPolicy", err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "safehttp: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	p, err := Policy{}.compile()
	if err != nil {
		t.Fatal(err)
	}
	if p.maxRedirects != DefaultMaxRedirects || p.timeout != DefaultTimeout ||
		p.maxResponse != DefaultMaxResponseBytes || p.maxRequest != DefaultMaxRequestBytes || p.truncate {
		t.Errorf("defaults = %+v", p)
	}
	p, err = Policy{MaxRedirects: -1, AllowPrivate: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.1/128")}}.compile()
	if err != nil {
		t.Fatal(err)
	}
	if p.maxRedirects >= 0 {
		t.Errorf("MaxRedirects -1 became %d, want negative (no redirects)", p.maxRedirects)
	}
	if want := netip.MustParsePrefix("127.0.0.1/32"); p.allowPrivate[0] != want {
		t.Errorf("mapped prefix became %s, want %s", p.allowPrivate[0], want)
	}
}

// TestAllowList covers wildcard, port, case, trailing-dot and IP-literal
// matching of request URLs against AllowedHosts.
func TestAllowList(t *testing.T) {
	hosts := []string{
		"discord.com",
		"*.slack.com",
		"hooks.example.org:8443",
		"*.internal.example:9000",
		"203.0.113.7",
		"[2001:db8::1]:8080",
		"UPPER.example.net",
	}
	tests := []struct {
		url  string
		want error // nil: allowed
	}{
		// Exact names, default ports only.
		{"https://discord.com/api/webhooks/1/abc", nil},
		{"http://discord.com/", nil},
		{"https://discord.com:443/", nil},
		{"http://discord.com:80/", nil},
		{"https://DISCORD.com/", nil},
		{"https://discord.com./", nil},
		{"https://discord.com:8443/", ErrHostNotAllowed},
		{"http://discord.com:443/", ErrHostNotAllowed}, // not http's default port
		{"https://discord.com:22/", ErrHostNotAllowed},
		{"https://www.discord.com/", ErrHostNotAllowed},
		{"https://discord.com.evil.net/", ErrHostNotAllowed},
		{"https://evildiscord.com/", ErrHostNotAllowed},
		{"https://discord.com../", ErrInvalidRequest},
		// Wildcards: subdomains at any depth, never the apex or look-alikes.
		{"https://hooks.slack.com/services/x", nil},
		{"https://a.b.slack.com/", nil},
		{"https://HOOKS.Slack.COM./", nil},
		{"https://slack.com/", ErrHostNotAllowed},
		{"https://evilslack.com/", ErrHostNotAllowed},
		{"https://hooks.slack.com.evil.net/", ErrHostNotAllowed},
		{"https://hooks.slack.com:8443/", ErrHostNotAllowed},
		// Explicit ports: that port only, either scheme.
		{"https://hooks.example.org:8443/", nil},
		{"http://hooks.example.org:8443/", nil},
		{"https://hooks.example.org/", ErrHostNotAllowed},
		{"https://hooks.example.org:8444/", ErrHostNotAllowed},
		{"https://a.internal.example:9000/", nil},
		{"https://a.internal.example/", ErrHostNotAllowed},
		// Entries are case-insensitive too.
		{"https://upper.example.net/", nil},
		// IP literals only when listed literally.
		{"http://203.0.113.7/", nil},
		{"https://203.0.113.7/", nil},
		{"http://203.0.113.7:8080/", ErrHostNotAllowed},
		{"http://203.0.113.8/", ErrHostNotAllowed},
		{"http://[2001:db8::1]:8080/", nil},
		{"http://[2001:DB8:0::1]:8080/", nil},
		{"http://[2001:db8::1]/", ErrHostNotAllowed},
		{"http://[::ffff:203.0.113.7]/", ErrHostNotAllowed},
		{"http://127.0.0.1/", ErrHostNotAllowed},
		{"http://localhost/", ErrHostNotAllowed},
		{"http://[::1]/", ErrHostNotAllowed},
		{"http://[fe80::1%25eth0]/", ErrInvalidRequest},
		// Numeric spellings of IPv4 addresses are not names.
		{"http://2130706433/", ErrInvalidRequest},
		{"http://127.1/", ErrInvalidRequest},
		{"http://0x7f000001/", ErrInvalidRequest},
		// Schemes and URL forms.
		{"ftp://discord.com/", ErrScheme},
		{"file:///etc/passwd", ErrScheme},
		{"gopher://discord.com/", ErrScheme},
		{"javascript:alert(1)", ErrScheme},
		{"//discord.com/", ErrScheme},
		{"https:discord.com", ErrInvalidRequest},
		{"https://user:pass@discord.com/", ErrInvalidRequest},
		{"https://discord.com@evil.net/", ErrInvalidRequest},
	}
	p, err := Policy{AllowedHosts: hosts}.compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.checkURL(u)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("checkURL = %v, want allowed", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("checkURL = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckURLNormalisesHost(t *testing.T) {
	p, err := Policy{AllowedHosts: []string{"example.com:8080", "2001:db8::1"}}.compile()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"http://EXAMPLE.com.:8080/p?q=1", "http://example.com:8080/p?q=1"},
		{"http://[2001:DB8::0:1]/", "http://[2001:db8::1]/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, _ := url.Parse(tt.in)
			got, err := p.checkURL(u)
			if err != nil {
				t.Fatal(err)
			}
			if got.url.String() != tt.want {
				t.Errorf("normalised URL = %s, want %s", got.url, tt.want)
			}
		})
	}
}
