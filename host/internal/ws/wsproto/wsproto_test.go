package wsproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// clientFrame is a masked client frame.
func clientFrame(fin bool, op byte, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f := []byte{b0}
	switch n := len(p); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xFFFF:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, key[:]...)
	for i, c := range p {
		f = append(f, c^key[i&3])
	}
	return f
}

func reader(b ...[]byte) *Reader {
	return NewReader(bufio.NewReader(bytes.NewReader(bytes.Join(b, nil))), 4096)
}

func TestReaderMessages(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300) // a 16-bit length
	rd := reader(
		clientFrame(true, OpText, []byte(`{"type":"subscribe"}`)),
		clientFrame(false, OpText, []byte("hel")),
		clientFrame(true, OpPing, []byte("p")), // control frames may come between fragments
		clientFrame(false, OpContinuation, []byte("lo ")),
		clientFrame(true, OpContinuation, []byte("wörld")),
		clientFrame(true, OpBinary, long),
		clientFrame(true, OpPong, nil),
		clientFrame(true, OpClose, append([]byte{0x03, 0xe8}, "bye"...)),
	)
	want := []struct {
		op byte
		p  string
	}{{OpText, `{"type":"subscribe"}`}, {OpPing, "p"}, {OpText, "hello wörld"}, {OpBinary, string(long)}, {OpPong, ""}, {OpClose, "\x03\xe8bye"}}
	for _, w := range want {
		op, p, err := rd.Next()
		if err != nil || op != w.op || string(p) != w.p {
			t.Fatalf("got %d %q %v, want %d %q", op, p, err, w.op, w.p)
		}
		if op == OpClose {
			if code, reason := CloseCode(p); code != CloseNormal || reason != "bye" {
				t.Fatalf("close %d %q", code, reason)
			}
		}
	}
	if _, _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
}

func TestReaderProtocolErrors(t *testing.T) {
	unmasked := clientFrame(true, OpText, []byte("hi"))
	unmasked[1] &^= 0x80
	rsv := clientFrame(true, OpText, []byte("hi"))
	rsv[0] |= 0x40
	for _, tc := range []struct {
		name   string
		frames [][]byte
		code   int
	}{
		{"unmasked", [][]byte{unmasked}, CloseProtocolError},
		{"reserved bits", [][]byte{rsv}, CloseProtocolError},
		{"unknown opcode", [][]byte{clientFrame(true, 0x3, nil)}, CloseProtocolError},
		{"fragmented control frame", [][]byte{clientFrame(false, OpPing, nil)}, CloseProtocolError},
		{"long control frame", [][]byte{clientFrame(true, OpPing, make([]byte, 126))}, CloseProtocolError},
		{"continuation first", [][]byte{clientFrame(true, OpContinuation, []byte("x"))}, CloseProtocolError},
		{"new message mid-message", [][]byte{clientFrame(false, OpText, []byte("a")), clientFrame(true, OpText, []byte("b"))}, CloseProtocolError},
		{"too big", [][]byte{clientFrame(true, OpText, make([]byte, 4097))}, CloseTooBig},
		{"too big in fragments", [][]byte{clientFrame(false, OpText, make([]byte, 3000)), clientFrame(true, OpContinuation, make([]byte, 1097))}, CloseTooBig},
		{"invalid UTF-8", [][]byte{clientFrame(true, OpText, []byte{0xff, 0xfe})}, CloseInvalidPayload},
		{"one-byte close", [][]byte{clientFrame(true, OpClose, []byte{3})}, CloseProtocolError},
		{"reserved close code", [][]byte{clientFrame(true, OpClose, []byte{0x03, 0xed})}, CloseProtocolError}, // 1005
		{"close reason not UTF-8", [][]byte{clientFrame(true, OpClose, []byte{0x03, 0xe8, 0xff})}, CloseInvalidPayload},
	} {
		_, _, err := reader(tc.frames...).Next()
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%s: %v, want close code %d", tc.name, err, tc.code)
		}
	}
	// A frame cut short is the connection's error, not a protocol one.
	f := clientFrame(true, OpText, []byte("hello"))
	if _, _, err := reader(f[:len(f)-2]).Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v", err)
	}
}

