package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// TestScoresRoutes reads stored scores back through the API: the ranking
// (highest first, paginated) and a member's scores with history.
func TestScoresRoutes(t *testing.T) {
	hs := newHarness(t)
	hs.seed(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond)
	put := func(user string, score float64, when time.Time) {
		if err := hs.st.PutScores(ctx, []store.MemberScore{{GuildID: guildID, Scorer: "ghost-score", UserID: user, Score: score,
			Factors: json.RawMessage(`[{"name":"f","contribution":1}]`), Explanation: "why", RunID: "r", ComputedAt: when, History: true}}); err != nil {
			t.Fatal(err)
		}
	}
	put(alice, 40, at)
	put(alice, 72.5, at.Add(time.Hour))
	put(bob, 90, at.Add(time.Hour))
	g := "/api/v1/guilds/" + guildID
	var page struct {
		Items []struct {
			UserID string  `json:"user_id"`
			Score  float64 `json:"score"`
		} `json:"items"`
		Next       string    `json:"next_cursor"`
		ComputedAt time.Time `json:"computed_at"`
	}
	w := hs.do("GET", g+"/scores?scorer=ghost-score&limit=1", token, "", "")
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(page.Items) != 1 || page.Items[0].UserID != bob || page.Next == "" || !page.ComputedAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("first page: %s", w.Body)
	}
	w = hs.do("GET", g+"/scores?scorer=ghost-score&limit=1&cursor="+page.Next, token, "", "")
	page.Items, page.Next = nil, ""
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Items) != 1 || page.Items[0].UserID != alice ||
		page.Items[0].Score != 72.5 || page.Next != "" {
		t.Fatalf("second page: %d %s", w.Code, w.Body)
	}
	var mine struct {
		Scorers []struct {
			Scorer  string  `json:"scorer"`
			Score   float64 `json:"score"`
			History []struct {
				Score float64 `json:"score"`
			} `json:"history"`
		} `json:"scorers"`
	}
	w = hs.do("GET", g+"/members/"+alice+"/scores", token, "", "")
	if err := json.Unmarshal(w.Body.Bytes(), &mine); err != nil || len(mine.Scorers) != 1 || mine.Scorers[0].Score != 72.5 ||
		len(mine.Scorers[0].History) != 2 || mine.Scorers[0].History[0].Score != 40 {
		t.Fatalf("member scores: %d %s", w.Code, w.Body)
	}
	if w := hs.do("POST", g+"/scores/recompute", token, "", ""); w.Code != 409 {
		t.Fatalf("recompute without scoring: %d %s", w.Code, w.Body)
	}
}
