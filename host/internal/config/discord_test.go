package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDiscordSettings(t *testing.T) {
	c, _, err := Load("serve", []string{"--discord-shards", "4-6, 0,5", "--discord-guilds", "41771983423143937, 41771983423143938"},
		env(map[string]string{"SPYWATCHER_DISCORD_TOKEN": "MTEw.Gx.secret-part", "SPYWATCHER_DISCORD_SHARD_COUNT": "8"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DiscordToken != "MTEw.Gx.secret-part" || c.DiscordShardCount != 8 || c.DiscordLeaseTTL != 30*time.Second ||
		c.DiscordAPIURL != "https://discord.com/api/v9" {
		t.Fatalf("config %+v", c)
	}
	if !slices.Equal(c.DiscordShards, []int{0, 4, 5, 6}) {
		t.Fatalf("shards %v", c.DiscordShards)
	}
	if !slices.Equal(c.DiscordGuilds, []string{"41771983423143937", "41771983423143938"}) {
		t.Fatalf("guilds %v", c.DiscordGuilds)
	}
	dump := fmt.Sprint(c.Dump()...)
	if strings.Contains(dump, "secret-part") || !strings.Contains(dump, "0,4,5,6") {
		t.Fatalf("dump: %s", dump)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--discord-shards", "3-1"}, "shard ID or range"},
		{[]string{"--discord-shards", "x"}, "shard ID or range"},
		{[]string{"--discord-guilds", "general"}, "not a Discord guild ID"},
		{[]string{"--discord-shard-count", "-1"}, "discord-shard-count"},
		{[]string{"--discord-api-url", "discord.com"}, "http"},
		{[]string{"--discord-token", "Bot two words"}, "bot token alone"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := Load("serve", tt.args, env(nil), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
