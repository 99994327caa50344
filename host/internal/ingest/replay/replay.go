// Package replay feeds a recorded JSONL file into an ingest.Sink. A line is
// either an event envelope (an object with "kind") or a raw Discord gateway
// dispatch ({"t":…,"s":…,"op":0,"d":{…},"at":…}) that goes through the same
// discord.Normalizer the live gateway uses, so a recording replays into the
// events, and event IDs, the live run produced. Because IDs are
// deterministic, replaying a file twice delivers nothing new the second time.
package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/term"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// MaxLineBytes is the longest line replay reads, not counting its final
// "\n". A longer line is counted as malformed and skipped: the largest
// real dispatch, a GUILD_CREATE of a big guild, stays well below it because
// Discord then sends members in chunks.
const MaxLineBytes = 1 << 20

// MaxProblems is how many malformed or rejected lines Stats.Problems keeps.
const MaxProblems = 20

// Options configure Run. The zero value is usable.
type Options struct {
	// Normalizer converts dispatch lines; nil means a fresh one without a
	// RoleLookup.
	Normalizer *discord.Normalizer
	// FallbackTime is the receive time of dispatch lines without "at", which
	// becomes Event.At of every event not timed by Discord itself (presence,
	// member, voice, guild, ...). Zero means the Discord epoch,
	// 2015-01-01T00:00:00Z, which makes such events recognisably undated.
	// Event IDs do not depend on it (see discord.Dispatch.RecordedAt).
	FallbackTime time.Time
	// Progress, if not nil, receives a progress line about every 500 ms and
	// once at the end, each overwriting the last with "\r". Use it only for
	// a terminal (see IsTerminal).
	Progress io.Writer
	// Total is the input's size in bytes for the percentage and ETA of the
	// progress line; 0 if unknown.
	Total int64
	// Now is the clock for Duration and progress; nil means time.Now.
	Now func() time.Time
}

// Stats counts what a replay did.
type Stats struct {
	Lines     int64 // lines read, blank ones included
	Bytes     int64 // bytes read
	Submitted int64 // events the sink accepted
	Rejected  int64 // events the sink rejected as invalid
	Malformed int64 // lines that were not a valid envelope or dispatch
	Skipped   int64 // dispatches that produced no event (DMs, unhandled types, non-dispatch ops)
	Duration  time.Duration
	// Problems holds the first MaxProblems malformed or rejected lines.
	Problems []Problem
}

// Problem is one malformed or rejected line.
type Problem struct {
	Line     int64  // 1-based line number
	Rejected bool   // the sink rejected the event; otherwise the line was malformed
	Reason   string // what was wrong
}

func (p Problem) String() string {
	what := "malformed"
	if p.Rejected {
		what = "rejected"
	}
	return "line " + strconv.FormatInt(p.Line, 10) + ": " + what + ": " + p.Reason
}

// IsTerminal reports whether f is a terminal, so that a command shows
// progress only to a person watching and not in logs or pipes.
func IsTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// Run reads JSONL from r and submits every event to sink until r ends.
//
// Malformed lines and events the sink rejects (an error wrapping
// *event.ValidationError) are counted and replay goes on; any other sink
// error, a failing RoleLookup, a read error or ctx ending stops replay and is
// returned together with the Stats so far.
func Run(ctx context.Context, r io.Reader, sink ingest.Sink, opts Options) (Stats, error) {
	rp := &run{sink: sink, norm: opts.Normalizer, fallback: opts.FallbackTime}
	if rp.norm == nil {
		rp.norm = discord.NewNormalizer(nil)
	}
	if rp.fallback.IsZero() {
		rp.fallback = time.UnixMilli(event.DiscordEpoch).UTC()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	var prog *progress
	if opts.Progress != nil {
		prog = newProgress(opts.Progress, opts.Total, start)
	}
	err := rp.read(ctx, r, func() {
		if prog != nil {
			prog.tick(&rp.st, now())
		}
	})
	end := now()
	rp.st.Duration = end.Sub(start)
	if prog != nil {
		prog.finish(&rp.st, end)
	}
	return rp.st, err
}

// run is the state of one Run.
type run struct {
	sink     ingest.Sink
	norm     *discord.Normalizer
	fallback time.Time
	st       Stats
}

// read splits r into lines and handles each; after calls after every line.
func (rp *run) read(ctx context.Context, r io.Reader, after func()) error {
	// The buffer holds a whole line of MaxLineBytes plus its "\n", so
	// ReadSlice hands out lines without copying them.
	br := bufio.NewReaderSize(r, MaxLineBytes+1)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("replay: line %d: %w", rp.st.Lines+1, err)
		}
		line, err := br.ReadSlice('\n')
		n := int64(len(line))
		tooLong := errors.Is(err, bufio.ErrBufferFull)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n') // drop the rest of the line
			n += int64(len(line))
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("replay: read line %d: %w", rp.st.Lines+1, err)
		}
		if n > 0 {
			rp.st.Lines++
			rp.st.Bytes += n
			if tooLong {
				rp.malformed(fmt.Sprintf("longer than %d bytes", MaxLineBytes))
			} else if herr := rp.line(ctx, line); herr != nil {
				return herr
			}
			after()
		}
		if err == io.EOF {
			return nil
		}
	}
}

