// Package wsproto is the server side of the WebSocket protocol (RFC 6455),
// as much of it as the live stream needs: the opening handshake on a
// hijacked HTTP/1.1 connection, a reader that turns the client's masked
// frames into messages and control frames, and server frames encoded as
// plain bytes.
//
// Why not a WebSocket library: a server frame is unmasked, so the same
// bytes can be written to every subscriber of a guild, and the hub writes
// them with non-blocking system calls from a few sweeper goroutines
// instead of a writer goroutine and a library call per connection (see
// package ws and BENCHMARKS.md, "Live stream fan-out"). A library owns the
// socket's writes behind its own lock and API, which rules that out. What
// is left to do here is small and fully specified: no extensions
// (compression is not negotiated), no subprotocols, messages from the
// client of a few kilobytes. The tests check it against an independent
// client implementation (github.com/coder/websocket) and fuzz the reader.
package wsproto

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Opcodes.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close status codes (RFC 6455 section 7.4.1).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005 // received only: the close frame had no code
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseTooBig          = 1009
	CloseInternalError   = 1011
)

// MaxHeader is the longest server frame header.
const MaxHeader = 10

// HandshakeError is a request that cannot be upgraded: answer it with
// Status (and Header) and Message.
type HandshakeError struct {
	Status  int
	Message string
	Header  http.Header
}

func (e *HandshakeError) Error() string { return e.Message }

// Check tells whether r is a WebSocket opening handshake this server
// accepts (RFC 6455 section 4.2.1).
func Check(r *http.Request) error {
	if r.Method != http.MethodGet {
		return &HandshakeError{Status: http.StatusMethodNotAllowed, Message: "a WebSocket handshake is a GET request", Header: http.Header{"Allow": {"GET"}}}
	}
	if !r.ProtoAtLeast(1, 1) || r.ProtoMajor != 1 {
		return &HandshakeError{Status: http.StatusHTTPVersionNotSupported, Message: "WebSocket needs HTTP/1.1"}
	}
	if !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		return &HandshakeError{Status: http.StatusUpgradeRequired, Message: "this is a WebSocket endpoint: send Connection: Upgrade and Upgrade: websocket",
			Header: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}}
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return &HandshakeError{Status: http.StatusUpgradeRequired, Message: "unsupported Sec-WebSocket-Version: only 13",
			Header: http.Header{"Sec-WebSocket-Version": {"13"}}}
	}
	if k, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key")); err != nil || len(k) != 16 {
		return &HandshakeError{Status: http.StatusBadRequest, Message: "Sec-WebSocket-Key must be 16 bytes in base64"}
	}
	return nil
}

// hasToken: one of the comma-separated values of header name is token.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// AcceptKey is the Sec-WebSocket-Accept answer to a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Accept completes the handshake of a request that passed Check: it
// hijacks the connection and answers 101 Switching Protocols. The reader
// holds whatever the client sent after its request; the connection is
// the caller's to write and close.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.Reader, error) {
	if err := Check(r); err != nil {
		return nil, nil, err
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("wsproto: hijack: %w", err)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		AcceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
	if _, err := io.WriteString(nc, resp); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("wsproto: handshake: %w", err)
	}
	return nc, brw.Reader, nil
}

// HeaderLen is the length of a server frame header for n payload bytes.
func HeaderLen(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// putHeader writes a final, unmasked frame header into b (HeaderLen(n)
// bytes).
func putHeader(b []byte, op byte, n int) {
	b[0] = 0x80 | op
	switch len(b) {
	case 2:
		b[1] = byte(n)
	case 4:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
}

// Frame turns buf, MaxHeader bytes of room followed by a payload, into one
// server frame: the header goes into the room right before the payload,
// and the frame is returned (a subslice of buf). Building the payload after
// the room spares a copy.
func Frame(buf []byte, op byte) []byte {
	n := len(buf) - MaxHeader
	h := HeaderLen(n)
	f := buf[MaxHeader-h:]
	putHeader(f[:h], op, n)
	return f
}

// AppendFrame appends one server frame with payload p to dst.
func AppendFrame(dst []byte, op byte, p []byte) []byte {
	h := HeaderLen(len(p))
	dst = append(dst, make([]byte, h)...)
	putHeader(dst[len(dst)-h:], op, len(p))
	return append(dst, p...)
}

// CloseFrame is a close frame with code and reason; the reason is cut to
// fit a control frame (123 bytes), at a character boundary.
func CloseFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	return AppendFrame(nil, OpClose, append(p, reason...))
}

// ProtocolError is a client that broke the protocol: close the connection
// with Code.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code)
}

