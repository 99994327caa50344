//go:build !spywatcher_process || wasip1

package plugin

// serveProcess does nothing outside a process build: a WebAssembly plugin
// is driven by the host through its exports, and tests call Serve.
func serveProcess() {}
