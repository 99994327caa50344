package main

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func (notifier) ServeHTTP(ctx *plugin.Context, req *plugin.Request) (*plugin.Response, error) {
	switch {
	case req.Method == "GET" && req.Path == "/deliveries":
		return listDeliveries(ctx, req)
	case req.Method == "GET" && strings.HasPrefix(req.Path, "/deliveries/"):
		id := strings.TrimPrefix(req.Path, "/deliveries/")
		v, found, err := ctx.KVGet(dedupKey(id))
		if err != nil {
			return nil, err
		}
		var d *Delivery
		if found {
			if d, err = loadDelivery(ctx, string(v)); err != nil {
				return nil, err
			}
		}
		if d == nil {
			return errorJSON(404, "not_found", "no such delivery (or it left the log)")
		}
		return plugin.JSON(200, d)
	case req.Method == "GET" && req.Path == "/status":
		return status(ctx)
	}
	return errorJSON(404, "not_found", "no such route")
}

// listDeliveries answers the delivery log, newest first, optionally only
// one status (filtered within the page read, so a page may hold fewer).
func listDeliveries(ctx *plugin.Context, req *plugin.Request) (*plugin.Response, error) {
	limit := 50
	if v := first(req.Query["limit"]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return errorJSON(400, "invalid", "limit must be 1 to 200")
		}
		limit = n
	}
	cursor := first(req.Query["cursor"])
	if cursor != "" && !strings.HasPrefix(cursor, "l/") {
		return errorJSON(400, "invalid", "cursor does not belong to this list")
	}
	want := first(req.Query["status"])
	entries, next, err := ctx.KVList("l/", cursor, limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Deliveries []Delivery `json:"deliveries"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}{Deliveries: []Delivery{}, NextCursor: next}
	for _, e := range entries {
		var d Delivery
		if json.Unmarshal(e.Value, &d) != nil || (want != "" && d.Status != want) {
			continue
		}
		out.Deliveries = append(out.Deliveries, d)
	}
	return plugin.JSON(200, out)
}

// status shows the configuration as it applies (webhooks without their
// URLs), rules that cannot fire for lack of a grant, and the queue.
func status(ctx *plugin.Context) (*plugin.Response, error) {
	cfg := loadSettings(ctx)
	type hook struct {
		ID     string `json:"id"`
		Format string `json:"format"`
		Host   string `json:"host"`
	}
	type rule struct {
		ID       string   `json:"id"`
		On       string   `json:"on"`
		Webhooks []string `json:"webhooks"`
		Warning  string   `json:"warning,omitempty"`
	}
	var hooks []hook
	for _, w := range cfg.Webhooks {
		f := w.Format
		if f != FormatSlack {
			f = FormatDiscord
		}
		hooks = append(hooks, hook{w.ID, f, hostOf(w.URL)})
	}
	var rules []rule
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		x := rule{ID: r.ID, On: r.On}
		for _, w := range targets(&cfg, r) {
			x.Webhooks = append(x.Webhooks, w.ID)
		}
		var warn []string
		if need := needs[r.On]; need == "" {
			warn = append(warn, "unknown rule kind "+r.On)
		} else if !ctx.Granted(need) {
			warn = append(warn, need+" is not granted in this guild")
		}
		if len(x.Webhooks) == 0 {
			warn = append(warn, "none of its webhooks is configured")
		}
		if len(warn) > 0 {
			x.Warning = "cannot fire: " + strings.Join(warn, "; ")
		}
		rules = append(rules, x)
	}
	queued, _, err := ctx.KVList("q/", "", 1000)
	if err != nil {
		return nil, err
	}
	return plugin.JSON(200, map[string]any{
		"webhooks": hooks, "rules": rules, "queued": len(queued), "max_attempts": cfg.MaxAttempts,
		"backoff_seconds": cfg.BackoffSecs, "max_age_minutes": cfg.MaxAgeMinutes, "log_days": cfg.LogDays,
		"fetch_granted": ctx.Granted("http.fetch"),
	})
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func errorJSON(status int, code, msg string) (*plugin.Response, error) {
	return plugin.JSON(status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
