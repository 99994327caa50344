// Command ghost-score is a Spywatcher scorer plugin: it scores members who
// are online for many hours but rarely post. README.md defines the formula;
// score.go is its only implementation.
package main

import "github.com/spywatcher/spywatcher/sdk/go/plugin"

type scorer struct{}

func (scorer) Score(_ *plugin.Context, req plugin.ScoreRequest) (plugin.ScoreResponse, error) {
	res := plugin.ScoreResponse{Scores: make([]plugin.Score, 0, len(req.Members))}
	for i := range req.Members {
		res.Scores = append(res.Scores, ghost(&req.Members[i]))
	}
	return res, nil
}

func init() { plugin.Register(plugin.Plugin{Score: scorer{}}) }

func main() {}
