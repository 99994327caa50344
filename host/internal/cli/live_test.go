package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/spywatcher/spywatcher/host/internal/store/storetest"
)

// TestTwoHostsShareTheLiveStream runs two `serve` instances on one
// PostgreSQL and one Redis, with a WebSocket client on each: an event
// ingested through either host reaches both clients, and a ticket issued by
// one host opens a stream on the other.
func TestTwoHostsShareTheLiveStream(t *testing.T) {
	pg, rd := os.Getenv(storetest.PostgresEnv), os.Getenv("SPYWATCHER_TEST_REDIS_URL")
	if pg == "" || rd == "" {
		t.Skip(storetest.PostgresEnv + " or SPYWATCHER_TEST_REDIS_URL unset: the two-host live stream test is skipped")
	}
	dsn := storetest.PostgresDSN(t, pg)
	const admin = "two-hosts-admin-token-0123456789"
	const guild = "81384788765712384"
	ctx, cancel := context.WithCancel(context.Background())
	start := func() (addr string, done chan int, logs *syncBuffer) {
		addr = freeAddr(t)
		done, logs = make(chan int, 1), &syncBuffer{}
		go func() {
			done <- Run(ctx, []string{"serve", "--addr", addr, "--data-dir", t.TempDir(), "--database-url", dsn,
				"--redis-url", rd, "--admin-token", admin}, Env{Stdout: logs, Stderr: logs, Getenv: func(string) string { return "" }})
		}()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return addr, done, logs
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("host %s not ready:\n%s", addr, logs)
			}
		}
	}
	a, doneA, _ := start()
	b, doneB, _ := start() // after a: a has migrated the database
	defer func() {
		cancel()
		<-doneA
		<-doneB
	}()

	call := func(method, addr, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		var buf [4096]byte
		for {
			n, err := resp.Body.Read(buf[:])
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, sb.String()
	}
	type msg struct {
		Type, ID, Kind, Scope string
		Data                  json.RawMessage
	}
	type client struct {
		c   *websocket.Conn
		buf []msg
	}
	next := func(c *client) msg {
		for len(c.buf) == 0 {
			rctx, rcancel := context.WithTimeout(ctx, 20*time.Second) // against a hang only
			_, data, err := c.c.Read(rctx)
			rcancel()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := json.Unmarshal(data, &c.buf); err != nil {
				t.Fatal(err)
			}
		}
		m := c.buf[0]
		c.buf = c.buf[1:]
		return m
	}
	open := func(url string, hdr http.Header) *client {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		cl := &client{c: c}
		if m := next(cl); m.Type != "hello" {
			t.Fatalf("first message %+v", m)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","guild_id":"`+guild+`"}`)); err != nil {
			t.Fatal(err)
		}
		if m := next(cl); m.Type != "subscribed" || m.Scope != "full" {
			t.Fatalf("subscribe: %+v", m)
		}
		return cl
	}
	auth := http.Header{"Authorization": {"Bearer " + admin}}
	ca, cb := open("ws://"+a+"/api/v1/ws", auth), open("ws://"+b+"/api/v1/ws", auth)

	// A new guild collects nothing until an admin chooses what.
	if code, body := call("PUT", a, "/api/v1/guilds/"+guild+"/settings", `{"tracking":{"presence":true,"messages":true,"typing":true,"voice":true,"members":true}}`); code != http.StatusOK {
		t.Fatalf("settings: %d %s", code, body)
	}
	for i, host := range []string{a, b} {
		id := fmt.Sprintf("two-hosts-%d-%d", time.Now().UnixNano(), i)
		ev := fmt.Sprintf(`{"id":%q,"kind":"message.create","guild_id":%q,"user_id":"80351110224678912","channel_id":"81384788765712385","at":%q,"data":{"message_id":"1100000000000000%03d","content":"private words","length":13}}`,
			id, guild, time.Now().UTC().Format(time.RFC3339Nano), i)
		if code, body := call("POST", host, "/api/v1/events", ev); code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("ingest on %s: %d %s", host, code, body)
		}
		for j, c := range []*client{ca, cb} {
			for {
				m := next(c)
				if m.ID != id {
					continue
				}
				if m.Kind != "message.create" || strings.Contains(string(m.Data), "private") {
					t.Errorf("client %d got %+v", j, m)
				}
				break
			}
		}
	}

	code, body := call("POST", a, "/api/v1/ws/ticket", "")
	var tk struct{ Ticket, URL string }
	if err := json.Unmarshal([]byte(body), &tk); code != 200 || err != nil || tk.Ticket == "" {
		t.Fatalf("ticket: %d %s", code, body)
	}
	open("ws://"+b+tk.URL, nil)
	if _, resp, err := websocket.Dial(ctx, "ws://"+a+tk.URL, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a used ticket opened a stream: %v", err)
	}
}
