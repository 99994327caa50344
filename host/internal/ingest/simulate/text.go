package simulate

import "github.com/spywatcher/spywatcher/sdk/go/event"

// The word lists below are read-only tables; nothing writes to them.

var textChannelNames = []string{
	"general", "memes", "help", "off-topic", "introductions", "gaming", "music",
	"art", "media", "programming", "pets", "food", "movies", "books", "sports",
	"photography", "events", "feedback", "bot-commands", "screenshots",
}

var voiceChannelNames = []string{"Lounge", "Gaming", "Music", "Study Room", "AFK"}

// Role indices into roleNames; a member's roles are a bit set of them.
const (
	roleOwner = iota
	roleModerator
	roleMember
	roleRegular
	roleVeteran
	roleGamer
	roleArtist
	roleMusician
	roleEventPing
	roleMuted
	numRoles
)

var roleNames = [numRoles]string{
	"Owner", "Moderator", "Member", "Regular", "Veteran",
	"Gamer", "Artist", "Musician", "Event Ping", "Muted",
}

// selfAssignable are the roles members pick for themselves.
var selfAssignable = [...]int{roleGamer, roleArtist, roleMusician, roleEventPing}

var nameAdjectives = []string{
	"quiet", "mellow", "swift", "lucky", "cosmic", "fuzzy", "brave", "sleepy",
	"clever", "rusty", "silver", "crimson", "gentle", "wild", "tiny", "grumpy",
	"sunny", "misty", "noble", "witty", "jolly", "frosty", "golden", "shy",
	"bold", "calm", "eager", "fancy", "happy", "icy", "lazy", "proud",
}

var nameNouns = []string{
	"fox", "badger", "otter", "falcon", "panda", "wolf", "raven", "tiger",
	"koala", "lynx", "heron", "moth", "comet", "pixel", "maple", "pebble",
	"cactus", "walrus", "gecko", "owl", "dragon", "turtle", "squid", "bison",
	"sparrow", "marten", "yak", "newt", "puffin", "ferret", "beetle", "orca",
}

var sentenceWords = []string{
	"the", "a", "that", "this", "is", "was", "really", "pretty", "just", "so",
	"game", "build", "patch", "song", "server", "stream", "update", "idea",
	"anyone", "know", "how", "why", "when", "think", "looks", "works", "broke",
	"again", "today", "tonight", "lol", "honestly", "maybe", "cool", "weird",
	"nice", "good", "bad", "new", "old", "with", "for", "on", "in", "my",
	"your", "we", "they", "should", "could", "try", "play", "watch", "fix",
	"later", "now", "never", "always", "agree", "same", "wait", "thanks",
	"question", "answer", "link", "picture", "meme", "map", "level", "boss",
}

var sentenceEnds = []string{".", "!", "?", "", "", " :)", "..."}

var greetings = []string{
	"hi everyone!", "hello, just joined", "hey all, a friend sent me here",
	"hi! glad to be here", "hello there", "hey, what's this server about?",
}

var spamLines = []string{
	"free nitro giveaway, claim now at discord-gift.example",
	"check my profile for a special offer",
	"earn $500 a day from home, DM me",
	"join my server for free skins",
	"airdrop is live, connect your wallet at claim.example",
}

var banReasons = []string{
	"spam", "scam links", "raid account", "advertising", "compromised account",
}

var gameNames = []string{
	"Minecraft", "Stardew Valley", "Valorant", "League of Legends", "Elden Ring",
	"Factorio", "Rocket League", "Counter-Strike 2", "Baldur's Gate 3",
	"Terraria", "Chess", "Hades II", "Overwatch 2", "Celeste",
}

// songs are (title, artist) pairs for Spotify listening activities.
var songs = [][2]string{
	{"Midnight Drive", "The Sundials"}, {"Paper Moons", "Lila Grey"},
	{"Static Bloom", "Nightjar"}, {"Harbour Lights", "Eastbound"},
	{"Velvet Rain", "Juno Park"}, {"Glass Towns", "Marrow"},
	{"Low Tide", "Orchid Club"}, {"Satellites", "Kite Season"},
	{"Copper Sky", "The Wrens"}, {"Slow Motion", "Neon Harbor"},
	{"Afterglow", "Pale Saints"}, {"Runaway Train", "Mosaic"},
	{"Lanterns", "Aurora Vale"}, {"Northern Line", "Signal Fire"},
	{"Cherry Cola", "Dayglow Kids"}, {"Weightless", "Hollow Pines"},
}

var customStatuses = []string{
	"studying", "back in 10", "coffee first", "working from home", "on vacation",
	"touching grass", "do not disturb pls", "grinding ranked", "new here",
	"reading", "sleepy", "debugging",
}

var watchNames = []string{"YouTube", "Twitch", "a movie night"}

// activityOf returns the non-custom activity kind/idx stands for.
func activityOf(kind, idx uint8) event.Activity {
	switch kind {
	case actGame:
		return event.Activity{Type: event.ActivityPlaying, Name: gameNames[int(idx)%len(gameNames)]}
	case actListen:
		s := songs[int(idx)%len(songs)]
		return event.Activity{Type: event.ActivityListening, Name: "Spotify", Details: s[0], State: s[1]}
	case actWatch:
		return event.Activity{Type: event.ActivityWatching, Name: watchNames[int(idx)%len(watchNames)]}
	}
	return event.Activity{Type: event.ActivityCompeting, Name: "Ranked"}
}
