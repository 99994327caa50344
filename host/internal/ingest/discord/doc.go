// Package discord turns raw Discord gateway dispatches (API v10) into
// Spywatcher events. It knows Discord's payload shapes so that nothing else
// in the host has to; the live gateway and replay of recorded files feed the
// same Normalizer, so a recording replays into the same events, and event
// IDs, as the live run produced.
//
// The package does not import discordgo: the gateway client hands over each
// dispatch's t, s and raw d, which is all a Normalizer needs, and Discord's
// types stop here instead of leaking into the host.
//
// # Event IDs
//
// Event IDs are deterministic so that the host's dedup by ID makes replaying
// a file twice, or replaying what the live gateway already delivered, a
// no-op. Facts with a stable Discord identity get an ID built from it:
//
//	dc:msg:<message_id>                          message.create
//	dc:edit:<message_id>:<edited_unix_ms>        message.update
//	dc:del:<message_id>                          message.delete (single and bulk)
//	dc:typing:<channel_id>:<user_id>:<unix_s>    typing.start
//	dc:join:<guild_id>:<user_id>:<joined_ms>     member.join (live GUILD_MEMBER_ADD)
//
// Everything else (presence, member update/leave, bans, voice, guild and
// channel updates, backfill joins) is identified by the dispatch itself:
//
//	dc:<kind>:<hex of the first 16 bytes of sha256(t, s, d, recorded ms)>[:<index>]
//
// where index is the event's position among the dispatch's events, present
// only when the dispatch produced more than one, and the recorded time
// (Dispatch.RecordedAt) is left out when unknown. Typing without a timestamp
// and joins without joined_at fall back to this form too. Two byte-identical
// dispatches with the same s and no recorded time therefore share an ID, and
// the host keeps only the first. Backfill joins are hashed
// rather than stable so that each GUILD_CREATE reports the member's roles as
// of that moment instead of being dropped as a duplicate of the first one.
package discord
