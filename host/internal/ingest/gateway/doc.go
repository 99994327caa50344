// Package gateway is the live Discord source: it connects to the Discord
// gateway with github.com/bwmarrin/discordgo, one session per shard, and
// hands every dispatch, raw and in order, to a Handler — Ingest, which runs
// it through the same discord.Normalizer that replay uses, or Recorder,
// which writes it to a JSONL file that `spywatcher replay` reads back.
//
// discordgo is used as a transport only. Its state cache is off (the host
// keeps its own state in the store), its own reconnect loop is off (it
// cannot be stopped or told about fatal close codes), and handlers run
// synchronously so that dispatches keep their order. What this package adds:
//
//   - Reconnecting: after a dropped connection, op 7 (reconnect) or a
//     missed heartbeat ACK discordgo closes the socket; the shard then opens
//     it again, which RESUMEs the session so Discord replays what was missed.
//     A RESUME Discord refuses (op 9) makes discordgo identify afresh.
//     Failed attempts back off exponentially with jitter.
//   - No loss, no duplicates: discordgo records a dispatch's sequence
//     number before handing it over, so a resume asks for exactly what
//     follows it; a dispatch whose sequence number is not above the last
//     one delivered in the session is dropped, and a gap is logged and
//     counted. Event IDs (see package discord) make any later repeat a no-op
//     in the pipeline.
//   - Backpressure without stalling the socket: each shard has a bounded
//     buffer between discordgo's read loop and a worker that normalises and
//     submits. Above 80% full, presence updates are shed (counted); other
//     dispatches wait. The pipeline behind Ingest sheds presence the same
//     way when the store is slow. discordgo sends heartbeats from its own
//     goroutine, so they never wait for either.
//   - Sharding: the shard count comes from config or Discord's
//     recommendation (GET /gateway/bot). Each shard is run only while this
//     instance holds its lease (the store's leases table, or Redis), so that
//     of several instances exactly one ingests it; a lease not renewed for
//     LeaseTTL passes to another instance, and the holder stops itself a
//     third of the TTL before its lease can expire. Fresh identifies take a
//     lease on their rate-limit bucket (shard_id % max_concurrency) for
//     IdentifyInterval, which keeps all instances together within Discord's
//     identify concurrency.
//   - Backfill: GUILD_CREATE brings a guild's channels, members and current
//     presences; for large guilds, whose GUILD_CREATE lists only online
//     members, the shard asks for the rest with Request Guild Members
//     (op 8), at most once per guild per 30 s and spaced so that a shard
//     stays well within Discord's 120 commands per minute.
//   - Intents: GUILDS, GUILD_MEMBERS, GUILD_MODERATION, GUILD_VOICE_STATES,
//     GUILD_PRESENCES, GUILD_MESSAGES and GUILD_MESSAGE_TYPING, plus
//     MESSAGE_CONTENT only when the ContentPolicy says a guild granted a
//     plugin message content. Close codes that retrying cannot fix (4004
//     bad token, 4014 disallowed intents, ...) end Run with an error that
//     says what to change.
//
// discordgo v0.29 speaks gateway and REST API v9 and resumes on the URL it
// first connected to rather than READY's resume_gateway_url; Discord accepts
// both, and the payloads the normaliser reads are the same in v9 and v10.
// discordgo answers op 9 by identifying again at once on the same connection,
// without the 1–5 s pause Discord suggests and outside the identify lease;
// if Discord then closes the connection, the shard's own backoff applies.
package gateway
