// Package authz is Spywatcher's one authorization enforcer: casbin RBAC with
// domains, used for people (user:<id>), API keys (apikey:<id>), the admin
// token and plugins (plugin:<id>) alike. A request is (subject, domain,
// object, action) with the domain a guild ID or Instance. The model and the
// built-in policy come from permissions/; run-time rules (role assignments,
// API key scopes, plugin grants) are stored in the database through an
// adapter over the store. Decisions are cached; every change clears the
// cache here and, through a Notifier, on every other host instance, which
// reload the rules.
package authz
