package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The score hook's JSON is read and written by hand rather than through
// encoding/json: inside WebAssembly, reflection-based decoding of a batch of
// member statistics cost ~20× more than the scoring itself (BENCHMARKS.md,
// "Scoring"). The wire format is unchanged — plain JSON any language reads —
// and a test checks both paths agree.

// decodeScoreRequest parses the score hook's input into req.
func decodeScoreRequest(b []byte, req *ScoreRequest) error {
	r := jreader{b: b}
	err := r.object(func(key []byte) error {
		switch string(key) {
		case "guild_id":
			s, err := r.str()
			req.GuildID = s
			return err
		case "from", "to":
			s, err := r.str()
			if err != nil {
				return err
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return err
			}
			if key[0] == 'f' {
				req.From = t
			} else {
				req.To = t
			}
			return nil
		case "members":
			if r.null() {
				return nil
			}
			// A member's JSON is 300 to 500 bytes: sizing the slice from
			// the input saves growing (and copying) it a dozen times.
			req.Members = make([]MemberStats, 0, len(b)/300+1)
			var sl slab
			return r.array(func() error {
				req.Members = append(req.Members, MemberStats{})
				return decodeMemberStats(&r, &req.Members[len(req.Members)-1], &sl)
			})
		}
		return r.skip()
	})
	if err != nil {
		return fmt.Errorf("plugin: score input at byte %d: %w", r.i, err)
	}
	return nil
}

// slab hands out the optional fields' values from chunks, one allocation
// for many members rather than one per field (inside WebAssembly every
// allocation is dear). Chunks are never reallocated, so pointers stay valid.
type slab struct {
	f []float64
	i []int64
}

func (s *slab) float(v float64) *float64 {
	if len(s.f) == cap(s.f) {
		s.f = make([]float64, 0, 256)
	}
	s.f = append(s.f, v)
	return &s.f[len(s.f)-1]
}

func (s *slab) int(v int64) *int64 {
	if len(s.i) == cap(s.i) {
		s.i = make([]int64, 0, 256)
	}
	s.i = append(s.i, v)
	return &s.i[len(s.i)-1]
}

func decodeMemberStats(r *jreader, m *MemberStats, sl *slab) error {
	return r.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "user_id":
			m.UserID, err = r.str()
		case "bot":
			m.Bot, err = r.boolean()
		case "account_age_days":
			m.AccountAgeDays, err = r.float()
		case "joined_days_ago":
			if !r.null() {
				var v float64
				v, err = r.float()
				m.JoinedDaysAgo = sl.float(v)
			}
		case "online_seconds":
			m.OnlineSeconds, err = r.int()
		case "by_client":
			if r.null() {
				return nil
			}
			m.ByClient = map[string]int64{}
			err = r.object(func(k []byte) error {
				v, err := r.int()
				m.ByClient[string(k)] = v
				return err
			})
		case "multi_client_seconds":
			m.MultiClientSeconds, err = r.int()
		case "messages":
			m.Messages, err = r.int()
		case "messages_total":
			m.MessagesTotal, err = r.int()
		case "seconds_since_last_message":
			if !r.null() {
				var v int64
				v, err = r.int()
				m.SecondsSinceLastMessage = sl.int(v)
			}
		case "first_message_after_join_seconds":
			if !r.null() {
				var v int64
				v, err = r.int()
				m.FirstMessageAfterJoinSeconds = sl.int(v)
			}
		case "channels":
			var v int64
			v, err = r.int()
			m.Channels = int(v)
		case "active_hours":
			if r.null() {
				return nil
			}
			i := 0
			err = r.array(func() error {
				v, err := r.int()
				if i < len(m.ActiveHours) {
					m.ActiveHours[i] = v
				}
				i++
				return err
			})
		case "message_interval_cv":
			if !r.null() {
				var v float64
				v, err = r.float()
				m.MessageIntervalCV = sl.float(v)
			}
		case "max_messages_per_minute":
			m.MaxMessagesPerMinute, err = r.int()
		case "role_changes":
			m.RoleChanges, err = r.int()
		default:
			err = r.skip()
		}
		return err
	})
}

// jreader is a minimal JSON reader over a byte slice.
type jreader struct {
	b []byte
	i int
}

var errSyntax = errors.New("invalid JSON")

func (r *jreader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *jreader) peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

func (r *jreader) expect(c byte) error {
	if r.peek() != c {
		return fmt.Errorf("%w: want %q", errSyntax, c)
	}
	r.i++
	return nil
}

