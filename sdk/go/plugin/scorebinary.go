package plugin

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"time"
)

// The binary encoding of the score hook's input, chosen in the manifest
// with "score_encoding": "binary" (PLUGINS.md, "score"). All integers are
// little-endian:
//
//	request = "SWS1" count:u32 from:i64 to:i64 guild:u64 member*
//	member  = size:u32 user:u64 flags:u8 account_age_days:f64 joined_days_ago:f64
//	          online:i64 desktop:i64 mobile:i64 web:i64 multi_client:i64
//	          messages:i64 messages_total:i64 since_last_message:i64
//	          first_message_after_join:i64 channels:i64 active_hours:24×i64
//	          message_interval_cv:f64 max_messages_per_minute:i64 role_changes:i64
//
// from and to are unix milliseconds; size counts the bytes after it, so
// fields appended later can be skipped by older decoders. flags: bit 0 bot,
// bit 1 joined_days_ago known, bit 2 seconds_since_last_message known,
// bit 3 first_message_after_join_seconds known, bit 4 message_interval_cv
// known. by_client lists the clients with time (desktop, mobile, web).

// ScoreMagic starts a binary score request.
const ScoreMagic = "SWS1"

const memberBinarySize = 8 + 1 + 8*2 + 8*10 + 24*8 + 8 + 8*2

const (
	flagBot = 1 << iota
	flagJoined
	flagSinceLast
	flagFirstAfterJoin
	flagCV
)

// AppendScoreRequestBinary appends req in the binary encoding. IDs that are
// not decimal numbers (never the case for Discord IDs) are encoded as 0.
func AppendScoreRequestBinary(b []byte, req ScoreRequest) []byte {
	b = append(b, ScoreMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(req.Members)))
	b = binary.LittleEndian.AppendUint64(b, uint64(req.From.UnixMilli()))
	b = binary.LittleEndian.AppendUint64(b, uint64(req.To.UnixMilli()))
	g, _ := strconv.ParseUint(req.GuildID, 10, 64)
	b = binary.LittleEndian.AppendUint64(b, g)
	for i := range req.Members {
		m := &req.Members[i]
		b = binary.LittleEndian.AppendUint32(b, memberBinarySize)
		u, _ := strconv.ParseUint(m.UserID, 10, 64)
		b = binary.LittleEndian.AppendUint64(b, u)
		var flags byte
		var joined, cv float64
		var since, first int64
		if m.Bot {
			flags |= flagBot
		}
		if m.JoinedDaysAgo != nil {
			flags, joined = flags|flagJoined, *m.JoinedDaysAgo
		}
		if m.SecondsSinceLastMessage != nil {
			flags, since = flags|flagSinceLast, *m.SecondsSinceLastMessage
		}
		if m.FirstMessageAfterJoinSeconds != nil {
			flags, first = flags|flagFirstAfterJoin, *m.FirstMessageAfterJoinSeconds
		}
		if m.MessageIntervalCV != nil {
			flags, cv = flags|flagCV, *m.MessageIntervalCV
		}
		b = append(b, flags)
		f := func(v float64) { b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v)) }
		n := func(v int64) { b = binary.LittleEndian.AppendUint64(b, uint64(v)) }
		f(m.AccountAgeDays)
		f(joined)
		n(m.OnlineSeconds)
		n(m.ByClient["desktop"])
		n(m.ByClient["mobile"])
		n(m.ByClient["web"])
		n(m.MultiClientSeconds)
		n(m.Messages)
		n(m.MessagesTotal)
		n(since)
		n(first)
		n(int64(m.Channels))
		for _, h := range m.ActiveHours {
			n(h)
		}
		f(cv)
		n(m.MaxMessagesPerMinute)
		n(m.RoleChanges)
	}
	return b
}

var errScoreBinary = errors.New("plugin: malformed binary score input")

// decodeScoreRequestBinary parses the binary encoding into req.
func decodeScoreRequestBinary(b []byte, req *ScoreRequest) error {
	le := binary.LittleEndian
	if len(b) < 32 || string(b[:4]) != ScoreMagic {
		return errScoreBinary
	}
	count := int(le.Uint32(b[4:]))
	req.From = time.UnixMilli(int64(le.Uint64(b[8:]))).UTC()
	req.To = time.UnixMilli(int64(le.Uint64(b[16:]))).UTC()
	req.GuildID = strconv.FormatUint(le.Uint64(b[24:]), 10)
	b = b[32:]
	if count > len(b)/memberBinarySize {
		return errScoreBinary
	}
	req.Members = make([]MemberStats, count)
	for i := range req.Members {
		if len(b) < 4 {
			return errScoreBinary
		}
		size := int(le.Uint32(b))
		if size < memberBinarySize || len(b) < 4+size {
			return errScoreBinary
		}
		p := b[4 : 4+size]
		b = b[4+size:]
		m := &req.Members[i]
		m.UserID = strconv.FormatUint(le.Uint64(p), 10)
		flags := p[8]
		p = p[9:]
		next := func() uint64 { v := le.Uint64(p); p = p[8:]; return v }
		m.Bot = flags&flagBot != 0
		m.AccountAgeDays = math.Float64frombits(next())
		if joined := math.Float64frombits(next()); flags&flagJoined != 0 {
			m.JoinedDaysAgo = &joined
		}
		m.OnlineSeconds = int64(next())
		for _, c := range [3]string{"desktop", "mobile", "web"} {
			if v := int64(next()); v != 0 {
				if m.ByClient == nil {
					m.ByClient = make(map[string]int64, 3)
				}
				m.ByClient[c] = v
			}
		}
		m.MultiClientSeconds = int64(next())
		m.Messages = int64(next())
		m.MessagesTotal = int64(next())
		if v := int64(next()); flags&flagSinceLast != 0 {
			m.SecondsSinceLastMessage = &v
		}
		if v := int64(next()); flags&flagFirstAfterJoin != 0 {
			m.FirstMessageAfterJoinSeconds = &v
		}
		m.Channels = int(next())
		for h := range m.ActiveHours {
			m.ActiveHours[h] = int64(next())
		}
		if v := math.Float64frombits(next()); flags&flagCV != 0 {
			m.MessageIntervalCV = &v
		}
		m.MaxMessagesPerMinute = int64(next())
		m.RoleChanges = int64(next())
	}
	return nil
}
