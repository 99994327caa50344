package plugin

import (
	"sort"
	"sync"

	"github.com/spywatcher/spywatcher/permissions"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Risk grades a permission for the admin reviewing it.
type Risk string

// Risk levels, from harmless to sensitive.
const (
	RiskLow    Risk = "low"
	RiskMedium Risk = "medium"
	RiskHigh   Risk = "high"
)

// Permission is one entry of the catalogue a plugin picks its requests from.
type Permission struct {
	Name string `json:"name"`
	// Grants says in plain words what the plugin can do with it; the
	// dashboard shows it to the admin before they grant.
	Grants string `json:"grants"`
	Risk   Risk   `json:"risk"`
}

// The permission names.
const (
	PermPresenceRead = "events.presence.read"
	PermMessageRead  = "events.message.read"
	PermContentRead  = "message.content.read"
	PermTypingRead   = "events.typing.read"
	PermMemberEvents = "events.member.read"
	PermBanRead      = "events.ban.read"
	PermVoiceRead    = "events.voice.read"
	PermGuildRead    = "events.guild.read"
	PermScoreRead    = "events.score.read"
	PermMembersRead  = "members.read"
	PermActivityRead = "activity.read"
	PermKVRead       = "kv.read"
	PermKVWrite      = "kv.write"
	PermMetricsWrite = "metrics.write"
	PermEventsEmit   = "events.emit"
	PermRoutesServe  = "routes.serve"
	PermHTTPFetch    = "http.fetch"
	PermScoresWrite  = "scores.write"
)

// catalogue is the plugin part of permissions/catalogue.json, the one
// catalogue for people, API keys and plugins. A test checks that every
// permission named here is in it.
var catalogue = sync.OnceValue(func() []Permission {
	all, err := permissions.Catalogue()
	if err != nil {
		return nil // the embedded file is checked by permissions' tests
	}
	var out []Permission
	for _, p := range all {
		if p.Subject == "plugin" {
			out = append(out, Permission{Name: p.Object, Grants: p.Description, Risk: Risk(p.Risk)})
		}
	}
	return out
})

// Catalogue returns every permission a plugin may request.
func Catalogue() []Permission { return append([]Permission(nil), catalogue()...) }

// LookupPermission returns the catalogue entry for name.
func LookupPermission(name string) (Permission, bool) {
	for _, p := range catalogue() {
		if p.Name == name {
			return p, true
		}
	}
	return Permission{}, false
}

// readPermission maps an event kind's family to the permission that lets a
// plugin receive it.
var readPermission = map[string]string{
	"presence": PermPresenceRead,
	"message":  PermMessageRead,
	"typing":   PermTypingRead,
	"member":   PermMemberEvents,
	"ban":      PermBanRead,
	"voice":    PermVoiceRead,
	"guild":    PermGuildRead,
	"channel":  PermGuildRead,
	"score":    PermScoreRead,
}

// ReadPermission returns the permission needed to receive events of kind k.
func ReadPermission(k event.Kind) string { return readPermission[k.Family()] }

// hookPermission is the permission a hook needs to be called at all.
var hookPermission = map[string]string{
	HookHTTP:  PermRoutesServe,
	HookScore: PermScoresWrite,
}

// hostFunctionPermission is what each host function needs; "" means always
// allowed (logging is rate limited instead).
var hostFunctionPermission = map[string]string{
	"kv_get":       PermKVRead,
	"kv_list":      PermKVRead,
	"kv_set":       PermKVWrite,
	"kv_delete":    PermKVWrite,
	"log":          "",
	"metric":       PermMetricsWrite,
	"member_get":   PermMembersRead,
	"activity_get": PermActivityRead,
	"emit":         PermEventsEmit,
	"http_fetch":   PermHTTPFetch,
}

// HostFunctions lists the host functions by name.
func HostFunctions() []string {
	out := make([]string, 0, len(hostFunctionPermission))
	for n := range hostFunctionPermission {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
