// Package simulate generates a deterministic synthetic Discord guild: a
// roster of members with known behaviour (Truth) and the stream of events
// such a guild would produce. It feeds `spywatcher serve --simulate`, the
// ingest benchmarks and, through Truth, the tests of the analytics that must
// tell a lurker from a ghost or a bot-like account.
//
// The simulation is a discrete-event model: every member is an actor with a
// handful of timers (next session, next message, next idle toggle...), and
// one binary heap keyed by each actor's earliest timer yields the next thing
// that happens. Work per event is therefore O(log members) and memory is
// proportional to the member count, which keeps 100,000 members cheap.
//
// Determinism: the stream depends only on the Config and on the window's
// start. The roster (IDs, names, archetypes) depends on Config.Seed and the
// moment account ages are measured from (Config.Epoch, or the window's start
// when Epoch is zero). One pseudo-random generator drives the whole world,
// and actors are processed in (time, actor) order, so equal inputs give a
// byte-identical stream.
package simulate
