// Package assemblyscript holds the AssemblyScript helpers (spywatcher.ts)
// so that `spywatcher plugin new --lang assemblyscript` can write them into
// a new plugin.
package assemblyscript

import _ "embed"

// Helpers is spywatcher.ts.
//
//go:embed spywatcher.ts
var Helpers []byte
