package main

import (
	"strconv"
	"strings"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

const (
	defaultLimit = 50
	maxLimit     = 200
)

// page is what the list routes answer.
type page struct {
	Messages []*Record `json:"messages"`
	// NextCursor, when set, is passed as ?cursor= for the next page.
	NextCursor     string `json:"next_cursor,omitempty"`
	ContentGranted bool   `json:"content_granted"`
	ContentNote    string `json:"content_note,omitempty"`
}

func (logger) ServeHTTP(ctx *plugin.Context, req *plugin.Request) (*plugin.Response, error) {
	if req.Method != "GET" {
		return errorJSON(405, "method_not_allowed", "only GET")
	}
	parts := strings.Split(strings.Trim(req.Path, "/"), "/")
	switch {
	case req.Path == "/status":
		cfg := loadSettings(ctx)
		ignored := make([]string, 0, len(cfg.ignoreChannels))
		for c := range cfg.ignoreChannels {
			ignored = append(ignored, c)
		}
		return plugin.JSON(200, map[string]any{
			"retention_days": cfg.retention.Hours() / 24, "keep_content": cfg.keepContent,
			"content_granted": ctx.Granted(PermContent), "content_note": contentNote(ctx, cfg),
			"ignore_channels": ignored, "ignore_bots": cfg.ignoreBots, "max_edits": cfg.maxEdits,
		})
	case len(parts) == 3 && parts[0] == "channels" && parts[2] == "messages":
		if !event.IsSnowflake(parts[1]) {
			return errorJSON(400, "invalid", "channel must be a Discord ID")
		}
		return list(ctx, req, channelPrefix(parts[1]), false)
	case len(parts) == 4 && parts[0] == "channels" && parts[2] == "messages":
		if !event.IsSnowflake(parts[1]) || !event.IsSnowflake(parts[3]) {
			return errorJSON(400, "invalid", "channel and message must be Discord IDs")
		}
		id, _ := strconv.ParseUint(parts[3], 10, 64)
		r, err := (&store{ctx: ctx}).get(recordKey(parts[1], id))
		if err != nil {
			return nil, err
		}
		if r == nil {
			return errorJSON(404, "not_found", "no such message in the log (never seen, or purged)")
		}
		return plugin.JSON(200, r)
	case req.Path == "/edited":
		return list(ctx, req, "e/", true)
	case req.Path == "/deleted":
		return list(ctx, req, "d/", true)
	}
	return errorJSON(404, "not_found", "no such route")
}

// list answers one page of records under prefix; with indirect, the
// entries hold record keys rather than records.
func list(ctx *plugin.Context, req *plugin.Request, prefix string, indirect bool) (*plugin.Response, error) {
	limit := defaultLimit
	if v := first(req.Query["limit"]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return errorJSON(400, "invalid", "limit must be 1 to "+strconv.Itoa(maxLimit))
		}
		limit = n
	}
	cursor := first(req.Query["cursor"])
	if cursor != "" && !strings.HasPrefix(cursor, prefix) {
		return errorJSON(400, "invalid", "cursor does not belong to this list")
	}
	entries, next, err := ctx.KVList(prefix, cursor, limit)
	if err != nil {
		return nil, err
	}
	st := &store{ctx: ctx}
	out := page{Messages: make([]*Record, 0, len(entries)), NextCursor: next, ContentGranted: ctx.Granted(PermContent),
		ContentNote: contentNote(ctx, loadSettings(ctx))}
	for _, e := range entries {
		var r *Record
		if indirect {
			if r, err = st.get(string(e.Value)); err != nil {
				return nil, err
			}
		} else {
			r = &Record{}
			if jsonErr := unmarshal(e.Value, r); jsonErr != nil {
				r = nil
			}
		}
		if r != nil {
			out.Messages = append(out.Messages, r)
		}
	}
	return plugin.JSON(200, out)
}

// contentNote says why texts are missing, if they are.
func contentNote(ctx *plugin.Context, cfg settings) string {
	switch {
	case !ctx.Granted(PermContent):
		return "message content is not granted (message.content.read): only metadata is logged — author, times, length, attachments, edits and deletions"
	case !cfg.keepContent:
		return "this guild's configuration does not keep message content (keep_content is false): only metadata is logged"
	}
	return ""
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
