// Package safehttp is the host's outbound HTTP client for untrusted plugins:
// it fetches only http(s) URLs whose host is on a per-call allow-list and
// never connects to loopback, private, link-local, metadata or other
// non-public addresses, so a plugin cannot use the host for server-side
// request forgery.
//
// Why the checks are where they are:
//
//   - The allow-list is checked on the URL of every hop (the first request
//     and each redirect), because a redirect is just a new URL chosen by a
//     server the plugin may control.
//   - The address check runs on the address actually dialled: names are
//     resolved inside the dialer, only addresses that pass are dialled, and
//     a net.Dialer Control hook re-checks the socket address. A name that
//     answers "public" once and "127.0.0.1" later (DNS rebinding) gains
//     nothing, because no earlier answer is reused.
//   - Every call gets its own transport with keep-alives off. Policies differ
//     per guild (AllowPrivate), so a pooled connection opened under one
//     policy must never serve a request made under another.
//   - Proxies from the environment are ignored: a proxy would dial on our
//     behalf, out of reach of the address check.
//
// Errors match one of the Err* sentinels with errors.Is and name the host or
// address involved, never the full URL: webhook URLs carry secrets in their
// path.
package safehttp
