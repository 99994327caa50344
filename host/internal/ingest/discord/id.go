package discord

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// dispatchHash returns the hex digest identifying d.
func dispatchHash(d Dispatch) string {
	h := sha256.New()
	var num [20]byte
	h.Write([]byte(d.Type))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(num[:0], d.Seq, 10))
	h.Write([]byte{0})
	h.Write(d.Data)
	if !d.RecordedAt.IsZero() {
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(num[:0], d.RecordedAt.UnixMilli(), 10))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// hashID builds a hash-derived event ID; it is at most 3+15+1+32+1+6 bytes.
func hashID(k event.Kind, hash string, i, n int) string {
	id := "dc:" + string(k) + ":" + hash
	if n > 1 {
		id += ":" + strconv.Itoa(i)
	}
	return id
}

func unixMS(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
