package plugin

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestHTTPCodecAgreesWithEncodingJSON: the hand-written http hook codec
// reads what encoding/json writes (the host's side) and writes what it reads.
func TestHTTPCodecAgreesWithEncodingJSON(t *testing.T) {
	reqs := []Request{
		{Method: "GET", Path: "/"},
		{Method: "POST", Path: "/rules/é\"x\\", Query: map[string][]string{"a": {"1", "2"}, "q": {"<&>"}},
			Headers: map[string]string{"Content-Type": "application/json", "X-Odd": "tab\there"},
			Body:    []byte("{\"hello\":\"wörld\"}\x00\xff"), Caller: "user:42"},
	}
	for _, want := range reqs {
		b, _ := json.Marshal(want)
		var got Request
		if err := decodeRequest(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decoded %s\n got %+v\nwant %+v", b, got, want)
		}
	}
	for _, bad := range []string{``, `{`, `{"method":1}`, `{"body":"***"}`, `{"method":"GET"} x`, `[]`} {
		var r Request
		if err := decodeRequest([]byte(bad), &r); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, res := range []Response{
		{Status: 204},
		{Status: 200, Headers: map[string]string{"Content-Type": "text/plain; charset=\"utf-8\"", "B": "é"}, Body: []byte("hi\n\x00\xfe")},
	} {
		out := appendResponse(nil, &res)
		var got Response
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if !reflect.DeepEqual(got, res) {
			t.Errorf("%s\n got %+v\nwant %+v", out, got, res)
		}
	}
}
