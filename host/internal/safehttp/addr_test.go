package safehttp

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestAddrRulesCheck(t *testing.T) {
	rules := newAddrRules()
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	everything := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	tests := []struct {
		addr    string
		allow   []netip.Prefix
		denied  bool
		wantWhy string
	}{
		// Public addresses pass.
		{addr: "8.8.8.8"},
		{addr: "1.1.1.1"},
		{addr: "2606:4700:4700::1111"},
		{addr: "2001:4860:4860::8888"},
		{addr: "::ffff:8.8.8.8"},
		{addr: "64:ff9b::808:808"}, // NAT64 of 8.8.8.8
		{addr: "2002:808:808::1"},  // 6to4 of 8.8.8.8
		{addr: "100.63.255.255"},   // just below CGNAT
		{addr: "100.128.0.0"},      // just above CGNAT
		{addr: "172.32.0.1"},       // just above 172.16/12
		// Denied ranges.
		{addr: "0.0.0.0", denied: true, wantWhy: "unspecified"},
		{addr: "0.1.2.3", denied: true, wantWhy: "this network"},
		{addr: "10.0.0.1", denied: true, wantWhy: "private"},
		{addr: "100.64.0.1", denied: true, wantWhy: "carrier-grade NAT"},
		{addr: "100.100.100.200", denied: true, wantWhy: "metadata"},
		{addr: "127.0.0.1", denied: true, wantWhy: "loopback"},
		{addr: "127.255.255.254", denied: true, wantWhy: "loopback"},
		{addr: "169.254.1.1", denied: true, wantWhy: "link-local"},
		{addr: "169.254.169.254", denied: true, wantWhy: "metadata"},
		{addr: "172.16.0.1", denied: true, wantWhy: "private"},
		{addr: "172.31.255.255", denied: true, wantWhy: "private"},
		{addr: "192.0.0.8", denied: true, wantWhy: "IETF"},
		{addr: "192.0.2.1", denied: true, wantWhy: "documentation"},
		{addr: "192.168.1.1", denied: true, wantWhy: "private"},
		{addr: "198.18.0.1", denied: true, wantWhy: "benchmarking"},
		{addr: "198.19.255.255", denied: true, wantWhy: "benchmarking"},
		{addr: "198.51.100.1", denied: true, wantWhy: "documentation"},
		{addr: "203.0.113.1", denied: true, wantWhy: "documentation"},
		{addr: "224.0.0.1", denied: true, wantWhy: "multicast"},
		{addr: "240.0.0.1", denied: true, wantWhy: "reserved"},
		{addr: "255.255.255.255", denied: true, wantWhy: "broadcast"},
		{addr: "::", denied: true, wantWhy: "unspecified"},
		{addr: "::1", denied: true, wantWhy: "loopback"},
		{addr: "::7f00:1", denied: true, wantWhy: "IPv4-compatible"}, // ::127.0.0.1
		{addr: "::ffff:127.0.0.1", denied: true, wantWhy: "loopback"},
		{addr: "::ffff:10.0.0.1", denied: true, wantWhy: "private"},
		{addr: "::ffff:169.254.169.254", denied: true, wantWhy: "metadata"},
		{addr: "64:ff9b::7f00:1", denied: true, wantWhy: "NAT64 form of 127.0.0.1"},
		{addr: "64:ff9b::a9fe:a9fe", denied: true, wantWhy: "NAT64 form of 169.254.169.254"},
		{addr: "64:ff9b:1::1", denied: true, wantWhy: "local-use NAT64"},
		{addr: "2002:7f00:1::", denied: true, wantWhy: "6to4 form of 127.0.0.1"},
		{addr: "2002:c0a8:101::1", denied: true, wantWhy: "6to4 form of 192.168.1.1"},
		{addr: "2001:0:4136:e378::1", denied: true, wantWhy: "Teredo"},
		{addr: "2001:db8::1", denied: true, wantWhy: "documentation"},
		{addr: "fc00::1", denied: true, wantWhy: "unique local"},
		{addr: "fd12:3456::1", denied: true, wantWhy: "unique local"},
		{addr: "fd00:ec2::254", denied: true, wantWhy: "metadata"},
		{addr: "fe80::1", denied: true, wantWhy: "link-local"},
		{addr: "fe80::1%eth0", denied: true, wantWhy: "link-local"},
		{addr: "ff02::1", denied: true, wantWhy: "multicast"},
		// AllowPrivate exceptions open their block and nothing else.
		{addr: "127.0.0.1", allow: loop},
		{addr: "::ffff:127.0.0.1", allow: loop},
		{addr: "10.0.0.1", allow: loop, denied: true, wantWhy: "private"},
		{addr: "::1", allow: loop, denied: true, wantWhy: "loopback"},
		{addr: "10.0.0.1", allow: everything},
		// ...but never metadata, unspecified, broadcast or multicast.
		{addr: "169.254.169.254", allow: everything, denied: true, wantWhy: "metadata"},
		{addr: "fd00:ec2::254", allow: everything, denied: true, wantWhy: "metadata"},
		{addr: "100.100.100.200", allow: everything, denied: true, wantWhy: "metadata"},
		{addr: "0.0.0.0", allow: everything, denied: true, wantWhy: "unspecified"},
		{addr: "255.255.255.255", allow: everything, denied: true, wantWhy: "broadcast"},
		{addr: "239.1.2.3", allow: everything, denied: true, wantWhy: "multicast"},
	}
	for _, tt := range tests {
		name := tt.addr
		if tt.allow != nil {
			name += " with exception"
		}
		t.Run(name, func(t *testing.T) {
			err := rules.check(netip.MustParseAddr(tt.addr), tt.allow)
			if !tt.denied {
				if err != nil {
					t.Fatalf("check(%s) = %v, want allowed", tt.addr, err)
				}
				return
			}
			if !errors.Is(err, ErrAddressNotAllowed) {
				t.Fatalf("check(%s) = %v, want ErrAddressNotAllowed", tt.addr, err)
			}
			if !strings.Contains(err.Error(), tt.wantWhy) || !strings.Contains(err.Error(), tt.addr) {
				t.Errorf("check(%s) message %q should name the address and contain %q", tt.addr, err, tt.wantWhy)
			}
		})
	}
}

// TestDialerControl checks the defence-in-depth hook on its own: whatever
// address reaches connect() is checked again.
func TestDialerControl(t *testing.T) {
	c := New(Options{})
	pol, err := Policy{}.compile()
	if err != nil {
		t.Fatal(err)
	}
	d := newDialer(c, pol)
	tests := []struct {
		network, address string
		wantErr          bool
	}{
		{"tcp4", "8.8.8.8:443", false},
		{"tcp6", "[2606:4700:4700::1111]:443", false},
		{"tcp4", "127.0.0.1:80", true},
		{"tcp6", "[::1]:80", true},
		{"tcp6", "[::ffff:169.254.169.254]:80", true},
		{"udp4", "8.8.8.8:53", true},
		{"tcp4", "not-an-address", true},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			err := d.control(context.Background(), tt.network, tt.address, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("control = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrAddressNotAllowed) {
				t.Errorf("control error %v is not ErrAddressNotAllowed", err)
			}
		})
	}
}