func protoErr(code int, format string, args ...any) error {
	return &ProtocolError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Reader reads a client's frames.
type Reader struct {
	r     *bufio.Reader
	limit int
	msg   []byte // the data message being assembled
	op    byte   // its opcode, 0 when none is open
	ctl   [125]byte
}

// NewReader reads frames from r; a data message longer than limit bytes
// is a CloseTooBig error.
func NewReader(r *bufio.Reader, limit int) *Reader {
	return &Reader{r: r, limit: limit}
}

// Next returns the next control frame (ping, pong, close) or complete data
// message (text, binary; fragments are joined). The payload is valid until
// the next call. A text message is valid UTF-8. Errors are the
// connection's (io.EOF and the like) or a *ProtocolError to close with.
func (rd *Reader) Next() (op byte, payload []byte, err error) {
	for {
		var h [14]byte
		if _, err := io.ReadFull(rd.r, h[:2]); err != nil {
			return 0, nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0F
		if h[0]&0x70 != 0 {
			return 0, nil, protoErr(CloseProtocolError, "reserved bits set (no extension was negotiated)")
		}
		if h[1]&0x80 == 0 {
			return 0, nil, protoErr(CloseProtocolError, "client frames must be masked")
		}
		n := uint64(h[1] & 0x7F)
		ext := 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		if _, err := io.ReadFull(rd.r, h[2:2+ext+4]); err != nil {
			return 0, nil, err
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(h[2:4]))
		case 8:
			n = binary.BigEndian.Uint64(h[2:10])
			if n>>63 != 0 {
				return 0, nil, protoErr(CloseProtocolError, "frame length out of range")
			}
		}
		key := h[2+ext : 2+ext+4]
		switch op {
		case OpClose, OpPing, OpPong:
			if !fin || n > 125 {
				return 0, nil, protoErr(CloseProtocolError, "control frames must be final and at most 125 bytes")
			}
			p := rd.ctl[:n]
			if _, err := io.ReadFull(rd.r, p); err != nil {
				return 0, nil, err
			}
			unmask(p, key)
			if op == OpClose {
				if err := checkClose(p); err != nil {
					return 0, nil, err
				}
			}
			return op, p, nil
		case OpText, OpBinary:
			if rd.op != 0 {
				return 0, nil, protoErr(CloseProtocolError, "new message before the previous one's last fragment")
			}
			rd.op, rd.msg = op, rd.msg[:0]
		case OpContinuation:
			if rd.op == 0 {
				return 0, nil, protoErr(CloseProtocolError, "continuation frame outside a message")
			}
		default:
			return 0, nil, protoErr(CloseProtocolError, "unknown opcode %d", op)
		}
		if n > uint64(rd.limit-len(rd.msg)) {
			return 0, nil, protoErr(CloseTooBig, "message longer than %d bytes", rd.limit)
		}
		start := len(rd.msg)
		rd.msg = append(rd.msg, make([]byte, n)...)
		if _, err := io.ReadFull(rd.r, rd.msg[start:]); err != nil {
			return 0, nil, err
		}
		unmask(rd.msg[start:], key)
		if !fin {
			continue
		}
		op, rd.op = rd.op, 0
		if op == OpText && !utf8.Valid(rd.msg) {
			return 0, nil, protoErr(CloseInvalidPayload, "text message is not valid UTF-8")
		}
		return op, rd.msg, nil
	}
}

// unmask applies a frame's masking key to its payload.
func unmask(p, key []byte) {
	for i := range p {
		p[i] ^= key[i&3]
	}
}

// checkClose validates a close frame's payload: empty, or a code a peer
// may send followed by a UTF-8 reason.
func checkClose(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if len(p) == 1 {
		return protoErr(CloseProtocolError, "close frame with a one-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	valid := (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999)
	if !valid {
		return protoErr(CloseProtocolError, "close code %d may not be sent", code)
	}
	if !utf8.Valid(p[2:]) {
		return protoErr(CloseInvalidPayload, "close reason is not valid UTF-8")
	}
	return nil
}

// CloseCode is the code of a close frame's payload (CloseNoStatus when it
// has none) and its reason.
func CloseCode(p []byte) (int, string) {
	if len(p) < 2 {
		return CloseNoStatus, ""
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:])
}
