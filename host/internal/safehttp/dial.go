package safehttp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// Resolver looks up the addresses of a host name. *net.Resolver satisfies
// it; tests supply a fake so names resolve to chosen addresses without DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// dialer resolves and dials for one call, refusing addresses the call's
// policy does not allow.
type dialer struct {
	resolver Resolver
	rules    *addrRules
	allow    []netip.Prefix
	net      net.Dialer
}

func newDialer(c *Client, p *policy) *dialer {
	d := &dialer{resolver: c.opts.Resolver, rules: &c.rules, allow: p.allowPrivate}
	d.net = net.Dialer{Timeout: c.opts.DialTimeout, ControlContext: d.control}
	return d
}

// dialContext resolves the host itself and dials only checked addresses,
// so the address that was checked is the address that is connected.
func (d *dialer) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fail(ErrInvalidRequest, err, "dial address %q", address)
	}
	var addrs []netip.Addr
	literal := false
	if a, err := netip.ParseAddr(host); err == nil {
		addrs, literal = []netip.Addr{a}, true
	} else {
		addrs, err = d.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fail(ErrLookup, err, "resolve host %q", host)
		}
		if len(addrs) == 0 {
			return nil, fail(ErrLookup, nil, "resolve host %q: no addresses", host)
		}
	}
	var allowed []netip.Addr
	var denied []string
	for _, a := range addrs {
		if why, bad := d.rules.verdict(a, d.allow); bad {
			denied = append(denied, a.String()+" ("+why+")")
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		if literal {
			return nil, d.rules.check(addrs[0], d.allow)
		}
		return nil, fail(ErrAddressNotAllowed, nil, "host %q resolves only to addresses that are not allowed: %s", host, strings.Join(denied, "; "))
	}
	var lastErr error
	for _, a := range allowed {
		conn, err := d.net.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// control re-checks the socket address just before connect. dialContext
// already dials only checked IPs; this keeps the guarantee if that code
// ever changes to dial a name.
func (d *dialer) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fail(ErrAddressNotAllowed, nil, "network %q is not allowed", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fail(ErrAddressNotAllowed, err, "dial address %q", address)
	}
	return d.rules.check(ap.Addr(), d.allow)
}
