// Command hostile is a test plugin that misbehaves on request: each route
// and the configured "on_events" behaviour try one way to hurt the host.
package main

import (
	"os"
	"strings"
	"unsafe"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

type hostile struct{}

var hoard [][]byte

func misbehave(ctx *plugin.Context, how string) (*plugin.Response, error) {
	switch how {
	case "loop":
		for {
		}
	case "exit":
		os.Exit(3)
	case "trap":
		// Write far outside linear memory: a WebAssembly trap, not a Go panic.
		p := (*byte)(unsafe.Pointer(uintptr(0xfffffff0)))
		*p = 1
	case "memory":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "huge-output":
		return &plugin.Response{Status: 200, Body: []byte(strings.Repeat("x", 2<<20))}, nil
	case "panic":
		panic("hostile panics")
	case "kv":
		return &plugin.Response{Status: 200}, ctx.KVSet("k", []byte("v"))
	case "fetch":
		res, err := ctx.Fetch(plugin.FetchRequest{Method: "GET", URL: ctx.ConfigString("url", "http://127.0.0.1/")})
		if err != nil {
			return nil, err
		}
		return &plugin.Response{Status: res.Status, Body: res.Body}, nil
	case "ok":
		return &plugin.Response{Status: 200, Body: []byte("fine")}, nil
	}
	return &plugin.Response{Status: 404}, nil
}

func (hostile) ServeHTTP(ctx *plugin.Context, req *plugin.Request) (*plugin.Response, error) {
	return misbehave(ctx, strings.TrimPrefix(req.Path, "/"))
}

func (hostile) OnEvents(ctx *plugin.Context, events []plugin.Event) error {
	_, err := misbehave(ctx, ctx.ConfigString("on_events", "ok"))
	return err
}

func init() {
	h := hostile{}
	plugin.Register(plugin.Plugin{HTTP: h, Events: h})
}

func main() {}
