package store

import (
	"context"
	"fmt"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// OnlineMember is a member who is connected now.
type OnlineMember struct {
	UserID       string             `json:"user_id"`
	Name         string             `json:"name"`
	Status       string             `json:"status"`
	ClientStatus event.ClientStatus `json:"client_status"`
}

// Presence is who is online in a guild now.
type Presence struct {
	Online      int            `json:"online"`
	ByStatus    map[string]int `json:"by_status"`
	ByClient    map[string]int `json:"by_client"`
	MultiClient int            `json:"multi_client"` // members on two or more clients
	Members     []OnlineMember `json:"members"`
	Truncated   bool           `json:"truncated,omitempty"`
}

// OnlineNow counts a guild's online members by status and client and lists
// up to limit of them by name.
func (s *Store) OnlineNow(ctx context.Context, guildID string, limit int) (Presence, error) {
	p := Presence{ByStatus: map[string]int{}, ByClient: map[string]int{}, Members: []OnlineMember{}}
	for _, c := range event.Clients() {
		p.ByClient[string(c)] = 0
	}
	rs, err := s.r.QueryContext(ctx, s.q(`SELECT p.user_id, COALESCE(m.name, p.user_id), p.status, p.desktop, p.mobile, p.web
		FROM member_presence p LEFT JOIN members m ON m.guild_id = p.guild_id AND m.user_id = p.user_id
		WHERE p.guild_id = ? AND p.status <> 'offline' ORDER BY 2, p.user_id`), guildID)
	if err != nil {
		return p, fmt.Errorf("store: online now: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var m OnlineMember
		var d, mo, w string
		if err := rs.Scan(&m.UserID, &m.Name, &m.Status, &d, &mo, &w); err != nil {
			return p, fmt.Errorf("store: online now: %w", err)
		}
		m.ClientStatus = event.ClientStatus{Desktop: event.Status(d), Mobile: event.Status(mo), Web: event.Status(w)}
		p.Online++
		p.ByStatus[m.Status]++
		n := 0
		for _, c := range event.Clients() {
			if m.ClientStatus.Get(c).Online() {
				p.ByClient[string(c)]++
				n++
			}
		}
		if n >= 2 {
			p.MultiClient++
		}
		if len(p.Members) < limit {
			p.Members = append(p.Members, m)
		} else {
			p.Truncated = true
		}
	}
	return p, rs.Err()
}