// lineShape holds the fields that tell an envelope from a dispatch. Decoding
// d as RawMessage keeps dispatch lines to one full decode (d's, by the
// Normalizer); envelopes are decoded a second time by event.Event.
type lineShape struct {
	Kind string          `json:"kind"`
	T    string          `json:"t"`
	S    *int64          `json:"s"`
	Op   *int            `json:"op"`
	D    json.RawMessage `json:"d"`
	At   string          `json:"at"`
}

// line handles one line; it returns an error only when replay must stop.
func (rp *run) line(ctx context.Context, b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	var sh lineShape
	if err := json.Unmarshal(b, &sh); err != nil {
		rp.malformed("bad JSON: " + err.Error())
		return nil
	}
	switch {
	case sh.Kind != "" && (sh.T != "" || sh.Op != nil):
		rp.malformed(`both "kind" and "t"/"op": neither an event nor a dispatch`)
		return nil
	case sh.Kind != "":
		var ev event.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			rp.malformed("bad event: " + err.Error())
			return nil
		}
		return rp.submit(ctx, ev)
	case sh.Op != nil && *sh.Op != 0:
		// Recordings of the raw gateway stream also hold hellos, heartbeats
		// and their acks; they carry no events.
		rp.st.Skipped++
		return nil
	case sh.T != "":
		return rp.dispatch(ctx, &sh)
	}
	rp.malformed(`neither an event ("kind") nor a gateway dispatch ("t")`)
	return nil
}

func (rp *run) dispatch(ctx context.Context, sh *lineShape) error {
	d := discord.Dispatch{Type: sh.T, Data: sh.D}
	if sh.S != nil {
		d.Seq = *sh.S
	}
	at := rp.fallback
	if sh.At != "" {
		t, err := time.Parse(time.RFC3339Nano, sh.At)
		if err != nil {
			rp.malformed("bad at: " + err.Error())
			return nil
		}
		d.RecordedAt, at = t, t
	}
	res, err := rp.norm.Normalize(ctx, d, at)
	if err != nil {
		var me *discord.MalformedError
		if errors.As(err, &me) {
			rp.malformed(me.Error())
			return nil
		}
		return fmt.Errorf("replay: line %d: %w", rp.st.Lines, err)
	}
	if len(res.Events) == 0 {
		rp.st.Skipped++
		return nil
	}
	for _, ev := range res.Events {
		if err := rp.submit(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

func (rp *run) submit(ctx context.Context, ev event.Event) error {
	err := rp.sink.Submit(ctx, ev)
	if err == nil {
		rp.st.Submitted++
		return nil
	}
	var ve *event.ValidationError
	if errors.As(err, &ve) {
		rp.st.Rejected++
		rp.problem(true, err.Error())
		return nil
	}
	return fmt.Errorf("replay: line %d: %w", rp.st.Lines, err)
}

func (rp *run) malformed(reason string) {
	rp.st.Malformed++
	rp.problem(false, reason)
}

func (rp *run) problem(rejected bool, reason string) {
	if len(rp.st.Problems) < MaxProblems {
		rp.st.Problems = append(rp.st.Problems, Problem{Line: rp.st.Lines, Rejected: rejected, Reason: reason})
	}
}
