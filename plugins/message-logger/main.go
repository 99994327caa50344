// Command message-logger is a Spywatcher plugin that keeps a per-guild log
// of messages: creations, every edit (with the text before and after when
// message.content.read is granted) and deletions, in the plugin's own
// key-value storage, purged after the guild's retention. Moderators browse
// it through the plugin's routes. README.md defines exactly what it stores
// and serves; keys.go documents the storage layout.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm . (or make plugins)
package main

import "github.com/spywatcher/spywatcher/sdk/go/plugin"

func init() {
	l := logger{}
	plugin.Register(plugin.Plugin{Events: l, HTTP: l, Tick: l, DeleteUser: l})
}

func main() {}
