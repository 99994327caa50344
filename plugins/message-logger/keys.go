package main

import (
	"strconv"
	"strings"
	"time"
)

// Key layout (every number fixed-width so that key order is number order;
// kv_list returns keys in ascending order, so "newest first" lists use
// inverted numbers):
//
//	c/<channel>/<inv message id>            the message record (JSON); a channel's log, newest message first
//	e/<inv last edit ms>/<channel>/<message> edited messages, most recently edited first; value: record key
//	d/<inv deleted ms>/<channel>/<message>   deleted messages, most recently deleted first; value: record key
//	t/<last change ms>/<channel>/<message>   expiry index, oldest change first; value: JSON list of the
//	                                         message's other keys, so a purge needs no reads
//	u/<author>/<channel>/<message>          the author's messages, for delete_user; value: record key
//	p/<user>                                a delete_user that did not finish in one call; tick goes on
//
// inv message id = 18446744073709551615 - id (20 digits); ms are unix
// milliseconds (13 digits), inverted as 9999999999999 - ms.

const (
	maxID = ^uint64(0)
	maxMS = 9999999999999
)

func pad(n uint64, width int) string {
	s := strconv.FormatUint(n, 10)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

func ms(t time.Time) uint64 {
	v := t.UnixMilli()
	if v < 0 {
		return 0
	}
	if v > maxMS {
		return maxMS
	}
	return uint64(v)
}

func invID(id uint64) string        { return pad(maxID-id, 20) }
func timeKey(t time.Time) string    { return pad(ms(t), 13) }
func invTimeKey(t time.Time) string { return pad(maxMS-ms(t), 13) }

func recordKey(channel string, id uint64) string { return "c/" + channel + "/" + invID(id) }
func channelPrefix(channel string) string        { return "c/" + channel + "/" }

func editKey(at time.Time, channel, msg string) string {
	return "e/" + invTimeKey(at) + "/" + channel + "/" + msg
}

func deleteKey(at time.Time, channel, msg string) string {
	return "d/" + invTimeKey(at) + "/" + channel + "/" + msg
}

func expiryKey(at time.Time, channel, msg string) string {
	return "t/" + timeKey(at) + "/" + channel + "/" + msg
}

func userKey(user, channel, msg string) string { return "u/" + user + "/" + channel + "/" + msg }

// expiryTime reads the time out of an expiry key.
func expiryTime(key string) (time.Time, bool) {
	if len(key) < 2+13 || !strings.HasPrefix(key, "t/") {
		return time.Time{}, false
	}
	n, err := strconv.ParseUint(key[2:15], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(n)).UTC(), true
}