func TestServerFrames(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xFFFF, 0x10000} {
		p := bytes.Repeat([]byte{'a'}, n)
		buf := append(make([]byte, MaxHeader), p...)
		f := Frame(buf, OpText)
		if !bytes.Equal(f, AppendFrame(nil, OpText, p)) {
			t.Fatalf("%d bytes: Frame and AppendFrame differ", n)
		}
		if len(f) != HeaderLen(n)+n || f[0] != 0x81 || f[1]&0x80 != 0 {
			t.Fatalf("%d bytes: header % x", n, f[:HeaderLen(n)])
		}
		// Read back as a client would (server frames are unmasked).
		var got int
		switch l := f[1]; {
		case l <= 125:
			got = int(l)
		case l == 126:
			got = int(binary.BigEndian.Uint16(f[2:]))
		default:
			got = int(binary.BigEndian.Uint64(f[2:]))
		}
		if got != n {
			t.Fatalf("%d bytes: length field says %d", n, got)
		}
	}
	long := strings.Repeat("é", 100) // 200 bytes: cut at a character boundary
	f := CloseFrame(4008, long)
	if len(f) != 2+2+122 || f[0] != 0x88 { // header, code, 61 characters
		t.Fatalf("close frame of %d bytes: % x", len(f), f[:2])
	}
	code, reason := CloseCode(f[2:])
	if code != 4008 || !strings.HasPrefix(long, reason) || len(reason) != 122 {
		t.Fatalf("close %d %q", code, reason)
	}
}

func TestHandshake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := Check(r); err != nil {
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Errorf("Check: %T %v", err, err)
			}
			for k, v := range he.Header {
				w.Header()[k] = v
			}
			http.Error(w, he.Message, he.Status)
			return
		}
		nc, br, err := Accept(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		// Echo one message, then close.
		op, p, err := NewReader(br, 1024).Next()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = nc.Write(AppendFrame(nil, op, p))
		_, _ = nc.Write(CloseFrame(CloseNormal, ""))
	}))
	defer srv.Close()

	good := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		r.Header.Set("Connection", "keep-alive, Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		return r
	}
	for _, tc := range []struct {
		name   string
		edit   func(*http.Request)
		status int
		header string
	}{
		{"not an upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, http.StatusUpgradeRequired, "Upgrade"},
		{"old version", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"bad key", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "c2hvcnQ=") }, http.StatusBadRequest, ""},
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }, http.StatusMethodNotAllowed, "Allow"},
	} {
		r := good()
		tc.edit(r)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.header != "" && resp.Header.Get(tc.header) == "") {
			t.Errorf("%s: %s %v", tc.name, resp.Status, resp.Header)
		}
	}

	// The RFC's own example: the key above is answered with this accept.
	if AcceptKey("dGhlIHNhbXBsZSBub25jZQ==") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatal("accept key")
	}
	resp, err := http.DefaultClient.Do(good())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade: %s %v", resp.Status, resp.Header)
	}
	rw, ok := resp.Body.(io.ReadWriter)
	if !ok {
		t.Fatalf("101 body is %T, not the connection", resp.Body)
	}
	if _, err := rw.Write(clientFrame(true, OpText, []byte("echo me"))); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rw)
	want := append(AppendFrame(nil, OpText, []byte("echo me")), CloseFrame(CloseNormal, "")...)
	if !bytes.Equal(got, want) {
		t.Fatalf("echo: % x, want % x", got, want)
	}
}

// FuzzReader: any bytes give messages or an error, never a panic, a
// payload over the limit or a text message that is not UTF-8.
func FuzzReader(f *testing.F) {
	f.Add(clientFrame(true, OpText, []byte(`{"type":"subscribe","guild_id":"1"}`)))
	f.Add(append(clientFrame(false, OpText, []byte("a")), clientFrame(true, OpContinuation, []byte("b"))...))
	f.Add(clientFrame(true, OpClose, []byte{0x03, 0xe8}))
	f.Add(clientFrame(true, OpBinary, make([]byte, 200)))
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := NewReader(bufio.NewReader(bytes.NewReader(b)), 256)
		for range 64 {
			op, p, err := rd.Next()
			if err != nil {
				return
			}
			if len(p) > 256 {
				t.Fatalf("payload of %d bytes over the limit", len(p))
			}
			if op == OpText && !isUTF8(p) {
				t.Fatalf("text message not UTF-8: %q", p)
			}
		}
	})
}

func isUTF8(p []byte) bool { return strings.ToValidUTF8(string(p), "\uFFFD") == string(p) }
