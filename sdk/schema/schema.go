// Package schema holds the JSON Schemas (draft 2020-12) that state
// Spywatcher's event contract for plugin authors in languages other than Go:
//
//   - event.schema.json describes one event: the envelope and, selected by
//     its kind, the payload in data;
//   - events.schema.json describes a batch, a JSON array of events;
//   - plugin.schema.json describes a plugin manifest (plugin.json);
//   - score-request.schema.json and score-response.schema.json describe
//     the score hook's input (member statistics) and output (scores).
//
// The files are embedded so the host can serve them (for example under
// /schema/) without shipping them separately. The Go package
// github.com/spywatcher/spywatcher/sdk/go/event is the authoritative
// implementation of the same contract; the tests keep the two in step.
package schema

import (
	"embed"
	"io/fs"
)

// Files holds every *.json schema of this directory at its top level.
//
//go:embed *.json
var Files embed.FS

// FS returns the schema files as a read-only file system, for example to
// hand to http.FileServerFS.
func FS() fs.FS { return Files }

// Names of the embedded schema files.
const (
	EventFile         = "event.schema.json"
	EventsFile        = "events.schema.json"
	PluginFile        = "plugin.schema.json"
	ScoreRequestFile  = "score-request.schema.json"
	ScoreResponseFile = "score-response.schema.json"
)

// Schema IDs ($id) of the embedded schemas.
const (
	EventID         = "https://spywatcher.dev/schema/event.schema.json"
	EventsID        = "https://spywatcher.dev/schema/events.schema.json"
	ScoreRequestID  = "https://spywatcher.dev/schema/score-request.schema.json"
	ScoreResponseID = "https://spywatcher.dev/schema/score-response.schema.json"
)
