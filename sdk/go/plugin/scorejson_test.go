package plugin

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func randomRequest(rng *rand.Rand) ScoreRequest {
	req := ScoreRequest{GuildID: "41771983423143937", From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 3, 8, 0, 0, 0, 123456789, time.UTC)}
	for i := range rng.IntN(20) {
		m := MemberStats{UserID: "8035111022467891" + string(rune('0'+i%10)), Bot: rng.IntN(5) == 0,
			AccountAgeDays: rng.Float64() * 3000, OnlineSeconds: rng.Int64N(1 << 40), MultiClientSeconds: rng.Int64N(1000),
			Messages: rng.Int64N(100), MessagesTotal: -rng.Int64N(3), Channels: rng.IntN(9), MaxMessagesPerMinute: rng.Int64N(9),
			RoleChanges: rng.Int64N(40)}
		if rng.IntN(2) == 0 {
			v := rng.Float64() * 1e-8
			m.JoinedDaysAgo = &v
		}
		if rng.IntN(2) == 0 {
			m.ByClient = map[string]int64{"desktop": rng.Int64N(100), "web": 0}
		}
		if rng.IntN(2) == 0 {
			v := rng.Int64N(1e9)
			m.SecondsSinceLastMessage = &v
		}
		if rng.IntN(2) == 0 {
			v := int64(0)
			m.FirstMessageAfterJoinSeconds = &v
		}
		if rng.IntN(2) == 0 {
			v := rng.Float64() * 1e22
			m.MessageIntervalCV = &v
		}
		for h := range m.ActiveHours {
			m.ActiveHours[h] = rng.Int64N(3)
		}
		req.Members = append(req.Members, m)
	}
	return req
}

// TestScoreRequestDecoderAgreesWithEncodingJSON decodes what the host sends
// with the hand-written decoder and with encoding/json.
func TestScoreRequestDecoderAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		in, err := json.Marshal(randomRequest(rng))
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 { // whitespace and unknown fields are allowed
			in = []byte(strings.ReplaceAll(strings.ReplaceAll(string(in), ",", " ,\n\t"), `{"user_id"`, `{ "future": {"a":[1,true,null,"x\"y"]}, "user_id"`))
		}
		var want, got ScoreRequest
		if err := json.Unmarshal(in, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeScoreRequest(in, &got); err != nil {
			t.Fatalf("%v\n%s", err, in)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("decoded differently\nencoding/json %+v\nhand-written  %+v", want, got)
		}
	}
	for _, bad := range []string{``, `{`, `{"members":[{"online_seconds":1.5}]}`, `{"guild_id":"a\q"}`, `{"from":"yesterday"}`, `{"members":[}`} {
		var r ScoreRequest
		if err := decodeScoreRequest([]byte(bad), &r); err == nil {
			t.Errorf("%q decoded without error", bad)
		}
	}
	var r ScoreRequest
	if err := decodeScoreRequest([]byte(`{"guild_id":"\u00e9\ud83d\ude00\n\"x"}`), &r); err != nil || r.GuildID != "é😀\n\"x" {
		t.Fatalf("escapes: %q %v", r.GuildID, err)
	}
}

// TestScoreResponseEncoderAgreesWithEncodingJSON encodes scores with the
// hand-written encoder and checks encoding/json reads back what it would
// have written itself.
func TestScoreResponseEncoderAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []any{nil, 1.5, int64(-3), 7, true, "x<y>&\"\\\n\x01é", 1e-9, 3e21, []string{"a"}, map[string]int{"k": 1}, float32(0.25)}
	for range 300 {
		var res ScoreResponse
		for range rng.IntN(10) {
			s := Score{UserID: "u\t1", Score: rng.Float64() * 100, Explanation: "Online 3.0 h — \xff ok"}
			for range rng.IntN(8) {
				s.Factors = append(s.Factors, Factor{Name: "f", Contribution: rng.NormFloat64() * 1e3, Value: values[rng.IntN(len(values))]})
			}
			res.Scores = append(res.Scores, s)
		}
		got, err := appendScoreResponse(nil, res)
		if err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(res)
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, got)
		}
		json.Unmarshal(std, &b) //nolint:errcheck // encoding/json's own output
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("encoded differently\nhand-written  %s\nencoding/json %s", got, std)
		}
	}
}

// TestScoreRequestBinaryRoundTrip encodes requests in the binary encoding
// and checks they decode to what the JSON path gives.
func TestScoreRequestBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		req := randomRequest(rng)
		for i := range req.Members {
			req.Members[i].UserID = "80351110224678912"
			for c, v := range req.Members[i].ByClient {
				if v == 0 {
					delete(req.Members[i].ByClient, c) // zero-time clients are left out
				}
			}
			if len(req.Members[i].ByClient) == 0 {
				req.Members[i].ByClient = nil
			}
		}
		req.From, req.To = req.From.Truncate(time.Millisecond), req.To.Truncate(time.Millisecond)
		if req.Members == nil {
			req.Members = []MemberStats{}
		}
		var got ScoreRequest
		if err := decodeScoreRequestBinary(AppendScoreRequestBinary(nil, req), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(req, got) {
			t.Fatalf("binary round trip\nsent %+v\ngot  %+v", req, got)
		}
	}
	good := AppendScoreRequestBinary(nil, ScoreRequest{GuildID: "1", Members: []MemberStats{{UserID: "2"}}})
	for _, bad := range [][]byte{good[:10], good[:len(good)-1], append([]byte("SWS2"), good[4:]...)} {
		var r ScoreRequest
		if err := decodeScoreRequestBinary(bad, &r); err == nil {
			t.Errorf("malformed input of %d bytes decoded", len(bad))
		}
	}
}

func TestAppendFactorsJSONMatchesEncodingJSON(t *testing.T) {
	if b, err := AppendFactorsJSON(nil, nil); err != nil || string(b) != "[]" {
		t.Fatalf("no factors: %s %v", b, err)
	}
	fs := []Factor{{Name: "multi_client", Contribution: 12.5, Value: 0.4}, {Name: "age \"days\"", Contribution: -3, Value: "new"},
		{Name: "none", Contribution: 1e-7}, {Name: "list", Contribution: 0, Value: []int{1, 2}}}
	got, err := AppendFactorsJSON(nil, fs)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(fs)
	if string(got) != string(want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := AppendFactorsJSON(nil, []Factor{{Name: "nan", Contribution: math.NaN()}}); err == nil {
		t.Fatal("NaN accepted")
	}
}

func TestDecodeScoreResponseMatchesEncodingJSON(t *testing.T) {
	in := `{"scores":[{"user_id":"80351110224678912","score":72.5,"factors":[{"name":"a","contribution":1.5,"value":0.25},
		{"name":"b\u00e9","contribution":-2,"value":"x"},{"name":"c","contribution":0,"value":[1,{"k":true}]},{"name":"d","contribution":3,"value":null,"extra":1}],
		"explanation":"why \"quoted\"","unknown":{"a":[1,2]}},{"user_id":"2","score":0,"factors":null,"explanation":""}],"other":1} `
	got, err := DecodeScoreResponse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var want ScoreResponse
	if err := json.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{``, `{`, `{"scores":[{"score":"high"}]}`, `{"scores":[]} x`, `[]`, `{"scores":[{"factors":[{"contribution":tru}]}]}`} {
		if _, err := DecodeScoreResponse([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
