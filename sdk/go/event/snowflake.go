package event

import (
	"errors"
	"strconv"
	"time"
)

// DiscordEpoch is the first millisecond of 2015, the zero of Discord IDs.
const DiscordEpoch int64 = 1420070400000

// IsSnowflake reports whether s looks like a Discord ID: 1 to 20 decimal
// digits that fit in an unsigned 64-bit integer.
func IsSnowflake(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// ErrNotSnowflake is returned for a string that is not a Discord ID.
var ErrNotSnowflake = errors.New("event: not a Discord ID")

// SnowflakeTime returns the moment a Discord ID was created, which for a
// user ID is the account's creation time.
func SnowflakeTime(id string) (time.Time, error) {
	if !IsSnowflake(id) {
		return time.Time{}, ErrNotSnowflake
	}
	n, _ := strconv.ParseUint(id, 10, 64)
	return time.UnixMilli(int64(n>>22) + DiscordEpoch).UTC(), nil
}

// NewSnowflake builds a Discord-style ID for moment t. worker and seq fill the
// low 22 bits (5 bits worker, 5 bits process, 12 bits increment), so IDs made
// for the same millisecond stay distinct when seq differs.
func NewSnowflake(t time.Time, worker, seq uint64) string {
	ms := uint64(t.UnixMilli() - DiscordEpoch)
	id := ms<<22 | (worker&0x3ff)<<12 | seq&0xfff
	return strconv.FormatUint(id, 10)
}