// null consumes a null and reports whether there was one.
func (r *jreader) null() bool {
	if r.peek() == 'n' && r.i+4 <= len(r.b) && string(r.b[r.i:r.i+4]) == "null" {
		r.i += 4
		return true
	}
	return false
}

func (r *jreader) object(field func(key []byte) error) error {
	if err := r.expect('{'); err != nil {
		return err
	}
	if r.peek() == '}' {
		r.i++
		return nil
	}
	for {
		key, err := r.rawString()
		if err != nil {
			return err
		}
		if err := r.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return nil
		default:
			return fmt.Errorf("%w: want , or }", errSyntax)
		}
	}
}

func (r *jreader) array(elem func() error) error {
	if err := r.expect('['); err != nil {
		return err
	}
	if r.peek() == ']' {
		r.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return nil
		default:
			return fmt.Errorf("%w: want , or ]", errSyntax)
		}
	}
}

// rawString returns a string's bytes, unescaped only when it has escapes
// (keys and IDs have none).
func (r *jreader) rawString() ([]byte, error) {
	if err := r.expect('"'); err != nil {
		return nil, err
	}
	start := r.i
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			return r.b[start : r.i-1], nil
		case c == '\\':
			r.i = start
			return r.escaped()
		case c < 0x20:
			return nil, fmt.Errorf("%w: control character in string", errSyntax)
		}
		r.i++
	}
	return nil, fmt.Errorf("%w: unterminated string", errSyntax)
}

func (r *jreader) escaped() ([]byte, error) {
	var out []byte
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return out, nil
		case c < 0x20:
			return nil, fmt.Errorf("%w: control character in string", errSyntax)
		case c != '\\':
			out = append(out, c)
			r.i++
			continue
		}
		if r.i+1 >= len(r.b) {
			break
		}
		e := r.b[r.i+1]
		r.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			c1, ok := r.hex4()
			if !ok {
				return nil, fmt.Errorf("%w: bad \\u escape", errSyntax)
			}
			if utf16.IsSurrogate(c1) {
				if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
					save := r.i
					r.i += 2
					if c2, ok := r.hex4(); ok {
						if d := utf16.DecodeRune(c1, c2); d != utf8.RuneError {
							out = utf8.AppendRune(out, d)
							continue
						}
					}
					r.i = save
				}
				c1 = utf8.RuneError
			}
			out = utf8.AppendRune(out, c1)
		default:
			return nil, fmt.Errorf("%w: bad escape", errSyntax)
		}
	}
	return nil, fmt.Errorf("%w: unterminated string", errSyntax)
}

