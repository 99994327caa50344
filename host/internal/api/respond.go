package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// Error is the one error shape of the API: {"error":{"code":…,"message":…}}.
// Fields names the bad inputs when there are several.
type Error struct {
	Status  int                `json:"-"`
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Fields  []event.FieldError `json:"fields,omitempty"`
	Details any                `json:"details,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func badRequest(msg string, fields ...event.FieldError) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg, Fields: fields}
}

func notFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: msg}
}

// writeJSON renders v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) //nolint:errcheck // the client went away; nothing to do
}

// writeError renders err in the error shape. Anything that is not an *Error
// is an internal error: it is logged and its text is not shown to clients.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the server log has the details"}
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="spywatcher"`)
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}
