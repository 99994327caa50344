// Package c holds the C SDK (spywatcher.h) so that `spywatcher plugin new
// --lang c` can write it into a new plugin.
package c

import _ "embed"

// Header is spywatcher.h.
//
//go:embed spywatcher.h
var Header []byte
