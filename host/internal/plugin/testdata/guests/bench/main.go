// Command bench is the plugin the benchmarks run: it counts the events it
// receives per kind and per user in memory, the least a real plugin does.
package main

import (
	"strconv"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

type bench struct {
	kinds map[string]int
	users map[uint64]int
}

func (b *bench) OnEvents(ctx *plugin.Context, events []plugin.Event) error {
	switch ctx.ConfigString("mode", mode) {
	case "noop":
		return nil
	case "kinds":
		for i := range events {
			b.kinds[string(events[i].Kind())]++
		}
		return nil
	}
	for i := range events {
		b.kinds[string(events[i].Kind())]++
		b.users[events[i].User()]++
	}
	return nil
}

var mode string

func (b *bench) ServeHTTP(ctx *plugin.Context, req *plugin.Request) (*plugin.Response, error) {
	if req.Path == "/ping" {
		return &plugin.Response{Status: 200}, nil
	}
	return &plugin.Response{Status: 200, Body: []byte(strconv.Itoa(b.kinds["presence.update"]))}, nil
}

func init() {
	b := &bench{kinds: map[string]int{}, users: map[uint64]int{}}
	plugin.Register(plugin.Plugin{Events: b, HTTP: b})
}

func main() {}
