package safehttp

import (
	"net/netip"
)

// addrRange is a block of addresses with the reason it is refused.
type addrRange struct {
	prefix netip.Prefix
	why    string
}

// addrRules decides which addresses may be dialled. It is built once per
// Client (no package globals) and only read afterwards.
type addrRules struct {
	// always lists addresses that no AllowPrivate exception unlocks: cloud
	// metadata endpoints hand out credentials, and unspecified, broadcast
	// and multicast addresses are never a legitimate webhook target.
	always []addrRange
	// denied lists non-public ranges that AllowPrivate may open up.
	denied []addrRange
	// nat64 and sixToFour embed an IPv4 address that is checked in turn.
	nat64     netip.Prefix
	sixToFour netip.Prefix
}

func newAddrRules() addrRules {
	r := func(s, why string) addrRange { return addrRange{netip.MustParsePrefix(s), why} }
	return addrRules{
		always: []addrRange{
			r("169.254.169.254/32", "cloud metadata endpoint"),
			r("169.254.170.2/32", "cloud metadata endpoint (ECS)"),
			r("100.100.100.200/32", "cloud metadata endpoint (Alibaba)"),
			r("fd00:ec2::254/128", "cloud metadata endpoint (AWS IPv6)"),
			r("0.0.0.0/32", "unspecified"),
			r("::/128", "unspecified"),
			r("255.255.255.255/32", "broadcast"),
			r("224.0.0.0/4", "multicast"),
			r("ff00::/8", "multicast"),
		},
		// First match wins, so narrower, better-named blocks come first.
		denied: []addrRange{
			r("0.0.0.0/8", "\"this network\""),
			r("10.0.0.0/8", "private"),
			r("100.64.0.0/10", "carrier-grade NAT"),
			r("127.0.0.0/8", "loopback"),
			r("169.254.0.0/16", "link-local"),
			r("172.16.0.0/12", "private"),
			r("192.0.0.0/24", "IETF protocol assignments"),
			r("192.0.2.0/24", "documentation"),
			r("192.88.99.0/24", "6to4 relay anycast"),
			r("192.168.0.0/16", "private"),
			r("198.18.0.0/15", "benchmarking"),
			r("198.51.100.0/24", "documentation"),
			r("203.0.113.0/24", "documentation"),
			r("240.0.0.0/4", "reserved"),
			r("::1/128", "loopback"),
			r("::/96", "IPv4-compatible (deprecated)"),
			r("::ffff:0:0:0/96", "IPv4-translated"),
			r("64:ff9b:1::/48", "local-use NAT64"),
			r("100::/64", "discard-only"),
			r("2001::/32", "Teredo"),
			r("2001:2::/48", "benchmarking"),
			r("2001::/23", "IETF protocol assignments"),
			r("2001:db8::/32", "documentation"),
			r("3fff::/20", "documentation"),
			r("5f00::/16", "SRv6 SIDs"),
			r("fc00::/7", "unique local (private)"),
			r("fe80::/10", "link-local"),
			r("fec0::/10", "site-local (deprecated)"),
		},
		nat64:     netip.MustParsePrefix("64:ff9b::/96"),
		sixToFour: netip.MustParsePrefix("2002::/16"),
	}
}

// check returns nil if a may be dialled under the given exceptions, or an
// ErrAddressNotAllowed failure naming the address and the reason.
func (r *addrRules) check(a netip.Addr, allow []netip.Prefix) error {
	if why, denied := r.verdict(a, allow); denied {
		return fail(ErrAddressNotAllowed, nil, "address %s is not allowed (%s)", a, why)
	}
	return nil
}

// verdict reports whether a is refused under the given exceptions and why.
func (r *addrRules) verdict(a netip.Addr, allow []netip.Prefix) (string, bool) {
	if !a.IsValid() {
		return "invalid address", true
	}
	// Unmap so that ::ffff:127.0.0.1 is judged (and excepted) as 127.0.0.1:
	// the kernel connects it to the IPv4 address.
	plain := a.WithZone("").Unmap()
	if why, ok := match(r.always, plain); ok {
		return why + ", never reachable from plugins", true
	}
	for _, p := range allow {
		if p.Contains(plain) {
			return "", false
		}
	}
	return r.deniedWhy(plain)
}

// deniedWhy reports whether a (already unmapped) is non-public and why.
func (r *addrRules) deniedWhy(a netip.Addr) (string, bool) {
	if why, ok := match(r.always, a); ok {
		return why, true
	}
	if why, ok := match(r.denied, a); ok {
		return why, true
	}
	if a.Is6() {
		// NAT64 and 6to4 gateways forward to the embedded IPv4 address, so
		// 64:ff9b::7f00:1 reaches 127.0.0.1 where such a gateway exists.
		b := a.As16()
		var v4 netip.Addr
		var kind string
		switch {
		case r.nat64.Contains(a):
			v4, kind = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), "NAT64"
		case r.sixToFour.Contains(a):
			v4, kind = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), "6to4"
		}
		if v4.IsValid() {
			if why, ok := r.deniedWhy(v4); ok {
				return kind + " form of " + v4.String() + ", " + why, true
			}
		}
	}
	// A backstop for anything the table misses.
	if !a.IsGlobalUnicast() {
		return "not a global unicast address", true
	}
	return "", false
}

func match(ranges []addrRange, a netip.Addr) (string, bool) {
	for _, r := range ranges {
		if r.prefix.Contains(a) {
			return r.why + " " + r.prefix.String(), true
		}
	}
	return "", false
}
