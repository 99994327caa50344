package replay

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/ingest"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// presenceFile generates n PRESENCE_UPDATE dispatch lines as a recorder
// would write them: a few thousand members of one guild changing status,
// most with an activity.
func presenceFile(n int) []byte {
	statuses := []string{"online", "idle", "dnd", "offline"}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	for i := range n {
		st := statuses[i%len(statuses)]
		cs := `{"desktop":"` + st + `"}`
		acts := `[]`
		if st == "offline" {
			cs = `{}`
		} else if i%3 != 0 {
			acts = fmt.Sprintf(`[{"type":0,"name":"Game %d","details":"Ranked match","state":"In queue","created_at":1772366400000,"application_id":"383226320970055681"}]`, i%50)
		}
		fmt.Fprintf(&b, `{"t":"PRESENCE_UPDATE","s":%d,"op":0,"d":{"user":{"id":"%d"},"guild_id":"1050478296420171836","status":"%s","activities":%s,"client_status":%s,"broadcast":null},"at":"%s"}`+"\n",
			i+1, 1100000000000000000+i%5000, st, acts, cs, at.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
	}
	return b.Bytes()
}

func BenchmarkReplay(b *testing.B) {
	const lines = 100_000
	in := presenceFile(lines)
	sink := ingest.SinkFunc(func(context.Context, event.Event) error { return nil })
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	var events int64
	start := time.Now()
	for b.Loop() {
		st, err := Run(context.Background(), bytes.NewReader(in), sink, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if st.Submitted != lines {
			b.Fatalf("submitted %d of %d (%+v)", st.Submitted, lines, st.Problems)
		}
		events += st.Submitted
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}
