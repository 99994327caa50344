package schema

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

func ptr[T any](v T) *T { return &v }

// TestScoreSchemasMatchGo validates what the Go SDK's types encode against
// the score schemas, and checks the schema lists exactly the Go fields.
func TestScoreSchemasMatchGo(t *testing.T) {
	req := compile(t, ScoreRequestID)
	res := compile(t, ScoreResponseID)
	m := plugin.MemberStats{UserID: "80351110224678912", Bot: true, AccountAgeDays: 812.4, JoinedDaysAgo: ptr(40.1),
		OnlineSeconds: 93600, ByClient: map[string]int64{"desktop": 80000, "mobile": 13600}, MultiClientSeconds: 3600,
		Messages: 12, MessagesTotal: 340, SecondsSinceLastMessage: ptr(int64(5400)), FirstMessageAfterJoinSeconds: ptr(int64(120)),
		Channels: 3, MessageIntervalCV: ptr(1.2), MaxMessagesPerMinute: 3, RoleChanges: 1}
	b, _ := json.Marshal(plugin.ScoreRequest{GuildID: "41771983423143937", From: time.Now().Add(-time.Hour).UTC(), To: time.Now().UTC(),
		Members: []plugin.MemberStats{m, {UserID: "80351110224678913"}}})
	if err := req.Validate(instance(t, b)); err != nil {
		t.Fatalf("a request the host sends is invalid: %v\n%s", err, b)
	}
	b, _ = json.Marshal(plugin.ScoreResponse{Scores: []plugin.Score{{UserID: "1", Score: 72.5, Explanation: "Online 26 h for 12 messages",
		Factors: []plugin.Factor{{Name: "online_per_message", Contribution: 60, Value: 7800}, {Name: "x", Contribution: 12.5}}}}})
	if err := res.Validate(instance(t, b)); err != nil {
		t.Fatalf("a valid response is refused: %v\n%s", err, b)
	}
	for _, bad := range []string{`{"scores":[{"user_id":"1","score":120,"explanation":""}]}`,
		`{"scores":[{"user_id":"1","score":5,"explanation":"two\nlines"}]}`, `{}`} {
		if err := res.Validate(instance(t, []byte(bad))); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// The schema's member properties are exactly the Go struct's JSON fields.
	raw, err := fs.ReadFile(FS(), ScoreRequestFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			MemberStats struct {
				Properties map[string]any `json:"properties"`
			} `json:"memberStats"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var inSchema, inGo []string
	for k := range doc.Defs.MemberStats.Properties {
		inSchema = append(inSchema, k)
	}
	ty := reflect.TypeFor[plugin.MemberStats]()
	for i := range ty.NumField() {
		name, _, _ := strings.Cut(ty.Field(i).Tag.Get("json"), ",")
		inGo = append(inGo, name)
	}
	slices.Sort(inSchema)
	slices.Sort(inGo)
	if !slices.Equal(inSchema, inGo) {
		t.Fatalf("score-request.schema.json members: %v\nGo MemberStats: %v", inSchema, inGo)
	}
}
