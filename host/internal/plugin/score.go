package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// Scorer is a plugin that scores members in a guild.
type Scorer struct {
	ID      string
	Name    string
	Version string
}

// Scorers lists the plugins that score members in a guild: running there,
// offering the score hook, and granted scores.write.
func (h *Host) Scorers(guildID string) []Scorer {
	snap := h.snap.Load()
	var out []Scorer
	for _, id := range snap.byGuild[guildID] {
		l := snap.plugins[id]
		if l == nil || l.m == nil || !l.m.Has(HookScore) || !h.permitted(id, guildID, PermScoresWrite) {
			continue
		}
		out = append(out, Scorer{ID: id, Name: l.m.Name, Version: l.m.Version})
	}
	return out
}

// ScoreGuilds lists the guilds where at least one scorer may run.
func (h *Host) ScoreGuilds() []string {
	snap := h.snap.Load()
	var out []string
	for g, ids := range snap.byGuild {
		for _, id := range ids {
			if l := snap.plugins[id]; l != nil && l.m != nil && l.m.Has(HookScore) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// ScoreBatch is one batch of member statistics for the score hook. It is
// encoded once per encoding, however many scorers it goes to.
type ScoreBatch struct {
	Request sdk.ScoreRequest

	jsonOnce, binOnce sync.Once
	json, bin         []byte
	jsonErr           error
}

// NewScoreBatch wraps a request.
func NewScoreBatch(req sdk.ScoreRequest) *ScoreBatch { return &ScoreBatch{Request: req} }

func (b *ScoreBatch) encoded(binary bool) ([]byte, error) {
	if binary {
		b.binOnce.Do(func() {
			b.bin = sdk.AppendScoreRequestBinary(make([]byte, 0, 32+len(b.Request.Members)*340), b.Request)
		})
		return b.bin, nil
	}
	b.jsonOnce.Do(func() { b.json, b.jsonErr = json.Marshal(b.Request) })
	return b.json, b.jsonErr
}

// Limits on what a scorer returns, beyond the plugin's output size.
const (
	maxFactors        = 16
	maxFactorName     = 64
	maxExplanationLen = 300
)

// Score calls a scorer's score hook with one batch of member statistics and
// returns its scores after checking them: one per member asked about at
// most, each between 0 and 100 with named, finite factors and a one-line
// explanation. Output that breaks these rules fails the call like a trap
// does (counted towards quarantine): a scorer that lies about its range
// would otherwise mislead moderators quietly.
func (h *Host) Score(ctx context.Context, pluginID, guildID string, batch *ScoreBatch) (_ []sdk.Score, err error) {
	if !h.permitted(pluginID, guildID, PermScoresWrite) {
		return nil, fmt.Errorf("plugin: %s is not granted %s in guild %s", pluginID, PermScoresWrite, guildID)
	}
	l := h.snap.Load().plugins[pluginID]
	in, err := batch.encoded(l != nil && l.m != nil && l.m.ScoreEncoding == "binary")
	if err != nil {
		return nil, fmt.Errorf("plugin: score input: %w", err)
	}
	req := batch.Request
	out, err := h.call(ctx, pluginID, guildID, HookScore, in)
	if err != nil {
		return nil, err
	}
	res, err := sdk.DecodeScoreResponse(out)
	if err != nil {
		err = fmt.Errorf("plugin: score output is not a score response: %w", err)
		h.failed(ctx, pluginID, guildID, HookScore, "invalid", err)
		return nil, err
	}
	if err := validScores(req, res.Scores); err != nil {
		err = fmt.Errorf("plugin: %s score output: %w", pluginID, err)
		h.failed(ctx, pluginID, guildID, HookScore, "invalid", err)
		return nil, err
	}
	return res.Scores, nil
}

func validScores(req sdk.ScoreRequest, scores []sdk.Score) error {
	asked := make(map[string]bool, len(req.Members))
	for _, m := range req.Members {
		asked[m.UserID] = true
	}
	seen := make(map[string]bool, len(scores))
	for i, s := range scores {
		switch {
		case !asked[s.UserID]:
			return fmt.Errorf("scores[%d]: user %q was not in the request", i, s.UserID)
		case seen[s.UserID]:
			return fmt.Errorf("scores[%d]: user %s scored twice", i, s.UserID)
		case math.IsNaN(s.Score) || s.Score < 0 || s.Score > 100:
			return fmt.Errorf("scores[%d]: score %v is not between 0 and 100", i, s.Score)
		case len(s.Factors) > maxFactors:
			return fmt.Errorf("scores[%d]: %d factors, at most %d", i, len(s.Factors), maxFactors)
		case utf8.RuneCountInString(s.Explanation) > maxExplanationLen || strings.ContainsAny(s.Explanation, "\r\n"):
			return fmt.Errorf("scores[%d]: the explanation must be one line of at most %d characters", i, maxExplanationLen)
		}
		seen[s.UserID] = true
		for j, f := range s.Factors {
			if f.Name == "" || len(f.Name) > maxFactorName {
				return fmt.Errorf("scores[%d].factors[%d]: a factor needs a name of 1-%d bytes", i, j, maxFactorName)
			}
			if math.IsNaN(f.Contribution) || math.IsInf(f.Contribution, 0) {
				return fmt.Errorf("scores[%d].factors[%d]: contribution must be a finite number", i, j)
			}
		}
	}
	return nil
}
