// Command webhook-notifier is a Spywatcher plugin that watches a guild's
// events for the rules its admins configure — a ban, a role granted, a
// login on several clients at once, a member's score reaching a threshold,
// a new account joining — and posts a Discord- or Slack-compatible message
// to the configured webhooks through the host's allow-listed outbound HTTP,
// with retries and exponential backoff, deduplication and a delivery log.
// README.md defines exactly what it does.
//
// It uses only the SDK's public API, so the same source can run as a
// WebAssembly module or as a process plugin.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm . (or make plugins)
package main

import "github.com/spywatcher/spywatcher/sdk/go/plugin"

func init() {
	n := notifier{}
	plugin.Register(plugin.Plugin{Events: n, HTTP: n, Tick: n, DeleteUser: n})
}

func main() {}
