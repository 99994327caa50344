// Package ws is the live side of the dashboard: a WebSocket hub at
// GET /api/v1/ws that streams a guild's events (presence, message metadata,
// joins, leaves, role changes, bans), score updates and plugin events to
// subscribed clients.
//
// Every connection is authenticated by the same Authenticator as the REST
// API (session cookie, Bearer access token or API key) or by a short-lived,
// single-use ticket from POST /api/v1/ws/ticket, for browsers that cannot
// send headers on a WebSocket. A cookie-authenticated upgrade must come from
// the same origin or one of the CORS origins: a cookie is sent by the
// browser on its own, so a foreign page must not be able to open the stream.
//
// At every ping the credential is checked again (a revoked session or API
// key, or an expired access token, closes the stream with 4001; a ticket is
// checked once), and each guild subscription, authorized by the enforcer
// when it is made, is authorized again: events/read (moderator) gets every kind of event and
// plugin events; presence/read (viewer) gets presence updates only;
// scores/read (moderator) adds score updates.
//
// Every message is encoded once. Each delivery to a guild (a pipeline
// batch from the bus) becomes one WebSocket frame per audience, and those
// same bytes are queued to every subscriber (server frames are unmasked,
// so they can be shared; package wsproto is the protocol). Runs of presence updates travel as
// compact presence batches (see PresenceTag). A few sweepers, one per core,
// write each ready connection's queued frames in one non-blocking system
// call (sweep.go). A connection is written at most once per
// Config.MinWriteInterval (50 ms): a quiet guild's frames go out at once, a
// busy guild's wait and go out together; when the hub is busier still,
// frames pile up while a connection waits for its turn. A connection
// whose socket is full gets a goroutine of its own until it has caught up;
// its queue is bounded, and a connection whose queue overflows is closed
// with code 4008 and the reason, so one slow client never slows the
// producer or anyone else. A write stuck longer than WriteTimeout, or a
// ping unanswered that long, closes the connection (the hub's watchdog).
//
// Resume: each guild keeps a replay buffer of its recent messages. A
// subscription may name the last event id the client saw ("since"); the hub
// sends what followed it, or a "resync" message when that id is no longer
// buffered, telling the client to refetch through the REST API.
//
// With Redis, every instance publishes what its own bus carries to one
// Redis pub/sub channel and delivers only what comes back from it, so every
// instance delivers every event exactly once, and replay buffers hold the
// same messages on every instance.
package ws
