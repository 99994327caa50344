package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/host/internal/ingest/discord"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// collector is a sink that validates like the pipeline does and keeps what
// it accepts.
type collector struct{ evs []event.Event }

func (c *collector) Submit(_ context.Context, ev event.Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	c.evs = append(c.evs, ev)
	return nil
}

func (c *collector) ids() []string {
	var out []string
	for _, ev := range c.evs {
		out = append(out, ev.ID)
	}
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunMixed(t *testing.T) {
	var sink collector
	st, err := Run(context.Background(), bytes.NewReader(readFile(t, "testdata/mixed.jsonl")), &sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Lines: 16, Submitted: 7, Rejected: 1, Malformed: 5, Skipped: 2}
	got := st
	got.Bytes, got.Duration, got.Problems = 0, 0, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	if size := int64(len(readFile(t, "testdata/mixed.jsonl"))); st.Bytes != size {
		t.Errorf("bytes = %d, want %d", st.Bytes, size)
	}

	wantProblems := []struct {
		line     int64
		rejected bool
		reason   string
	}{
		{5, false, "malformed PRESENCE_UPDATE: missing user.id"},
		{6, false, "bad JSON"},
		{7, false, "neither an event"},
		{10, true, "guild_id"},
		{13, false, `unknown kind "nope.nope"`},
		{14, false, "bad at"},
	}
	if len(st.Problems) != len(wantProblems) {
		t.Fatalf("problems = %v", st.Problems)
	}
	for i, w := range wantProblems {
		p := st.Problems[i]
		if p.Line != w.line || p.Rejected != w.rejected || !strings.Contains(p.Reason, w.reason) {
			t.Errorf("problem %d = %v, want line %d rejected=%v %q", i, p, w.line, w.rejected, w.reason)
		}
	}
	if s := st.Problems[3].String(); !strings.HasPrefix(s, "line 10: rejected: ") {
		t.Errorf("Problem.String() = %q", s)
	}

	ids := sink.ids()
	wantIDs := []string{
		"sim-0001",
		"dc:presence.update:",
		"dc:msg:1213137868447100000",
		"dc:join:1050478296420171836:987654321098765432:1772366405000",
		"dc:del:1213137868447100010",
		"dc:del:1213137868447100011",
		"sim-0004",
	}
	if len(ids) != len(wantIDs) {
		t.Fatalf("ids = %v", ids)
	}
	for i := range ids {
		if !strings.HasPrefix(ids[i], wantIDs[i]) {
			t.Errorf("event %d id %s, want %s…", i, ids[i], wantIDs[i])
		}
	}
	// Line 11 has no "at": it gets the fallback time (the Discord epoch).
	if at := sink.evs[3].At; !at.Equal(time.UnixMilli(event.DiscordEpoch)) {
		t.Errorf("member join without at: At = %v", at)
	}
	if at := sink.evs[1].At; !at.Equal(time.Date(2026, 3, 1, 12, 0, 0, 500e6, time.UTC)) {
		t.Errorf("presence with at: At = %v", at)
	}
}

func TestRunTwiceGivesSameIDs(t *testing.T) {
	in := readFile(t, "../discord/testdata/dispatches.jsonl")
	in = append(in, readFile(t, "testdata/mixed.jsonl")...)
	var a, b collector
	fallback := Options{FallbackTime: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}
	if _, err := Run(context.Background(), bytes.NewReader(in), &a, fallback); err != nil {
		t.Fatal(err)
	}
	// A different fallback time must not change IDs: they would then depend
	// on when the file is replayed.
	if _, err := Run(context.Background(), bytes.NewReader(in), &b, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(a.evs) < 40 || !reflect.DeepEqual(a.ids(), b.ids()) {
		t.Fatalf("IDs differ between runs (%d events):\n%v\n%v", len(a.evs), a.ids(), b.ids())
	}
}

// TestRunMatchesNormalizerGolden replays the discord package's recorded
// dispatches and expects exactly the events of its golden file: replay must
// hand the Normalizer the same bytes, sequence numbers and times.
func TestRunMatchesNormalizerGolden(t *testing.T) {
	var golden []struct {
		Events []event.Event `json:"events"`
	}
	if err := json.Unmarshal(readFile(t, "../discord/testdata/events.golden.json"), &golden); err != nil {
		t.Fatal(err)
	}
	var want []event.Event
	for _, g := range golden {
		want = append(want, g.Events...)
	}
	var sink collector
	// The discord tests use this fallback for lines without "at".
	opts := Options{FallbackTime: time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC)}
	st, err := Run(context.Background(), bytes.NewReader(readFile(t, "../discord/testdata/dispatches.jsonl")), &sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 0 || st.Rejected != 0 || st.Skipped != 7 {
		t.Errorf("stats = %+v", st)
	}
	if !reflect.DeepEqual(sink.evs, want) {
		t.Fatalf("replay gave %d events, golden has %d; first IDs %v", len(sink.evs), len(want), sink.ids()[:3])
	}
}

func TestRunLongLines(t *testing.T) {
	ok := `{"id":"e-1","kind":"typing.start","guild_id":"1","user_id":"2","channel_id":"3","at":"2026-03-01T12:00:00Z"}`
	atLimit := ok + strings.Repeat(" ", MaxLineBytes-len(ok)) // trailing blanks are legal JSON
	var in bytes.Buffer
	in.WriteString(ok + "\n")
	in.WriteString(strings.Repeat("x", 3*MaxLineBytes) + "\n")
	in.WriteString(strings.Replace(atLimit, "e-1", "e-2", 1) + "\n")
	in.WriteString(strings.Replace(atLimit, "e-1", "e-3", 1) + " \n") // one byte too many
	in.WriteString(strings.Replace(ok, "e-1", "e-4", 1))
	var sink collector
	st, err := Run(context.Background(), &in, &sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sink.ids(); !reflect.DeepEqual(got, []string{"e-1", "e-2", "e-4"}) {
		t.Errorf("ids = %v", got)
	}
	if st.Lines != 5 || st.Malformed != 2 || st.Problems[0].Line != 2 || st.Problems[1].Line != 4 ||
		!strings.Contains(st.Problems[0].Reason, "longer than 1048576 bytes") {
		t.Errorf("stats = %+v", st)
	}
}

func TestRunStops(t *testing.T) {
	lines := func(n int) io.Reader {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, `{"id":"e-%d","kind":"typing.start","guild_id":"1","user_id":"2","channel_id":"3","at":"2026-03-01T12:00:00Z"}`+"\n", i)
		}
		return &b
	}
	errDisk := errors.New("disk full")
	tests := []struct {
		name          string
		in            io.Reader
		opts          Options
		sink          func(cancel context.CancelFunc) ingest.SinkFunc
		precancel     bool
		want          error
		wantSubmitted int64
	}{
		{
			name: "sink error",
			in:   lines(5),
			sink: func(context.CancelFunc) ingest.SinkFunc {
				n := 0
				return func(context.Context, event.Event) error {
					if n++; n == 3 {
						return errDisk
					}
					return nil
				}
			},
			want: errDisk, wantSubmitted: 2,
		},
		{
			name: "context cancelled while submitting",
			in:   lines(5),
			sink: func(cancel context.CancelFunc) ingest.SinkFunc {
				n := 0
				return func(ctx context.Context, _ event.Event) error {
					if n++; n == 2 {
						cancel() // the caller gives up while the sink waits for room
						return ctx.Err()
					}
					return nil
				}
			},
			want: context.Canceled, wantSubmitted: 1,
		},
		{
			name:      "context cancelled before the first line",
			in:        strings.NewReader("\n\n{\"op\":11}\n"),
			precancel: true,
			want:      context.Canceled,
		},
		{
			name: "role lookup fails",
			in:   strings.NewReader(`{"t":"GUILD_MEMBER_UPDATE","s":1,"d":{"guild_id":"1","user":{"id":"2"},"roles":[]}}` + "\n"),
			opts: Options{Normalizer: discord.NewNormalizer(lookupFunc(func() error { return errDisk }))},
			want: errDisk,
		},
		{
			name: "read error",
			in:   io.MultiReader(lines(2), iotestErrReader{errDisk}),
			want: errDisk, wantSubmitted: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.precancel {
				cancel()
			}
			var sink ingest.Sink = &collector{}
			if tt.sink != nil {
				sink = tt.sink(cancel)
			}
			st, err := Run(ctx, tt.in, sink, tt.opts)
			if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "replay: ") {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if st.Submitted != tt.wantSubmitted {
				t.Fatalf("submitted %d, want %d", st.Submitted, tt.wantSubmitted)
			}
		})
	}
}

type lookupFunc func() error

func (f lookupFunc) MemberRoles(context.Context, string, string) ([]string, bool, error) {
	return nil, false, f()
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || IsTerminal(nil) {
		t.Fatal("a regular file is not a terminal")
	}
}
