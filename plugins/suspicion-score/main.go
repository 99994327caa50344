// Command suspicion-score is a Spywatcher scorer plugin: it scores how
// bot-like or coordinated a member's behaviour looks from seven signals,
// weighted per guild. README.md defines the formula; score.go is its only
// implementation.
package main

import "github.com/spywatcher/spywatcher/sdk/go/plugin"

type scorer struct{}

func (scorer) Score(ctx *plugin.Context, req plugin.ScoreRequest) (plugin.ScoreResponse, error) {
	w := weightsFrom(ctx.ConfigFloat)
	res := plugin.ScoreResponse{Scores: make([]plugin.Score, 0, len(req.Members))}
	for i := range req.Members {
		res.Scores = append(res.Scores, suspicion(&req.Members[i], w))
	}
	return res, nil
}

func init() { plugin.Register(plugin.Plugin{Score: scorer{}}) }

func main() {}
