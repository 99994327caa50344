//go:build !webui

// Package web holds the dashboard (React + TypeScript, built by Vite into
// dist/). Built with -tags webui the binary embeds dist/; without the tag
// (so that `go build ./...` works where Node is not installed) it serves a
// page that says how to build it.
package web

import "io/fs"

// Dist returns the built dashboard; false when the binary was built
// without -tags webui.
func Dist() (fs.FS, bool) { return nil, false }
