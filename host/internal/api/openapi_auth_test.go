package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestAuthResponsesMatchOpenAPI checks the answers of the auth, guild
// administration and admin routes against the schemas openapi.json
// promises for them.
func TestAuthResponsesMatchOpenAPI(t *testing.T) {
	var raw any
	if err := json.Unmarshal(openAPIDoc, &raw); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("openapi.json", raw); err != nil {
		t.Fatal(err)
	}
	a := newAuthHarness(t, nil)
	uid := a.createUser(t, "olga", false)
	a.must(t, req{method: "PUT", path: "/api/v1/guilds/" + guildID + "/roles/" + uid, bearer: token, body: `{"role":"admin"}`}, 200)
	tok, _ := a.login(t, "olga")
	key := decode[createdKey](t, a.must(t, req{method: "POST", path: "/api/v1/auth/apikeys", bearer: tok.AccessToken, body: `{"guilds":["*"]}`}, 201))
	g := "/api/v1/guilds/" + guildID
	cases := []struct {
		method, path, route, bearer, body string
		status                            int
	}{
		{"POST", "/api/v1/auth/login", "/api/v1/auth/login", "", `{"username":"olga","password":"pw-of-olga-123"}`, 200},
		{"POST", "/api/v1/auth/refresh", "/api/v1/auth/refresh", "", `{"refresh_token":"` + tok.RefreshToken + `"}`, 200},
		{"GET", "/api/v1/auth/me", "/api/v1/auth/me", key.Secret, "", 200},
		{"GET", "/api/v1/auth/sessions", "/api/v1/auth/sessions", "", "", 200},
		{"GET", "/api/v1/auth/apikeys", "/api/v1/auth/apikeys", "", "", 200},
		{"POST", "/api/v1/auth/apikeys", "/api/v1/auth/apikeys", "", `{"guilds":["` + guildID + `"],"write":true,"expires_in":"720h"}`, 201},
		{"GET", "/api/v1/auth/apikeys/" + key.ID + "/usage", "/api/v1/auth/apikeys/{key}/usage", "", "", 200},
		{"GET", g + "/roles", "/api/v1/guilds/{guild}/roles", "", "", 200},
		{"PUT", g + "/roles/" + uid, "/api/v1/guilds/{guild}/roles/{account}", token, `{"role":"owner"}`, 200},
		{"GET", g + "/access", "/api/v1/guilds/{guild}/access", "", "", 200},
		{"PUT", g + "/access", "/api/v1/guilds/{guild}/access", "", `{"member_access":true,"moderator_roles":["41771983423143940"]}`, 200},
		{"GET", g + "/audit?limit=2", "/api/v1/guilds/{guild}/audit", "", "", 200},
		{"GET", "/api/v1/admin/users", "/api/v1/admin/users", token, "", 200},
		{"POST", "/api/v1/admin/users", "/api/v1/admin/users", token, `{"username":"pia","password":"a-long-password"}`, 201},
		{"GET", "/api/v1/admin/users/" + uid, "/api/v1/admin/users/{account}", token, "", 200},
		{"PATCH", "/api/v1/admin/users/" + uid, "/api/v1/admin/users/{account}", token, `{"display_name":"Olga"}`, 200},
		{"GET", "/api/v1/admin/users/" + uid + "/sessions", "/api/v1/admin/users/{account}/sessions", token, "", 200},
		{"GET", "/api/v1/admin/apikeys", "/api/v1/admin/apikeys", token, "", 200},
		{"GET", "/api/v1/admin/audit?limit=3", "/api/v1/admin/audit", token, "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.route, func(t *testing.T) {
			bearer := tc.bearer
			if bearer == "" && tc.route != "/api/v1/auth/login" && tc.route != "/api/v1/auth/refresh" {
				bearer = tok.AccessToken
			}
			w := a.must(t, req{method: tc.method, path: tc.path, bearer: bearer, body: tc.body}, tc.status)
			ptr := fmt.Sprintf("#/paths/%s/%s/responses/%d/content/application~1json/schema", escapePointer(tc.route), lower(tc.method), tc.status)
			sch, err := c.Compile("openapi.json" + ptr)
			if err != nil {
				t.Fatalf("compile %s: %v", ptr, err)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(w.Body.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Fatalf("response does not match the documented schema: %v\n%s", err, truncate(w.Body.String(), 800))
			}
		})
	}
	// Errors of the new routes have the one error shape too.
	sch, err := c.Compile("openapi.json#/components/schemas/Error")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []req{
		{method: "POST", path: "/api/v1/auth/login", body: `{"username":"olga","password":"nope-nope-nope"}`},
		{method: "GET", path: "/api/v1/admin/users", bearer: tok.AccessToken},
		{method: "PUT", path: g + "/roles/" + uid, bearer: token, body: `{"role":"king"}`},
	} {
		w := a.do(r)
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(w.Body.Bytes()))
		if err := sch.Validate(v); err != nil || w.Code < 400 {
			t.Errorf("%s %s: %d %s: %v", r.method, r.path, w.Code, w.Body, err)
		}
	}
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }
