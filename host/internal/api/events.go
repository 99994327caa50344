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
	// OfferStored queues ev and returns an Ack that resolves once it is
	// stored (POST /api/v1/events?wait=stored).
	OfferStored(ctx context.Context, ev event.Event) (pipeline.Outcome, pipeline.Ack, error)
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

// storeWait is how long a ?wait=stored request waits for its events to be
// committed before answering 503 with the ones that were not (well inside
// the server's 60 s write timeout).
const storeWait = 30 * time.Second

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
	// With ?wait=stored: events confirmed stored (now or before), and the
	// indexes of valid events that were not (resend them).
	Stored    *int  `json:"stored,omitempty"`
	NotStored []int `json:"not_stored,omitempty"`
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
//
// By default it answers 202 once the events are queued: a process killed
// before the batch is stored loses them. With ?wait=stored it answers 200
// only after every accepted event is committed to the store, or 503 with
// the indexes of the events that were not ("not_stored") — a client that
// resends what was not acknowledged (event IDs make that idempotent) then
// loses nothing whichever instance dies.
func (h *eventsHandler) ingestEvents(w http.ResponseWriter, r *http.Request) {
	var durable bool
	switch v := r.URL.Query().Get("wait"); v {
	case "", "queued":
	case "stored":
		durable = true
	default:
		h.err.write(w, r, &Error{Status: http.StatusBadRequest, Code: "bad_request",
			Message: "wait must be queued (the default: answer once queued) or stored (answer once stored)",
			Fields:  []event.FieldError{{Field: "wait", Message: fmt.Sprintf("unknown value %q", truncate(v, 40))}}})
		return
	}
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
	type pending struct {
		index int
		ack   pipeline.Ack
	}
	var acks []pending
	var offerErr error
	failedAt := len(items)
	for i, raw := range items {
		var ev event.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			res.Rejected = append(res.Rejected, rejectedItem{Index: i, Message: jsonProblem(err)})
			continue
		}
		var out pipeline.Outcome
		var ack pipeline.Ack
		var err error
		if durable {
			out, ack, err = h.ingest.OfferStored(ctx, ev)
		} else {
			out, err = h.ingest.Offer(ctx, ev)
		}
		var ve *event.ValidationError
		switch {
		case errors.As(err, &ve):
			res.Rejected = append(res.Rejected, rejectedItem{Index: i, ID: ev.ID, Message: "invalid event", Fields: ve.Fields})
			continue
		case err != nil:
			offerErr, failedAt = err, i
		}
		if offerErr != nil {
			break
		}
		switch out {
		case pipeline.Queued:
			res.Accepted++
			if durable {
				acks = append(acks, pending{i, ack})
			}
		case pipeline.Duplicate:
			res.Duplicates++
		case pipeline.Shed:
			res.Shed++
		case pipeline.NotCollected:
			res.NotCollected++
		}
	}
	if durable {
		// Wait for the commits even when queueing failed part way: the
		// client learns exactly which events to resend.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeWait)
		defer cancel()
		stored := 0
		res.NotStored = []int{}
		for _, p := range acks {
			if err := p.ack.Wait(wctx); err != nil {
				res.NotStored = append(res.NotStored, p.index)
				continue
			}
			stored++
		}
		res.Stored = &stored
		if offerErr != nil {
			for i := failedAt; i < len(items); i++ {
				res.NotStored = append(res.NotStored, i)
			}
		}
		if len(res.NotStored) > 0 {
			e := &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: fmt.Sprintf("%d events were not stored (indexes in details.not_stored); resend them — event IDs make resending safe", len(res.NotStored)),
				Details: res}
			if errors.Is(offerErr, pipeline.ErrClosed) {
				e.Message = "the server is shutting down; " + e.Message
			}
			w.Header().Set("Retry-After", "5")
			h.err.write(w, r, e)
			return
		}
	}
	if offerErr != nil {
		// Full queue for too long, or shutting down: tell the client which
		// events made it so it can resend the rest (duplicates are dropped).
		e := &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: fmt.Sprintf("ingest is overloaded or shutting down; events from index %d on were not accepted, resend them", failedAt),
			Details: res}
		if errors.Is(offerErr, pipeline.ErrClosed) {
			e.Message = fmt.Sprintf("the server is shutting down; events from index %d on were not accepted", failedAt)
		}
		w.Header().Set("Retry-After", "5")
		h.err.write(w, r, e)
		return
	}
	if len(res.Rejected) == len(items) {
		first := res.Rejected[0]
		h.err.write(w, r, &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_events",
			Message: fmt.Sprintf("all %d events were rejected; the first (index %d): %s", len(items), first.Index, describe(first)),
			Fields:  first.Fields, Details: res})
		return
	}
	if durable {
		writeJSON(w, http.StatusOK, res)
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
