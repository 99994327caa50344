// Command first-message measures how long newcomers take to say their first
// word: the time from a member's join to their first message, as a
// histogram a community can watch to judge its onboarding. Members still
// silent after silent_after_hours (default 24) are flagged once to the
// dashboards, from the tick hook.
//
// The same source builds to WebAssembly (GOOS=wasip1 GOARCH=wasm
// go build -buildmode=c-shared) and to a process plugin
// (go build -tags spywatcher_process).
package main

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// buckets are the histogram's upper bounds, in seconds.
var buckets = []struct {
	name  string
	upper int64
}{{"under_1m", 60}, {"under_10m", 600}, {"under_1h", 3600}, {"under_1d", 86400}, {"later", 1 << 62}}

type firstMessage struct{}

// Keys: joined:<user> = join time (Unix ms) while the member has not
// spoken; flagged:<user> once flagged silent; bucket:<name>, count and
// sum_seconds for the histogram.

func (firstMessage) OnEvents(ctx *plugin.Context, events []plugin.Event) error {
	for i := range events {
		ev := &events[i]
		user := ev.UserID()
		switch ev.Kind() {
		case event.KindMemberJoin:
			d, err := ev.Data()
			if err != nil {
				return err
			}
			if j, ok := d.(*event.MemberJoin); ok && (j.Backfill || (j.User != nil && j.User.Bot)) {
				continue // not a newcomer, or not a person
			}
			if err := ctx.KVSet("joined:"+user, []byte(strconv.FormatInt(ev.AtMillis(), 10))); err != nil {
				return err
			}
		case event.KindMemberLeave:
			if _, found, err := ctx.KVGet("joined:" + user); err != nil {
				return err
			} else if found {
				if err := forget(ctx, user); err != nil {
					return err
				}
				if err := add(ctx, "left_silent", 1); err != nil {
					return err
				}
			}
		case event.KindMessageCreate:
			v, found, err := ctx.KVGet("joined:" + user)
			if err != nil {
				return err
			}
			if !found {
				continue // not a newcomer, or not their first message
			}
			joined, _ := strconv.ParseInt(string(v), 10, 64)
			secs := max(0, (ev.AtMillis()-joined)/1000)
			if err := record(ctx, secs); err != nil {
				return err
			}
			if err := forget(ctx, user); err != nil {
				return err
			}
			if err := ctx.Emit("first_message", map[string]any{"user_id": user, "seconds": secs}); err != nil && !plugin.IsDenied(err) {
				return err
			}
		}
	}
	return nil
}

func forget(ctx *plugin.Context, user string) error {
	if err := ctx.KVDelete("joined:" + user); err != nil {
		return err
	}
	return ctx.KVDelete("flagged:" + user)
}

func record(ctx *plugin.Context, secs int64) error {
	for _, b := range buckets {
		if secs < b.upper {
			if err := add(ctx, "bucket:"+b.name, 1); err != nil {
				return err
			}
			break
		}
	}
	if err := add(ctx, "count", 1); err != nil {
		return err
	}
	return add(ctx, "sum_seconds", secs)
}

func get(ctx *plugin.Context, key string) (int64, error) {
	v, _, err := ctx.KVGet(key)
	if err != nil {
		return 0, err
	}
	n, _ := strconv.ParseInt(string(v), 10, 64)
	return n, nil
}

func add(ctx *plugin.Context, key string, delta int64) error {
	n, err := get(ctx, key)
	if err != nil {
		return err
	}
	return ctx.KVSet(key, []byte(strconv.FormatInt(n+delta, 10)))
}

func (firstMessage) ServeHTTP(ctx *plugin.Context, req *plugin.Request) (*plugin.Response, error) {
	if req.Path != "/stats" {
		return &plugin.Response{Status: 404}, nil
	}
	out := map[string]any{}
	hist := map[string]int64{}
	for _, b := range buckets {
		n, err := get(ctx, "bucket:"+b.name)
		if err != nil {
			return nil, err
		}
		hist[b.name] = n
	}
	count, err := get(ctx, "count")
	if err != nil {
		return nil, err
	}
	sum, _ := get(ctx, "sum_seconds")
	left, _ := get(ctx, "left_silent")
	waiting, _, err := ctx.KVList("joined:", "", 1000)
	if err != nil {
		return nil, err
	}
	out["count"], out["histogram"], out["left_silent"], out["still_silent"] = count, hist, left, len(waiting)
	if count > 0 {
		out["mean_seconds"] = sum / count
	}
	return plugin.JSON(200, out)
}

// Tick flags members silent for longer than silent_after_hours, once each.
func (firstMessage) Tick(ctx *plugin.Context, now time.Time) error {
	limit := time.Duration(ctx.ConfigFloat("silent_after_hours", 24) * float64(time.Hour))
	waiting, _, err := ctx.KVList("joined:", "", 1000)
	if err != nil {
		return err
	}
	for _, e := range waiting {
		user := e.Key[len("joined:"):]
		ms, _ := strconv.ParseInt(string(e.Value), 10, 64)
		if now.Sub(time.UnixMilli(ms)) < limit {
			continue
		}
		if _, flagged, err := ctx.KVGet("flagged:" + user); err != nil || flagged {
			return err
		}
		data, _ := json.Marshal(map[string]any{"user_id": user, "joined_at": time.UnixMilli(ms).UTC()})
		if err := ctx.Emit("silent_newcomer", json.RawMessage(data)); err != nil && !plugin.IsDenied(err) {
			return err
		}
		if err := ctx.KVSet("flagged:"+user, []byte("1")); err != nil {
			return err
		}
	}
	return nil
}

func (firstMessage) DeleteUser(ctx *plugin.Context, userID string) error { return forget(ctx, userID) }

func init() {
	p := firstMessage{}
	plugin.Register(plugin.Plugin{Events: p, HTTP: p, Tick: p, DeleteUser: p})
}

func main() {}
