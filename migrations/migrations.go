// Package migrations embeds the numbered SQL migrations of each dialect.
// Files are applied in order at start-up by host/internal/store, each in its
// own transaction; a database newer than the binary is refused.
//
// Rules for adding one: never edit a released file, add the next number in
// both sqlite/ and postgres/ with the same meaning, and keep a migration
// compatible with the previous release's code (expand, then contract in a
// later release) so that rolling upgrades work.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Dialect returns the migrations of one dialect ("sqlite" or "postgres").
func Dialect(name string) (fs.FS, error) {
	return fs.Sub(files, name)
}
