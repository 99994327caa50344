package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/pipeline"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

type eventStore interface {
	guildChecker
	ListEvents(ctx context.Context, guildID string, q store.EventQuery) (store.EventPage, error)
}

// Ingester accepts events into the pipeline; *pipeline.Pipeline implements it.
type Ingester interface {
	Offer(ctx context.Context, ev event.Event) (pipeline.Outcome, error)
}

type eventsHandler struct {
	store   eventStore
	ingest  Ingester
	now     func() time.Time
	maxBody int64
	err     errWriter
	// allow checks the caller may write events in a guild (the guilds of
	// an ingest request are in its body).
	allow func(r *http.Request, guild, obj, act string) error
}

// MaxEventsPerRequest bounds one ingest request.
const MaxEventsPerRequest = 10000

// ingestWait is how long one ingest request waits for room in a full queue
// before answering 503.
const ingestWait = 10 * time.Second

func (h *eventsHandler) list(w http.ResponseWriter, r *http.Request) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	p := query(r)
	q := store.EventQuery{
		UserID:  p.snowflake("user"),
		Channel: p.snowflake("channel"),
		From:    p.time("from"),
		To:      p.time("to"),
		Asc:     p.oneOf("order", "desc", "asc", "desc") == "asc",
		Limit:   p.limit(50, 500),
		Cursor:  p.str("cursor", 512),
	}
	for _, v := range r.URL.Query()["kind"] {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k == "" {
				continue
			}
			if !event.Kind(k).Known() {
				p.fail("kind", "unknown kind %q", truncate(k, 40))
				continue
			}
			q.Kinds = append(q.Kinds, event.Kind(k))
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		p.fail("from", "must be before to")
	}
	if err := p.err(); err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := requireGuild(r.Context(), h.store, gid); err != nil {
		h.err.write(w, r, err)
		return
	}
	page, err := h.store.ListEvents(r.Context(), gid, q)
	if err != nil {
		h.err.write(w, r, storeErr(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// ingestResult reports what happened to each event of an ingest request.
type ingestResult struct {
	Received   int `json:"received"`
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Shed       int `json:"shed"`
	// NotCollected counts events the guild's settings or an opt-out drop.
	NotCollected int            `json:"not_collected"`
	Rejected     []rejectedItem `json:"rejected"`
}

type rejectedItem struct {
	Index   int                `json:"index"`
	ID      string             `json:"id,omitempty"`
	Message string             `json:"message"`
	Fields  []event.FieldError `json:"fields,omitempty"`
}

// ingestEvents accepts a JSON array of events, a single event, or NDJSON
// (Content-Type application/x-ndjson). Each event is judged on its own: bad
// ones are listed in "rejected", good ones are queued.
func (h *eventsHandler) ingestEvents(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" && mt != "application/x-ndjson" {
		h.err.write(w, r, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send application/json (an event or an array of events) or application/x-ndjson"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.err.write(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
				Message: fmt.Sprintf("request body over %d bytes; split it into several requests", h.maxBody)})
			return
		}
		h.err.write(w, r, badRequest("could not read the request body"))
		return
	}
	var items []json.RawMessage
	if mt == "application/x-ndjson" {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64<<10), int(h.maxBody))
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				items = append(items, append(json.RawMessage(nil), line...))
			}
		}
	} else {
		trimmed := bytes.TrimSpace(body)
		switch {
		case len(trimmed) > 0 && trimmed[0] == '[':
			if err := json.Unmarshal(trimmed, &items); err != nil {
				h.err.write(w, r, badRequest("body is not a JSON array of events: "+jsonProblem(err)))
				return
			}
		case len(trimmed) > 0 && trimmed[0] == '{':
			items = []json.RawMessage{trimmed}
		default:
			h.err.write(w, r, badRequest("body must be a JSON event object or an array of events"))
			return
		}
	}
	if len(items) == 0 {
		h.err.write(w, r, badRequest("no events in the request"))
		return
	}
	if len(items) > MaxEventsPerRequest {
		h.err.write(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("%d events in one request; at most %d", len(items), MaxEventsPerRequest)})
		return
	}
	if err := h.allowGuilds(r, items); err != nil {
		h.err.write(w, r, err)
		return
	}
	res := ingestResult{Received: len(items), Rejected: []rejectedItem{}}
	ctx, cancel := context.WithTimeout(r.Context(), ingestWait)
	defer cancel()
	for i, raw := range items {
		var ev event.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			res.Rejected = append(res.Rejected, rejectedItem{Index: i, Message: jsonProblem(err)})
			continue
		}
		out, err := h.ingest.Offer(ctx, ev)
		var ve *event.ValidationError
		switch {
		case errors.As(err, &ve):
			res.Rejected = append(res.Rejected, rejectedItem{Index: i, ID: ev.ID, Message: "invalid event", Fields: ve.Fields})
			continue
		case err != nil:
			// Full queue for too long, or shutting down: tell the client which
			// events made it so it can resend the rest (duplicates are dropped).
			e := &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: fmt.Sprintf("ingest is overloaded or shutting down; events from index %d on were not accepted, resend them", i),
				Details: res}
			if errors.Is(err, pipeline.ErrClosed) {
				e.Message = fmt.Sprintf("the server is shutting down; events from index %d on were not accepted", i)
			}
			w.Header().Set("Retry-After", "5")
			h.err.write(w, r, e)
			return
		}
		switch out {
		case pipeline.Queued:
			res.Accepted++
		case pipeline.Duplicate:
			res.Duplicates++
		case pipeline.Shed:
			res.Shed++
		case pipeline.NotCollected:
			res.NotCollected++
		}
	}
	if len(res.Rejected) == len(items) {
		first := res.Rejected[0]
		h.err.write(w, r, &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_events",
			Message: fmt.Sprintf("all %d events were rejected; the first (index %d): %s", len(items), first.Index, describe(first)),
			Fields:  first.Fields, Details: res})
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

// allowGuilds checks, before anything is queued, that the caller may
// ingest into every guild the events name: one forbidden guild refuses the
// whole request.
func (h *eventsHandler) allowGuilds(r *http.Request, items []json.RawMessage) error {
	seen := map[string]bool{}
	for _, raw := range items {
		var head struct {
			GuildID string `json:"guild_id"`
		}
		if json.Unmarshal(raw, &head) != nil || seen[head.GuildID] || !event.IsSnowflake(head.GuildID) {
			continue // malformed events are rejected one by one below
		}
		seen[head.GuildID] = true
		if err := h.allow(r, head.GuildID, "events", "write"); err != nil {
			return err
		}
	}
	return nil
}

func describe(it rejectedItem) string {
	if len(it.Fields) == 0 {
		return it.Message
	}
	return (&event.ValidationError{Fields: it.Fields}).Error()
}

// jsonProblem words a decoding error without Go type names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type: want %s, got JSON %s", typ.Field, typ.Type.Kind(), typ.Value)
	}
	return err.Error()
}
