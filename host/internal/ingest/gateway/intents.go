package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

// ContentPolicy tells whether the bot must ask Discord for message content
// (the privileged MESSAGE_CONTENT intent): true when some guild has granted
// a plugin `message.content.read`. The plugin host implements it; a nil
// ContentPolicy means no (as for `spywatcher record`). It is
// asked before every fresh identify, because intents are fixed per session.
type ContentPolicy interface {
	NeedsMessageContent(ctx context.Context) (bool, error)
}

// baseIntents are what the event model needs; see README "Discord".
const baseIntents = discordgo.IntentGuilds | // guild, channel and thread metadata; GUILD_CREATE backfill
	discordgo.IntentGuildMembers | // member add/update/remove, member chunks (privileged)
	discordgo.IntentGuildModeration | // bans
	discordgo.IntentGuildVoiceStates |
	discordgo.IntentGuildPresences | // presence updates (privileged)
	discordgo.IntentGuildMessages |
	discordgo.IntentGuildMessageTyping

// privileged are the intents an application must have enabled in the
// Developer Portal, with the names the portal shows.
var privileged = []struct {
	bit          discordgo.Intent
	name, portal string
}{
	{discordgo.IntentGuildMembers, "GUILD_MEMBERS", "Server Members Intent"},
	{discordgo.IntentGuildPresences, "GUILD_PRESENCES", "Presence Intent"},
	{discordgo.IntentMessageContent, "MESSAGE_CONTENT", "Message Content Intent"},
}

func intents(content bool) discordgo.Intent {
	if content {
		return baseIntents | discordgo.IntentMessageContent
	}
	return baseIntents
}

// privilegedNames lists the privileged intents in in, as
// `GUILD_MEMBERS ("Server Members Intent")`.
func privilegedNames(in discordgo.Intent) string {
	var names []string
	for _, p := range privileged {
		if in&p.bit != 0 {
			names = append(names, fmt.Sprintf("%s (%q)", p.name, p.portal))
		}
	}
	return strings.Join(names, ", ")
}

// Errors that end Run because retrying cannot help. The returned error wraps
// one of them and says what to change.
var (
	ErrInvalidToken      = errors.New("gateway: Discord rejected the bot token")
	ErrDisallowedIntents = errors.New("gateway: the application is not allowed the privileged intents it asked for")
	ErrGatewayRefused    = errors.New("gateway: Discord refused the connection")
)

const portal = "https://discord.com/developers/applications"

// fatal turns a close code retrying cannot fix into the error Run returns;
// it returns nil for everything else.
func fatal(err error, asked discordgo.Intent) error {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return nil
	}
	switch ce.Code {
	case 4004:
		return fmt.Errorf("%w (gateway close code 4004, authentication failed): set SPYWATCHER_DISCORD_TOKEN to the token shown under Bot → Reset Token in the Developer Portal (%s)", ErrInvalidToken, portal)
	case 4014:
		return fmt.Errorf("%w (gateway close code 4014, disallowed intents): enable %s under Bot → Privileged Gateway Intents of the application in the Developer Portal (%s); bots in 100 or more servers need Discord's approval for them", ErrDisallowedIntents, privilegedNames(asked), portal)
	case 4010:
		return fmt.Errorf("%w (close code 4010, invalid shard): check --discord-shard-count and --discord-shards", ErrGatewayRefused)
	case 4011:
		return fmt.Errorf("%w (close code 4011, sharding required): the bot is in too many guilds for one shard; set --discord-shard-count 0 to use Discord's recommendation", ErrGatewayRefused)
	case 4012, 4013:
		return fmt.Errorf("%w (close code %d: %s): this build of spywatcher does not speak the gateway version Discord expects", ErrGatewayRefused, ce.Code, ce.Text)
	}
	return nil
}
