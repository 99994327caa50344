// Package permissions embeds Spywatcher's authorization model, its built-in
// policy and the permission catalogue, so that the binary carries them and
// host/internal/authz (the one enforcer, for people, API keys and plugins)
// loads them from here.
package permissions

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// Model is the casbin model (model.conf).
//
//go:embed model.conf
var Model string

// Policy is the built-in policy in casbin's CSV form (policy.csv).
//
//go:embed policy.csv
var Policy string

//go:embed catalogue.json
var catalogueJSON []byte

// Permission is one entry of the catalogue: an object and an action that a
// subject can be allowed.
type Permission struct {
	Object      string `json:"object"`
	Action      string `json:"action"`
	Subject     string `json:"subject"` // "user" (people and API keys) or "plugin"
	Scope       string `json:"scope"`   // "guild" or "instance"
	Role        string `json:"role,omitempty"`
	Risk        string `json:"risk"` // low | medium | high, shown to admins
	Description string `json:"description"`
}

// Catalogue returns every permission that policies may name.
func Catalogue() ([]Permission, error) {
	var c struct {
		Permissions []Permission `json:"permissions"`
	}
	if err := json.Unmarshal(catalogueJSON, &c); err != nil {
		return nil, fmt.Errorf("permissions: catalogue: %w", err)
	}
	return c.Permissions, nil
}
