package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc documents every route of Router; TestOpenAPIMatchesRouter keeps
// them in step.
//
//go:embed openapi.json
var openAPIDoc []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc) //nolint:errcheck // client went away
}
