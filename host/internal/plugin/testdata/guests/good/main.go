// Command good is a well-behaved test plugin: it counts the events it
// receives per kind in its key-value store, serves the counts and a few
// probes of host functions through its routes, and scores members by their
// message count.
package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

type good struct{}

func (good) OnEvents(ctx *plugin.Context, events []plugin.Event) error {
	counts := map[string]int{}
	for _, ev := range events {
		counts[string(ev.Kind())]++
		if ev.Kind() == "message.create" {
			d, err := ev.Data()
			if err != nil {
				return err
			}
			b, _ := json.Marshal(d)
			if err := ctx.KVSet("last-message", b); err != nil {
				return err
			}
		}
	}
	for kind, n := range counts {
		v, _, err := ctx.KVGet("count:" + kind)
		if err != nil {
			return err
		}
		old, _ := strconv.Atoi(string(v))
		if err := ctx.KVSet("count:"+kind, []byte(strconv.Itoa(old+n))); err != nil {
			return err
		}
	}
	return ctx.Count("batches", 1)
}

func (good) ServeHTTP(ctx *plugin.Context, req *plugin.Request) (*plugin.Response, error) {
	switch req.Path {
	case "/counts":
		entries, _, err := ctx.KVList("count:", "", 100)
		if err != nil {
			return nil, err
		}
		out := map[string]int{}
		for _, e := range entries {
			out[e.Key[len("count:"):]], _ = strconv.Atoi(string(e.Value))
		}
		return plugin.JSON(200, map[string]any{"guild": ctx.GuildID(), "counts": out, "greeting": ctx.ConfigString("greeting", "hello")})
	case "/last-message":
		v, found, err := ctx.KVGet("last-message")
		if err != nil {
			return nil, err
		}
		if !found {
			return &plugin.Response{Status: 404}, nil
		}
		return &plugin.Response{Status: 200, Body: v}, nil
	case "/fetch":
		res, err := ctx.Fetch(plugin.FetchRequest{Method: "GET", URL: req.Query["url"][0]})
		if err != nil {
			return plugin.JSON(502, map[string]string{"error": err.Error()})
		}
		return plugin.JSON(200, map[string]any{"status": res.Status, "body": string(res.Body)})
	case "/member":
		m, err := ctx.Member(req.Query["user"][0])
		if err != nil {
			return plugin.JSON(502, map[string]string{"error": err.Error()})
		}
		return plugin.JSON(200, m)
	case "/emit":
		if err := ctx.Emit("test.ping", map[string]string{"from": "good"}); err != nil {
			return plugin.JSON(502, map[string]string{"error": err.Error()})
		}
		return &plugin.Response{Status: 204}, nil
	case "/print":
		fmt.Println("printed by good")
		return &plugin.Response{Status: 204}, nil
	case "/log":
		return &plugin.Response{Status: 204}, ctx.Log("info", "hello from good", map[string]any{"n": 1})
	case "/kv-denied":
		err := ctx.KVSet("x", []byte("y"))
		return plugin.JSON(200, map[string]any{"denied": plugin.IsDenied(err), "error": fmt.Sprint(err)})
	}
	return &plugin.Response{Status: 404}, nil
}

func (good) Tick(ctx *plugin.Context, now time.Time) error {
	v, _, err := ctx.KVGet("ticks")
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(string(v))
	return ctx.KVSet("ticks", []byte(strconv.Itoa(n+1)))
}

func (good) DeleteUser(ctx *plugin.Context, userID string) error {
	return ctx.KVDelete("user:" + userID)
}

func (good) Score(ctx *plugin.Context, req plugin.ScoreRequest) (plugin.ScoreResponse, error) {
	var res plugin.ScoreResponse
	for _, m := range req.Members {
		s := float64(min(m.Messages, 100))
		res.Scores = append(res.Scores, plugin.Score{UserID: m.UserID, Score: s,
			Factors:     []plugin.Factor{{Name: "messages", Contribution: s}},
			Explanation: fmt.Sprintf("%d messages", m.Messages)})
	}
	return res, nil
}

func init() {
	g := good{}
	plugin.Register(plugin.Plugin{Events: g, HTTP: g, Tick: g, DeleteUser: g, Score: g})
}

func main() {}
