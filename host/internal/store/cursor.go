package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadCursor is returned for a pagination cursor that is malformed or was
// made for a different query.
var ErrBadCursor = errors.New("store: invalid cursor")

// cursor is the position after the last row of a page. Scope names the
// ordering it was made for so that reusing it with another ordering fails
// clearly instead of skipping rows.
type cursor struct {
	Scope string `json:"s"`
	Int   int64  `json:"i,omitempty"`
	Str   string `json:"v,omitempty"`
	ID    string `json:"k"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, scope string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 512 {
		return c, ErrBadCursor
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return c, ErrBadCursor
	}
	if c.Scope != scope {
		return c, fmt.Errorf("%w: made for ordering %q, not %q", ErrBadCursor, c.Scope, scope)
	}
	return c, nil
}
