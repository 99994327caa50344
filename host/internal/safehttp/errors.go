package safehttp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error Do returns for a refused or failed request
// matches one of these with errors.Is (or wraps a context or network error),
// so the plugin host can map them to stable codes for plugin authors.
var (
	// ErrInvalidPolicy means the Policy itself is malformed (a bad
	// allow-list entry, a negative limit, an invalid prefix).
	ErrInvalidPolicy = errors.New("safehttp: invalid policy")
	// ErrInvalidRequest means the request cannot be sent as given: an
	// unparsable URL, credentials in the URL, a bad or reserved header.
	ErrInvalidRequest = errors.New("safehttp: invalid request")
	// ErrMethod means the method is not one of GET, POST, PUT, PATCH,
	// DELETE, HEAD.
	ErrMethod = errors.New("safehttp: method not allowed")
	// ErrScheme means the URL (or a redirect target) is not http or https.
	ErrScheme = errors.New("safehttp: scheme not allowed")
	// ErrHostNotAllowed means the host and port are not on the allow-list.
	ErrHostNotAllowed = errors.New("safehttp: host not allowed")
	// ErrAddressNotAllowed means the host resolved only to addresses that
	// may not be reached (loopback, private, metadata, ...).
	ErrAddressNotAllowed = errors.New("safehttp: address not allowed")
	// ErrLookup means the host name could not be resolved.
	ErrLookup = errors.New("safehttp: host lookup failed")
	// ErrTooManyRedirects means the redirect limit was reached.
	ErrTooManyRedirects = errors.New("safehttp: too many redirects")
	// ErrRequestTooLarge means the request body or headers exceed a limit.
	ErrRequestTooLarge = errors.New("safehttp: request too large")
	// ErrResponseTooLarge means the response body exceeds the limit and the
	// policy asked for an error rather than truncation.
	ErrResponseTooLarge = errors.New("safehttp: response too large")
	// ErrTimeout means the request did not complete in time (the policy's
	// timeout, the caller's deadline, or the dial/TLS handshake timeout).
	ErrTimeout = errors.New("safehttp: timeout")
)

// failure is an error whose message is written for a plugin author and
// which matches a sentinel (kind) and, optionally, an underlying cause.
// It keeps messages readable: the sentinel's own text is not repeated.
type failure struct {
	kind  error
	msg   string
	cause error
}

func (f *failure) Error() string {
	if f.cause != nil {
		return f.msg + ": " + f.cause.Error()
	}
	return f.msg
}

func (f *failure) Unwrap() []error {
	if f.cause != nil {
		return []error{f.kind, f.cause}
	}
	return []error{f.kind}
}

// fail builds a failure of the given kind with a formatted message.
func fail(kind, cause error, format string, args ...any) error {
	return &failure{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}
