package main

import (
	"encoding/json"
	"strings"
	"time"
)

// Formats of webhook bodies.
const (
	FormatDiscord = "discord"
	FormatSlack   = "slack"
)

// render builds the JSON body for a webhook of format.
func render(format string, n *Notice, guild string) ([]byte, error) {
	if format == FormatSlack {
		return json.Marshal(slackBody(n, guild))
	}
	return json.Marshal(discordBody(n, guild))
}

type discordEmbed struct {
	Title     string         `json:"title"`
	Color     int            `json:"color"`
	Timestamp string         `json:"timestamp"`
	Fields    []discordField `json:"fields"`
	Footer    struct {
		Text string `json:"text"`
	} `json:"footer"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// colors per rule kind: red for bans, amber for scores and multi-client,
// blue for the rest.
func color(on string) int {
	switch on {
	case OnBanAdd:
		return 0xE74C3C
	case OnScore, OnMultiClient, OnMemberJoin:
		return 0xF39C12
	}
	return 0x3498DB
}

// discordBody is Discord's execute-webhook body. Mentions render as names
// but allowed_mentions forbids pinging anyone.
func discordBody(n *Notice, guild string) any {
	e := discordEmbed{Title: n.Title, Color: color(n.On), Timestamp: n.At.UTC().Format(time.RFC3339)}
	e.Footer.Text = "Spywatcher · rule " + n.Rule + " · guild " + guild
	for _, f := range n.Fields {
		v := discordEscape(f.Value)
		switch {
		case f.User != "":
			v = "<@" + f.User + "> " + v
		case f.Role != "":
			v = "<@&" + f.Role + ">"
		}
		e.Fields = append(e.Fields, discordField{Name: f.Name, Value: clip(v, 1024), Inline: len(v) < 40})
	}
	return map[string]any{
		"content":          clip(discordEscape(n.Summary()), 2000),
		"embeds":           []discordEmbed{e},
		"allowed_mentions": map[string]any{"parse": []string{}},
	}
}

// slackBody is Slack's incoming-webhook body.
func slackBody(n *Notice, guild string) any {
	var lines []string
	for _, f := range n.Fields {
		lines = append(lines, "*"+slackEscape(f.Name)+":* "+slackEscape(f.Value))
	}
	return map[string]any{
		"text": clip(slackEscape(n.Summary()), 3000),
		"blocks": []any{
			map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": clip(n.Title, 150)}},
			map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": clip(strings.Join(lines, "\n"), 3000)}},
			map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn",
				"text": "Spywatcher · rule " + slackEscape(n.Rule) + " · guild " + guild + " · " + n.At.UTC().Format(time.RFC3339)}}},
		},
	}
}

var discordEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "~", `\~`, "`", "\\`", "|", `\|`, ">", `\>`, "@", "@\u200b")

// discordEscape keeps names and reasons from being read as markdown or
// mentions.
func discordEscape(s string) string { return discordEscaper.Replace(s) }

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string { return slackEscaper.Replace(s) }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n-3])
	return string(r[:len(r)-1]) + "…"
}
