import { decodeFrame } from "./live";
import { describe as describeEvent } from "./components/EventRow";

test("expands presence batches in order, between ordinary messages", () => {
  const frame =
    '[{"type":"subscribed","guild_id":"81384788765712384","scope":"full","replayed":0},' +
    '["p","81384788765712384",1795780801234,[0,"p1","80351110224678912","o-o-"],[-1234,"p2","80351110224678912","dd-i"]],' +
    '{"type":"event","guild_id":"81384788765712384","id":"m3","kind":"message.create","at":"2026-11-27T12:00:00Z","data":{"length":2}},' +
    '["p","81384788765712384",1795780800000,[5,"p4","80351110224678913","f---"]]]';
  const ms = decodeFrame(frame);
  expect(ms.map((m) => [m.type, m.id ?? "", m.kind ?? ""])).toEqual([
    ["subscribed", "", ""],
    ["event", "p1", "presence.update"],
    ["event", "p2", "presence.update"],
    ["event", "m3", "message.create"],
    ["event", "p4", "presence.update"],
  ]);
  expect(ms[1]).toMatchObject({ guild_id: "81384788765712384", user_id: "80351110224678912", at: "2026-11-27T12:00:01.234Z", data: { status: "online", client_status: { mobile: "online" } } });
  expect(ms[2]).toMatchObject({ at: "2026-11-27T12:00:00.000Z", data: { status: "dnd", client_status: { desktop: "dnd", web: "idle" } } });
  expect(ms[4]).toMatchObject({ at: "2026-11-27T12:00:00.005Z", data: { status: "offline", client_status: {} } });
  expect(describeEvent(ms[2])).toBe("dnd on desktop + web");
});

test("skips compact forms it does not know", () => {
  expect(decodeFrame('[["z",1],{"type":"hello","subject":"user:1"}]').map((m) => m.type)).toEqual(["hello"]);
});
