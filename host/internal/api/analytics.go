package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/analytics"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// analyticsStore is what the analytics and score routes read.
type analyticsStore interface {
	guildChecker
	analytics.Store
	RankedScores(ctx context.Context, guildID, scorer string, limit int, after string) (store.ScorePage, error)
	MemberScores(ctx context.Context, guildID, userID string) ([]store.MemberScore, error)
	ScoreHistory(ctx context.Context, guildID, userID, scorer string, since time.Time, limit int) ([]store.ScorePoint, error)
	LatestScoreRuns(ctx context.Context, guildID string) ([]store.ScoreRun, error)
}

// ScoringService scores guilds on demand and says which scorers run where;
// *analytics.Scoring implements it. Nil turns recompute off (409).
type ScoringService interface {
	Recompute(ctx context.Context, guildID string) ([]store.ScoreRun, error)
	Active(guildID string) []string
}

type analyticsHandler struct {
	store   analyticsStore
	a       *analytics.Analytics
	scoring ScoringService
	now     func() time.Time
	err     errWriter
	audit   func(r *http.Request, action, target, guild, result, detail string)
}

func (h *analyticsHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, analytics.ErrBadRequest) {
		err = badRequest(err.Error())
	}
	h.err.write(w, r, storeErr(err, "guild"))
}

// begin reads the guild and the common parameters.
func (h *analyticsHandler) begin(w http.ResponseWriter, r *http.Request) (gid string, p *params, ok bool) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return "", nil, false
	}
	return gid, query(r), true
}

func (h *analyticsHandler) exists(w http.ResponseWriter, r *http.Request, p *params, gid string) bool {
	if err := p.err(); err != nil {
		h.err.write(w, r, err)
		return false
	}
	if err := requireGuild(r.Context(), h.store, gid); err != nil {
		h.err.write(w, r, err)
		return false
	}
	return true
}

func (h *analyticsHandler) heatmap(w http.ResponseWriter, r *http.Request) {
	gid, p, ok := h.begin(w, r)
	if !ok {
		return
	}
	user, from, to := p.snowflake("user"), p.time("from"), p.time("to")
	metric := p.oneOf("metric", "messages", analytics.HeatmapMetrics...)
	tz := p.str("tz", 64)
	if !h.exists(w, r, p, gid) {
		return
	}
	hm, err := h.a.Heatmap(r.Context(), gid, user, metric, from, to, tz)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hm)
}

