// Command lurker-score is a Spywatcher scorer plugin: it scores members who
// are online without posting, for a long time since their last message or
// ever. README.md defines the formula; score.go is its only implementation.
package main

import "github.com/spywatcher/spywatcher/sdk/go/plugin"

type scorer struct{}

func (scorer) Score(_ *plugin.Context, req plugin.ScoreRequest) (plugin.ScoreResponse, error) {
	res := plugin.ScoreResponse{Scores: make([]plugin.Score, 0, len(req.Members))}
	for i := range req.Members {
		res.Scores = append(res.Scores, lurker(&req, &req.Members[i]))
	}
	return res, nil
}

func init() { plugin.Register(plugin.Plugin{Score: scorer{}}) }

func main() {}