func (r *jreader) hex4() (rune, bool) {
	if r.i+4 > len(r.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(r.b[r.i:r.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	r.i += 4
	return rune(v), true
}

func (r *jreader) str() (string, error) {
	b, err := r.rawString()
	return string(b), err
}

func (r *jreader) boolean() (bool, error) {
	r.ws()
	switch {
	case r.i+4 <= len(r.b) && string(r.b[r.i:r.i+4]) == "true":
		r.i += 4
		return true, nil
	case r.i+5 <= len(r.b) && string(r.b[r.i:r.i+5]) == "false":
		r.i += 5
		return false, nil
	}
	return false, fmt.Errorf("%w: want a boolean", errSyntax)
}

func (r *jreader) number() ([]byte, error) {
	r.ws()
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			r.i++
			continue
		}
		break
	}
	if start == r.i {
		return nil, fmt.Errorf("%w: want a number", errSyntax)
	}
	return r.b[start:r.i], nil
}

func (r *jreader) float() (float64, error) {
	n, err := r.number()
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(string(n), 64)
}

func (r *jreader) int() (int64, error) {
	n, err := r.number()
	if err != nil {
		return 0, err
	}
	// Fast path without allocating: up to 18 digits, optional minus.
	if d := n; len(d) > 0 && len(d) <= 19 {
		neg := d[0] == '-'
		if neg {
			d = d[1:]
		}
		if len(d) > 0 && len(d) <= 18 && (d[0] != '0' || len(d) == 1) {
			var v int64
			ok := true
			for _, c := range d {
				if c < '0' || c > '9' {
					ok = false
					break
				}
				v = v*10 + int64(c-'0')
			}
			if ok {
				if neg {
					v = -v
				}
				return v, nil
			}
		}
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want an integer, got %s", n)
	}
	return v, nil
}

// skip consumes any value.
func (r *jreader) skip() error {
	switch r.peek() {
	case '{':
		return r.object(func([]byte) error { return r.skip() })
	case '[':
		return r.array(r.skip)
	case '"':
		_, err := r.rawString()
		return err
	case 't', 'f':
		_, err := r.boolean()
		return err
	case 'n':
		if r.null() {
			return nil
		}
		return errSyntax
	}
	_, err := r.float()
	return err
}

// DecodeScoreResponse reads a score hook's JSON output without reflection
// (the host reads every scorer's output with it). Keys match exactly, as
// the schema spells them; unknown keys are skipped. A factor's value keeps
// encoding/json's types: float64, string, bool, nil, or for an array or
// object what encoding/json makes of it.
func DecodeScoreResponse(b []byte) (ScoreResponse, error) {
	var res ScoreResponse
	r := jreader{b: b}
	err := r.object(func(key []byte) error {
		if string(key) != "scores" {
			return r.skip()
		}
		if r.null() {
			return nil
		}
		res.Scores = []Score{}
		return r.array(func() error {
			res.Scores = append(res.Scores, Score{})
			return decodeScore(&r, &res.Scores[len(res.Scores)-1])
		})
	})
	if err == nil {
		if r.ws(); r.i != len(r.b) {
			err = fmt.Errorf("%w: data after the response", errSyntax)
		}
	}
	if err != nil {
		return ScoreResponse{}, fmt.Errorf("at byte %d: %w", r.i, err)
	}
	return res, nil
}

func decodeScore(r *jreader, s *Score) error {
	return r.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "user_id":
			s.UserID, err = r.str()
		case "score":
			s.Score, err = r.float()
		case "explanation":
			s.Explanation, err = r.str()
		case "factors":
			if r.null() {
				return nil
			}
			s.Factors = []Factor{}
			err = r.array(func() error {
				s.Factors = append(s.Factors, Factor{})
				f := &s.Factors[len(s.Factors)-1]
				return r.object(func(key []byte) error {
					var err error
					switch string(key) {
					case "name":
						f.Name, err = r.str()
					case "contribution":
						f.Contribution, err = r.float()
					case "value":
						f.Value, err = r.value()
					default:
						err = r.skip()
					}
					return err
				})
			})
		default:
			err = r.skip()
		}
		return err
	})
}

// value reads any JSON value into encoding/json's types.
func (r *jreader) value() (any, error) {
	switch r.peek() {
	case '"':
		return r.str()
	case 't', 'f':
		return r.boolean()
	case 'n':
		if r.null() {
			return nil, nil
		}
		return nil, errSyntax
	case '[', '{':
		start := r.i
		if err := r.skip(); err != nil {
			return nil, err
		}
		var v any
		err := json.Unmarshal(r.b[start:r.i], &v)
		return v, err
	}
	return r.float()
}

// appendScoreResponse writes res as JSON.
func appendScoreResponse(b []byte, res ScoreResponse) ([]byte, error) {
	b = append(b, `{"scores":`...)
	if res.Scores == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i, s := range res.Scores {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"user_id":`...)
		b = appendString(b, s.UserID)
		b = append(b, `,"score":`...)
		var err error
		if b, err = appendFloat(b, s.Score); err != nil {
			return nil, err
		}
		b = append(b, `,"factors":`...)
		if s.Factors == nil {
			b = append(b, "null"...)
		} else if b, err = AppendFactorsJSON(b, s.Factors); err != nil {
			return nil, err
		}
		b = append(b, `,"explanation":`...)
		b = appendString(b, s.Explanation)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// AppendFactorsJSON appends factors as a JSON array ("[]" for none), as
// encoding/json would write them but without reflection.
func AppendFactorsJSON(b []byte, fs []Factor) ([]byte, error) {
	b = append(b, '[')
	var err error
	for j, f := range fs {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, f.Name)
		b = append(b, `,"contribution":`...)
		if b, err = appendFloat(b, f.Contribution); err != nil {
			return nil, err
		}
		if f.Value != nil {
			b = append(b, `,"value":`...)
			if b, err = appendValue(b, f.Value); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendFloat formats like encoding/json.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("plugin: unsupported value %v in score output", f)
	}
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmtc = 'e'
	}
	b = strconv.AppendFloat(b, f, fmtc, -1, 64)
	if fmtc == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case float64:
		return appendFloat(b, x)
	case float32:
		return appendFloat(b, float64(x))
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, x), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