func (h *analyticsHandler) presence(w http.ResponseWriter, r *http.Request) {
	gid, p, ok := h.begin(w, r)
	if !ok {
		return
	}
	user, from, to, tz := p.snowflake("user"), p.time("from"), p.time("to"), p.str("tz", 64)
	if !h.exists(w, r, p, gid) {
		return
	}
	out, err := h.a.Presence(r.Context(), gid, user, from, to, tz)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *analyticsHandler) roles(w http.ResponseWriter, r *http.Request) {
	gid, p, ok := h.begin(w, r)
	if !ok {
		return
	}
	user, from, to := p.snowflake("user"), p.time("from"), p.time("to")
	limit, cursor := p.limit(100, 1000), p.str("cursor", 512)
	if !h.exists(w, r, p, gid) {
		return
	}
	out, err := h.a.RoleDrift(r.Context(), gid, user, from, to, limit, cursor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// scorerStatus is a scorer as GET /scores without scorer lists it.
type scorerStatus struct {
	Scorer  string          `json:"scorer"`
	Active  bool            `json:"active"` // enabled, granted scores.write, running
	LastRun *store.ScoreRun `json:"last_run,omitempty"`
}

func (h *analyticsHandler) scores(w http.ResponseWriter, r *http.Request) {
	gid, p, ok := h.begin(w, r)
	if !ok {
		return
	}
	scorer := p.str("scorer", 64)
	limit, cursor := p.limit(50, 500), p.str("cursor", 512)
	if !h.exists(w, r, p, gid) {
		return
	}
	ctx := r.Context()
	runs, err := h.store.LatestScoreRuns(ctx, gid)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if scorer == "" {
		byID := map[string]*scorerStatus{}
		var out []*scorerStatus
		add := func(id string) *scorerStatus {
			if s := byID[id]; s != nil {
				return s
			}
			s := &scorerStatus{Scorer: id}
			byID[id] = s
			out = append(out, s)
			return s
		}
		if h.scoring != nil {
			for _, id := range h.scoring.Active(gid) {
				add(id).Active = true
			}
		}
		for i := range runs {
			add(runs[i].Scorer).LastRun = &runs[i]
		}
		if out == nil {
			out = []*scorerStatus{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"scorers": out})
		return
	}
	page, err := h.store.RankedScores(ctx, gid, scorer, limit, cursor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// When the page's scores were computed: the newest of them (a run may
	// be under way, or have scored some members only).
	var computed *time.Time
	for i := range page.Items {
		if at := page.Items[i].ComputedAt; computed == nil || at.After(*computed) {
			computed = &page.Items[i].ComputedAt
		}
	}
	type item struct {
		UserID      string  `json:"user_id"`
		Name        string  `json:"name"`
		Score       float64 `json:"score"`
		Factors     any     `json:"factors"`
		Explanation string  `json:"explanation"`
	}
	items := make([]item, 0, len(page.Items))
	for _, s := range page.Items {
		items = append(items, item{UserID: s.UserID, Name: s.Name, Score: s.Score, Factors: s.Factors, Explanation: s.Explanation})
	}
	writeJSON(w, http.StatusOK, map[string]any{"scorer": scorer, "computed_at": computed, "items": items, "next_cursor": page.Next})
}

func (h *analyticsHandler) memberScores(w http.ResponseWriter, r *http.Request) {
	gid, p, ok := h.begin(w, r)
	if !ok {
		return
	}
	user, err := idParam(r, "user")
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	window := p.window("window", 30*24*time.Hour, 366*24*time.Hour)
	if !h.exists(w, r, p, gid) {
		return
	}
	ctx := r.Context()
	latest, err := h.store.MemberScores(ctx, gid, user)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	type entry struct {
		store.MemberScore
		History []store.ScorePoint `json:"history"`
	}
	out := make([]entry, 0, len(latest))
	for _, s := range latest {
		hist, err := h.store.ScoreHistory(ctx, gid, user, s.Scorer, h.now().Add(-window), 500)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if hist == nil {
			hist = []store.ScorePoint{}
		}
		out = append(out, entry{MemberScore: s, History: hist})
	}
	writeJSON(w, http.StatusOK, map[string]any{"user_id": user, "scorers": out})
}

// recompute starts scoring the guild now. Moderators may ask (scores/write):
// it reveals nothing they cannot read and changes no setting, and one run
// per guild at a time bounds what it costs. It is audited.
func (h *analyticsHandler) recompute(w http.ResponseWriter, r *http.Request) {
	gid, p, ok := h.begin(w, r)
	if !ok || !h.exists(w, r, p, gid) {
		return
	}
	if h.scoring == nil {
		h.err.write(w, r, &Error{Status: http.StatusConflict, Code: "conflict", Message: "scoring is not running on this host"})
		return
	}
	runs, err := h.scoring.Recompute(r.Context(), gid)
	switch {
	case errors.Is(err, analytics.ErrBusy):
		h.audit(r, "scores.recompute", gid, gid, "busy", "")
		h.err.write(w, r, &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()})
		return
	case errors.Is(err, analytics.ErrNoScorers):
		h.audit(r, "scores.recompute", gid, gid, "none", "")
		h.err.write(w, r, &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()})
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	ids := make([]string, len(runs))
	for i, run := range runs {
		ids[i] = run.Scorer
	}
	h.audit(r, "scores.recompute", gid, gid, "ok", "scorers: "+strings.Join(ids, ","))
	runID := ""
	if len(runs) > 0 {
		runID = runs[0].ID
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"run_id": runID, "runs": runs})
}
