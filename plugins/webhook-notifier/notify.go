package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// Notice is what a rule firing says, before it is rendered for a webhook.
type Notice struct {
	Rule    string    `json:"rule"`
	On      string    `json:"on"`
	EventID string    `json:"event_id"`
	UserID  string    `json:"user_id,omitempty"`
	At      time.Time `json:"at"`
	Title   string    `json:"title"`
	Fields  []Field   `json:"fields"`
}

// Field is one line of a notice. User and Role hold IDs that Discord
// renders as mentions.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	User  string `json:"user,omitempty"`
	Role  string `json:"role,omitempty"`
}

// Summary is the notice as one line of plain text: the title, the member,
// then "Name: value" for each other field.
func (n *Notice) Summary() string {
	var b strings.Builder
	b.WriteString(n.Title)
	for i, f := range n.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if f.Name != "Member" {
			b.WriteString(f.Name)
			b.WriteString(": ")
		}
		b.WriteString(f.Value)
	}
	return b.String()
}

// match returns the notices the event triggers under the rules, before
// cooldowns and deduplication.
func match(ctx *plugin.Context, rules []Rule, ev *plugin.Event, names nameCache) []Notice {
	var out []Notice
	var data event.Data
	decoded := false
	for i := range rules {
		r := &rules[i]
		if !kindMatches(r.On, ev.Kind()) || !userMatches(r, ev.UserID()) {
			continue
		}
		if r.On == OnMultiClient && !decoded {
			// Most presence updates show one client: count from the raw
			// payload and skip them without decoding JSON (slow in wasm).
			if n := onlineClientCount(ev.Raw); n >= 0 && n < r.minClients() {
				continue
			}
		}
		if !decoded {
			d, err := ev.Data()
			if err != nil {
				return nil
			}
			data, decoded = d, true
		}
		base := Notice{Rule: r.ID, On: r.On, EventID: ev.ID(), UserID: ev.UserID(), At: ev.At()}
		member := func() Field {
			return Field{Name: "Member", Value: names.name(ctx, ev.UserID(), event.UserOf(data)), User: ev.UserID()}
		}
		switch d := data.(type) {
		case *event.BanAdd:
			n := base
			n.Title = "Member banned"
			n.Fields = []Field{member()}
			if d.Reason != "" {
				n.Fields = append(n.Fields, Field{Name: "Reason", Value: d.Reason})
			}
			out = append(out, n)
		case *event.BanRemove:
			n := base
			n.Title, n.Fields = "Member unbanned", []Field{member()}
			out = append(out, n)
		case *event.MemberUpdate:
			roles, title := d.RolesAdded, "Role granted"
			if r.On == OnRoleRemoved {
				roles, title = d.RolesRemoved, "Role removed"
			}
			for _, role := range roles {
				if r.RoleID != "" && role != r.RoleID {
					continue
				}
				n := base
				n.EventID = ev.ID() + "/" + role
				n.Title = title
				n.Fields = []Field{member(), {Name: "Role", Value: role, Role: role}}
				out = append(out, n)
			}
		case *event.Presence:
			on := onlineClients(d.ClientStatus)
			if len(on) < r.minClients() {
				continue
			}
			n := base
			n.Title = "Online on " + strconv.Itoa(len(on)) + " clients at once"
			n.Fields = []Field{member(), {Name: "Clients", Value: strings.Join(on, ", ")}}
			out = append(out, n)
		case *event.ScoreUpdate:
			if r.Scorer != "" && d.Scorer != r.Scorer {
				continue
			}
			// Only a rise to the threshold fires, not every score above it.
			if d.Score < r.Threshold || (d.Previous != nil && *d.Previous >= r.Threshold) {
				continue
			}
			n := base
			n.Title = "Score at or above " + num(r.Threshold)
			score := num(d.Score)
			if d.Previous != nil {
				score = num(*d.Previous) + " → " + score
			}
			n.Fields = []Field{member(), {Name: "Scorer", Value: d.Scorer}, {Name: "Score", Value: score}}
			if d.Explanation != "" {
				n.Fields = append(n.Fields, Field{Name: "Why", Value: d.Explanation})
			}
			out = append(out, n)
		case *event.MemberJoin:
			if d.Backfill {
				continue // reconstructed from a member list, not a join that just happened
			}
			n := base
			n.Title = "Member joined"
			n.Fields = []Field{member()}
			if created, err := event.SnowflakeTime(ev.UserID()); err == nil {
				age := ev.At().Sub(created)
				if r.MaxAccountAgeDays > 0 {
					if age >= time.Duration(r.MaxAccountAgeDays*float64(24*time.Hour)) {
						continue
					}
					n.Title = "New account joined"
				}
				n.Fields = append(n.Fields, Field{Name: "Account age", Value: days(age)})
			}
			out = append(out, n)
		case *event.MemberLeave:
			n := base
			n.Title, n.Fields = "Member left", []Field{member()}
			out = append(out, n)
		}
	}
	return out
}

