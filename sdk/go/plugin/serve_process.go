//go:build spywatcher_process && !wasip1

package plugin

import "github.com/spywatcher/spywatcher/sdk/go/plugin/process"

// serveProcess serves the registered plugin to the host that started this
// process, then exits.
func serveProcess() { process.Serve(processHandler{}) }

type processHandler struct{}

func (processHandler) Hooks() []string { return Offered() }

func (processHandler) Serve(h process.Host, hook string, input []byte) ([]byte, error) {
	return Serve(h, hook, input)
}
