package plugin

import (
	"sort"

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

var catalogue = []Permission{
	{PermPresenceRead, "Receive presence updates: when each member is online, idle or busy, on which devices (desktop, mobile, web), and what they are playing or listening to.", RiskMedium},
	{PermMessageRead, "Receive message events: who posted, edited or deleted a message, where and when, its length, attachments and mentions — not what it says.", RiskMedium},
	{PermContentRead, "Read the text of messages. Together with key-value storage the plugin can keep copies of what members write.", RiskHigh},
	{PermTypingRead, "Receive typing indicators: who starts typing in which channel, and when.", RiskLow},
	{PermMemberEvents, "Receive joins, leaves and member updates (nickname and role changes).", RiskMedium},
	{PermBanRead, "Receive bans and unbans, with the ban reason.", RiskMedium},
	{PermVoiceRead, "Receive voice state changes: who joins or leaves voice channels, mutes or streams.", RiskMedium},
	{PermGuildRead, "Receive changes to the server's name and channels.", RiskLow},
	{PermMembersRead, "Look up any member's profile: names, roles, join date, last seen, message count.", RiskMedium},
	{PermActivityRead, "Read hourly activity counts of the server and of each member.", RiskLow},
	{PermKVRead, "Read the data the plugin stored for this server.", RiskLow},
	{PermKVWrite, "Store data for this server, up to the plugin's storage quota.", RiskLow},
	{PermMetricsWrite, "Publish counters in the host's metrics, labelled with the plugin and server.", RiskLow},
	{PermEventsEmit, "Send its own events to this server's live dashboards.", RiskLow},
	{PermRoutesServe, "Serve pages and API endpoints under the plugin's path, to people who can reach this server's API.", RiskMedium},
	{PermHTTPFetch, "Send HTTP requests to the internet hosts listed in the grant (never to private or internal addresses).", RiskHigh},
	{PermScoresWrite, "Compute scores about members that moderators see, from statistics the host prepares.", RiskMedium},
}

// Catalogue returns every permission a plugin may request.
func Catalogue() []Permission { return append([]Permission(nil), catalogue...) }

// LookupPermission returns the catalogue entry for name.
func LookupPermission(name string) (Permission, bool) {
	for _, p := range catalogue {
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