func kindMatches(on string, k event.Kind) bool {
	switch on {
	case OnBanAdd:
		return k == event.KindBanAdd
	case OnBanRemove:
		return k == event.KindBanRemove
	case OnRoleGranted, OnRoleRemoved:
		return k == event.KindMemberUpdate
	case OnMultiClient:
		return k == event.KindPresenceUpdate
	case OnScore:
		return k == event.KindScoreUpdate
	case OnMemberJoin:
		return k == event.KindMemberJoin
	case OnMemberLeave:
		return k == event.KindMemberLeave
	}
	return false
}

// needs is the event permission each rule kind depends on.
var needs = map[string]string{
	OnBanAdd: "events.ban.read", OnBanRemove: "events.ban.read",
	OnRoleGranted: "events.member.read", OnRoleRemoved: "events.member.read",
	OnMemberJoin: "events.member.read", OnMemberLeave: "events.member.read",
	OnMultiClient: "events.presence.read", OnScore: "events.score.read",
}

func userMatches(r *Rule, user string) bool {
	if len(r.Users) == 0 {
		return true
	}
	for _, u := range r.Users {
		if u == user {
			return true
		}
	}
	return false
}

func onlineClients(cs event.ClientStatus) []string {
	var on []string
	for _, c := range event.Clients() {
		if cs.Get(c).Online() {
			on = append(on, string(c))
		}
	}
	return on
}

// onlineClientCount counts the clients not offline in a presence payload's
// client_status without a JSON decoder, or returns -1 if it cannot tell.
// The key can only appear as a key (inside a JSON string its quotes would
// be escaped), and its values are plain status words.
func onlineClientCount(raw []byte) int {
	const key = `"client_status":`
	i := bytes.Index(raw, []byte(key))
	if i < 0 {
		return 0 // no client online
	}
	rest := bytes.TrimLeft(raw[i+len(key):], " \t\r\n")
	end := bytes.IndexByte(rest, '}')
	if len(rest) == 0 || rest[0] != '{' || end < 0 {
		return -1
	}
	n := 0
	for _, pair := range bytes.Split(rest[1:end], []byte(",")) {
		_, v, ok := bytes.Cut(pair, []byte(":"))
		if !ok {
			if len(bytes.TrimSpace(pair)) == 0 {
				continue
			}
			return -1
		}
		v = bytes.Trim(bytes.TrimSpace(v), `"`)
		if bytes.IndexByte(v, '\\') >= 0 {
			return -1
		}
		if len(v) > 0 && string(v) != "offline" {
			n++
		}
	}
	return n
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func days(d time.Duration) string {
	switch {
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " minutes"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " hours"
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

// nameCache resolves member names once per call.
type nameCache map[string]string

// name is the member's display name with their ID: from the event's user
// if it has one, else from members.read if granted, else the ID alone.
func (c nameCache) name(ctx *plugin.Context, id string, u *event.User) string {
	if id == "" {
		return "(unknown)"
	}
	if v, ok := c[id]; ok {
		return v
	}
	name := ""
	if u != nil {
		name = u.GlobalName
		if name == "" {
			name = u.Username
		}
	}
	if name == "" && ctx.Granted("members.read") {
		if m, err := ctx.Member(id); err == nil {
			name = m.Name
		}
	}
	v := id
	if name != "" {
		v = name + " (" + id + ")"
	}
	c[id] = v
	return v
}
